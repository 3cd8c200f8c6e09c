"""Differences between what a channel says and what payfront holds, recorded for review
instead of applied (amount or currency mismatch, news that contradicts a final state)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
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
    # INSERT … ON CONFLICT DO NOTHING: two deliveries of one report at once record it once
    # (a read-then-insert would let both insert, and one fail on the unique constraint).
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    created = await conn.execute(
        insert(anomalies)
        .values(pay_no=pay_no, kind=kind, source_id=source_id, detail=detail, created_at=now)
        .on_conflict_do_nothing(index_elements=["pay_no", "kind", "source_id"])
        .returning(anomalies.c.id)
    )
    new_id = created.scalar()
    return None if new_id is None else int(new_id)
