"""Compare-and-set: the one way a status changes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from core.errors import StaleState


async def compare_and_set(
    conn: AsyncConnection,
    table: sa.Table,
    key: sa.Column[Any],
    key_value: str,
    *,
    status: str,
    version: int,
    to: str,
    now: datetime,
    **values: Any,
) -> None:
    """``UPDATE … SET status = :to, version = version + 1 WHERE status = :status AND
    version = :version``; raises ``StaleState`` when another writer moved the row first."""
    result = await conn.execute(
        table.update()
        .where(key == key_value, table.c.status == status, table.c.version == version)
        .values(status=to, version=version + 1, updated_at=now, **values)
    )
    if result.rowcount != 1:
        raise StaleState(key_value)
