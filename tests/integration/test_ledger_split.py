"""DB split (issue 6, point 7): the ledger in a database of its own (docs/ledger.md).

The trade and pay data stay in the stack's database (SQLite or PostgreSQL); the ledger goes to
a SQLite file of its own, so a run on PostgreSQL splits across two engines.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from core.events import POST_ENTRY_JOB
from core.ledger.balances import check_ledger, merchant_balances
from core.ledger.posting import Posted, post_event
from core.settings import shadow_url
from core.store.db import Database
from core.store.tables import events, ledger_entries, ledger_lines, outbox
from tests.conftest import Stack
from tests.integration.ledger_books import paid


@pytest.fixture
def stack_overrides(tmp_path: Path, sqlite_template: Path) -> dict[str, Any]:
    live_ledger = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    # Test mode's ledger is the shadow of the live one (ledger-shadow.db): migrate it.
    shadow = Path(sa.make_url(shadow_url(live_ledger)).database or "")
    shutil.copy(sqlite_template, shadow)
    return {"ledger_database_url": live_ledger}


@pytest.fixture
async def ledger(stack: Stack) -> AsyncIterator[Database]:
    assert stack.settings.ledger_url != stack.settings.database_url
    database = Database(stack.settings.ledger_url)
    yield database
    await database.dispose()


async def count(db: Database, table: sa.Table) -> int:
    async with db.read() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


async def wait_entries(ledger: Database, expected: int) -> None:
    async with asyncio.timeout(10):
        while await count(ledger, ledger_entries) < expected:
            await asyncio.sleep(0.05)


async def test_entries_go_to_the_ledger_database_and_nothing_else_does(
    stack: Stack, ledger: Database
) -> None:
    pay_no = await paid(stack, 1000)
    refund = await stack.http.post(
        f"{stack.gateway_url}/v1/payments/{pay_no}/refunds",
        json={"amount": 400},
        headers=stack.auth(),
    )
    assert refund.status_code == 201, refund.text
    await wait_entries(ledger, 2)
    # The entries are in the ledger's database, balanced; none in the trade and pay one.
    assert await count(ledger, ledger_lines) > 0
    assert await count(stack.db, ledger_entries) == 0
    assert await count(stack.db, ledger_lines) == 0
    assert (await check_ledger(ledger)).ok
    # The balance API reads the ledger's database: 1000 paid, 400 refunded, net of fees.
    balances = await merchant_balances(ledger, "mch_test", False)
    answer = await stack.http.get(f"{stack.gateway_url}/v1/balance", headers=stack.auth())
    assert answer.status_code == 200, answer.text
    (cny,) = [item for item in answer.json()["pending"] if item["currency"] == "CNY"]
    assert cny["amount"] == balances[0].pending_minor
    assert 0 < cny["amount"] <= 600
    # And the owed work is marked done where it is owed: in the trade and pay database.
    async with asyncio.timeout(10):
        while True:
            async with stack.db.read() as conn:
                pending = await conn.scalar(
                    sa.select(sa.func.count())
                    .select_from(outbox)
                    .where(outbox.c.kind == POST_ENTRY_JOB, outbox.c.status == "pending")
                )
            if pending == 0:
                break
            await asyncio.sleep(0.05)


async def test_a_crash_between_the_two_databases_posts_once(stack: Stack, ledger: Database) -> None:
    pay_no = await paid(stack, 500)
    await wait_entries(ledger, 1)
    await stack.stop_worker()  # from here on, post by hand
    async with stack.db.read() as conn:
        event_id = await conn.scalar(sa.select(events.c.id).where(events.c.pay_no == pay_no))
    assert event_id is not None
    # The entry committed in the ledger's database, then the process died before the outbox
    # row was marked: the work is owed again, and re-runs (even at once) only mark it.
    async with stack.db.begin() as conn:
        await conn.execute(
            outbox.update()
            .where(outbox.c.kind == POST_ENTRY_JOB, outbox.c.ref == event_id)
            .values(status="pending", done_at=None)
        )
    outcomes = await asyncio.gather(
        *(post_event(stack.db, event_id, ledger_db=ledger) for _ in range(4))
    )
    assert set(outcomes) == {Posted.ALREADY_POSTED}
    assert await count(ledger, ledger_entries) == 1
    async with stack.db.read() as conn:
        status = await conn.scalar(
            sa.select(outbox.c.status).where(
                outbox.c.kind == POST_ENTRY_JOB, outbox.c.ref == event_id
            )
        )
    assert status == "done"
    assert (await check_ledger(ledger)).ok
