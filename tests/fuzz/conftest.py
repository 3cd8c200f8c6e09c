"""Shared pieces of the fuzz suite: the example budget, a snapshot of what the database holds,
and a way to run a synchronous hypothesis test in a thread while the stack serves on the
test's event loop."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, settings

from core.store.tables import metadata, pay_orders
from tests.conftest import Stack

ResultT = TypeVar("ResultT")

# Examples per test; the whole directory stays under a minute by default. Raise it for a
# longer local run: PAYFRONT_FUZZ_EXAMPLES=5000 scripts/test tests/fuzz
EXAMPLES = int(os.environ.get("PAYFRONT_FUZZ_EXAMPLES", "100"))

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # no .hypothesis/ examples database: every run is the same budget
    phases=[Phase.explicit, Phase.generate, Phase.target, Phase.shrink],
    # One stack serves every example: the state checks below are per example.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


@pytest.fixture
def stack_overrides() -> dict[str, Any]:
    # No rate limit: the fuzzer sends hundreds of requests a second from one merchant.
    return {"rate_limit_per_s": 0}


async def db_snapshot(stack: Stack) -> dict[str, Any]:
    """Row counts of every table, and each pay order's status and version."""
    # One round trip per snapshot: it runs after every example.
    counts_query = sa.select(
        *(
            sa.select(sa.func.count()).select_from(table).scalar_subquery().label(table.name)
            for table in metadata.sorted_tables
        )
    )
    async with stack.db.read() as conn:
        counts = dict((await conn.execute(counts_query)).one()._mapping)
        orders = (
            await conn.execute(
                sa.select(pay_orders.c.pay_no, pay_orders.c.status, pay_orders.c.version)
            )
        ).all()
    return {**counts, "pay_order_states": sorted(tuple(row) for row in orders)}


class LoopBridge:
    """Runs coroutines on the test's event loop from the hypothesis thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def run(self, make: Callable[[], Coroutine[Any, Any, ResultT]]) -> ResultT:
        return asyncio.run_coroutine_threadsafe(make(), self._loop).result(timeout=30)


async def in_thread(test: Callable[[LoopBridge], None]) -> None:
    """Run a synchronous hypothesis test in a worker thread; the gateway keeps serving."""
    bridge = LoopBridge(asyncio.get_running_loop())
    await asyncio.to_thread(test, bridge)
