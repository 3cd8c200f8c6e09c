"""What work is owed, read from the database: the sweeper's view after a Redis loss."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from core.store.db import Database
from core.store.tables import outbox, webhook_deliveries


@dataclass(frozen=True, slots=True)
class OwedWork:
    outbox: list[tuple[str, str]]  # (kind, ref)
    deliveries: list[tuple[int, int]]  # (delivery id, attempt number due)


async def owed_work(db: Database, *, grace: timedelta, limit: int = 1000) -> OwedWork:
    """Outbox rows still pending after ``grace``, and webhook deliveries that are due."""
    now = datetime.now(UTC)
    async with db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(outbox.c.kind, outbox.c.ref)
                .where(outbox.c.status == "pending", outbox.c.created_at <= now - grace)
                .order_by(outbox.c.created_at)
                .limit(limit)
            )
        ).all()
        due = (
            await conn.execute(
                sa.select(webhook_deliveries.c.id, webhook_deliveries.c.attempts)
                .where(
                    webhook_deliveries.c.status == "pending",
                    webhook_deliveries.c.next_attempt_at <= now,
                )
                .order_by(webhook_deliveries.c.next_attempt_at)
                .limit(limit)
            )
        ).all()
    return OwedWork(
        outbox=[(row.kind, row.ref) for row in rows],
        deliveries=[(row.id, row.attempts + 1) for row in due],
    )
