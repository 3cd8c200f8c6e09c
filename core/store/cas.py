"""Compare-and-set: the one way a status changes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from core.errors import StaleState

T = TypeVar("T")


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


async def again_if_stale(work: Callable[[], Awaitable[T]], attempts: int = 3) -> T:
    """Run ``work`` (one transaction that reads, decides and compare-and-sets) again when a
    concurrent writer moved the row between its read and its write: the next run reads the
    new state and decides anew (usually: nothing left to do)."""
    for attempt in range(1, attempts + 1):
        try:
            return await work()
        except StaleState:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")
