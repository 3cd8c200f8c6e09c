"""Differences between what a channel says and what payfront holds, recorded for review
instead of applied (amount or currency mismatch, news that contradicts a final state)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from core.store.tables import anomalies


async def record_anomaly(
    conn: AsyncConnection,
    pay_no: str,
    kind: str,
    source_id: str,
    detail: dict[str, Any],
    now: datetime,
) -> int | None:
    """Once per (order, kind, source): the same callback delivered again adds nothing.
    Returns the new anomaly's id, or None when it was recorded before."""
    exists = (
        await conn.execute(
            sa.select(anomalies.c.id).where(
                anomalies.c.pay_no == pay_no,
                anomalies.c.kind == kind,
                anomalies.c.source_id == source_id,
            )
        )
    ).first()
    if exists is not None:
        return None
    created = await conn.execute(
        anomalies.insert().values(
            pay_no=pay_no, kind=kind, source_id=source_id, detail=detail, created_at=now
        )
    )
    assert created.inserted_primary_key is not None
    return int(created.inserted_primary_key[0])
