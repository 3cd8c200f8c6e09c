"""Settlement on the real stack: the notify pool's settle_due_days cron settles a due day by
itself, and the balance and settlement routes show pending and available, the day's status
and its settlement entry as documented (and as the OpenAPI description says)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from core.ledger.balances import check_ledger
from core.ledger.entries import SETTLEMENT, payment_entry
from core.ledger.posting import write_entry
from core.ledger.terms import SETTLEMENT_TZ, day_bounds
from core.provision import set_channel_fee_rate
from core.store.tables import ledger_entries
from gateway.openapi import build_spec
from tests.conftest import Stack, make_settings
from tests.integration.ledger_books import paid, validate, wait_entry
from workers.ledger import settle_day
from workers.settings import worker_settings


@pytest.fixture
def stack_overrides() -> dict[str, Any]:
    return {"settlement_interval_s": 1}


async def _settlement_entry_ids(stack: Stack) -> list[int]:
    async with stack.db.read() as conn:
        return list(
            (
                await conn.execute(
                    sa.select(ledger_entries.c.id).where(
                        ledger_entries.c.merchant_id == "mch_test",
                        ledger_entries.c.event_type == SETTLEMENT,
                    )
                )
            ).scalars()
        )


async def test_the_cron_settles_yesterday_and_the_routes_show_it(stack: Stack) -> None:
    await set_channel_fee_rate(stack.db, "wx_test", fee_rate_bps=60)
    today = datetime.now(SETTLEMENT_TZ).date()
    yesterday = today - timedelta(days=1)
    # Yesterday's takings, posted straight into the ledger (the stack runs in real time).
    for n, amount in enumerate((30_000, 5_000)):
        plan = payment_entry(
            event_id=f"evt_yesterday_{n}",
            merchant_id="mch_test",
            pay_no=f"pay_yesterday_{n}",
            channel_account_id="wx_test",
            currency="CNY",
            livemode=False,
            amount_minor=amount,
            fee_minor=amount * 60 // 10_000,
            effective_at=day_bounds(yesterday)[0] + timedelta(hours=10 + n),
        )
        await stack.db.run_write(write_entry, plan)
    # The cron (every second here) settles it: T+1, so yesterday is due since midnight.
    async with asyncio.timeout(10):
        while not (entries := await _settlement_entry_ids(stack)):
            await asyncio.sleep(0.1)
    (entry_id,) = entries
    settled = 30_000 - 180 + 5_000 - 30

    # Today's payment, through the sandbox: pending until tomorrow.
    pay_no = await paid(stack, 10_000)
    await wait_entry(stack, pay_no)

    spec = build_spec(stack.settings)
    answer = await stack.http.get(f"{stack.gateway_url}/v1/balance", headers=stack.auth())
    assert answer.status_code == 200, answer.text
    validate(spec, "/v1/balance", 200, answer.json())
    assert answer.json()["pending"] == [{"currency": "CNY", "amount": 9_940}]
    assert answer.json()["available"] == [{"currency": "CNY", "amount": settled}]

    settlements = f"{stack.gateway_url}/v1/settlements"
    answer = await stack.http.get(
        settlements, params={"date": yesterday.isoformat(), "currency": "CNY"}, headers=stack.auth()
    )
    assert answer.status_code == 200, answer.text
    validate(spec, "/v1/settlements", 200, answer.json())
    view = answer.json()
    assert (view["collected"], view["fees"], view["payable"]) == (35_000, 210, settled)
    assert view["status"] == "settled"
    assert view["settlement"]["entry_id"] == entry_id
    assert view["settlement"]["amount"] == settled
    settled_at = datetime.fromisoformat(view["settlement"]["settled_at"])
    assert abs(settled_at - datetime.now(UTC)) < timedelta(minutes=1)
    midnight = day_bounds(today)[0]
    assert datetime.fromisoformat(view["available_at"]) == midnight

    answer = await stack.http.get(
        settlements, params={"date": today.isoformat(), "currency": "CNY"}, headers=stack.auth()
    )
    validate(spec, "/v1/settlements", 200, answer.json())
    view = answer.json()
    assert (view["collected"], view["payable"], view["status"]) == (10_000, 9_940, "not_due")
    assert view["settlement"] is None
    assert datetime.fromisoformat(view["available_at"]) == day_bounds(today)[1]

    # The one-day job: yesterday is settled already, today is not due.
    ctx = {"payfront": SimpleNamespace(ledger_db=stack.db, settings=stack.settings)}
    assert await settle_day(ctx, "mch_test", yesterday.isoformat()) == {"already_settled": 1}
    assert await settle_day(ctx, "mch_test", today.isoformat()) == {"not_due": 1}

    # The cron keeps running: still exactly one settlement entry, and the books balance.
    await asyncio.sleep(1.5)
    assert await _settlement_entry_ids(stack) == [entry_id]
    check = await check_ledger(stack.db)
    assert check.ok, check


def test_the_notify_pool_runs_the_settlement_cron_and_job() -> None:
    settings = make_settings("sqlite+aiosqlite:///unused.db", "redis://127.0.0.1:6379/9")
    notify = worker_settings(settings, "notify")
    crons = {job.name: job for job in notify["cron_jobs"]}
    cron_job = crons[f"{settings.notify_queue_name}:settle_due_days"]
    assert cron_job.unique and cron_job.run_at_startup
    assert (cron_job.minute, cron_job.second) == (set(range(0, 60, 5)), {0})  # every 300 s
    assert "settle_day" in {
        getattr(f, "name", getattr(f, "__name__", "")) for f in notify["functions"]
    }
    assert all("settle" not in job.name for job in worker_settings(settings, "core")["cron_jobs"])
