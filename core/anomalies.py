"""Differences between what a channel says and what payfront holds, recorded for review
instead of applied (amount or currency mismatch, news that contradicts a final state)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from core.store.tables import anomalies, pay_orders


async def record_anomaly(
    conn: AsyncConnection,
    pay_no: str | None,
    kind: str,
    source_id: str,
    detail: dict[str, Any],
    now: datetime,
    *,
    withdrawal_no: str | None = None,
    merchant_id: str | None = None,
) -> int | None:
    """Once per (order or withdrawal, kind, source): the same callback delivered again adds
    nothing, also when two deliveries arrive at once. Returns the new anomaly's id, or None
    when it was recorded before."""
    if merchant_id is None and pay_no is not None:
        merchant_id = (
            await conn.execute(
                sa.select(pay_orders.c.merchant_id).where(pay_orders.c.pay_no == pay_no)
            )
        ).scalar()
    # INSERT … ON CONFLICT DO NOTHING (either unique constraint): a read-then-insert would let
    # two concurrent deliveries both insert, and one fail.
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    created = await conn.execute(
        insert(anomalies)
        .values(
            pay_no=pay_no,
            withdrawal_no=withdrawal_no,
            merchant_id=merchant_id,
            kind=kind,
            source_id=source_id,
            detail=detail,
            created_at=now,
        )
        .on_conflict_do_nothing()
        .returning(anomalies.c.id)
    )
    new_id = created.scalar()
    return None if new_id is None else int(new_id)
