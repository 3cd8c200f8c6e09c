"""The ledger on the real stack: a payment through the sandbox gets exactly one balanced entry
within seconds (from the worker's post_entry job), the balance and settlement routes answer
from it as documented, and the SDK reads them."""

from __future__ import annotations

import asyncio
from datetime import datetime

import sqlalchemy as sa

from core.ledger.accounts import merchant_pending
from core.ledger.balances import account_balance, balance_from_lines, check_ledger
from core.ledger.posting import Posted, post_event
from core.ledger.settlement import SETTLEMENT_TZ
from core.provision import set_channel_fee_rate
from core.store.tables import events, outbox
from gateway.openapi import build_spec
from sdk import AsyncPayfrontClient
from tests.conftest import Stack
from tests.integration.ledger_books import entries_for, paid, validate, wait_entry


async def test_a_paid_order_gets_one_balanced_entry_and_shows_in_the_balance(stack: Stack) -> None:
    # The stack's merchant is mch_test, with one WeChat Pay account, wx_test.
    await set_channel_fee_rate(stack.db, "wx_test", fee_rate_bps=60)
    pay_no = await paid(stack, 10_000)
    (entry,) = await wait_entry(stack, pay_no)
    assert entry.debits_minor == entry.credits_minor == 10_060
    async with stack.db.read() as conn:
        event_id = (
            await conn.execute(
                sa.select(events.c.id).where(
                    events.c.pay_no == pay_no, events.c.type == "payment.succeeded"
                )
            )
        ).scalar_one()
        owed = (
            await conn.execute(
                sa.select(outbox.c.status).where(
                    outbox.c.kind == "post_entry", outbox.c.ref == event_id
                )
            )
        ).scalar_one()
    assert entry.source_event_id == event_id and owed == "done"
    # The job again (a redelivery): no second entry.
    assert await post_event(stack.db, event_id) is Posted.ALREADY_POSTED
    assert len(await entries_for(stack, pay_no)) == 1
    pending = merchant_pending("mch_test", "CNY", False).id
    assert await account_balance(stack.db, pending) == 9_940
    assert await balance_from_lines(stack.db, pending) == 9_940
    assert (await check_ledger(stack.db)).ok

    spec = build_spec(stack.settings)
    answer = await stack.http.get(f"{stack.gateway_url}/v1/balance", headers=stack.auth())
    assert answer.status_code == 200, answer.text
    validate(spec, "/v1/balance", 200, answer.json())
    assert answer.json()["pending"] == [{"currency": "CNY", "amount": 9_940}]
    assert answer.json()["available"] == [{"currency": "CNY", "amount": 0}]

    day = datetime.now(SETTLEMENT_TZ).date()
    settlements = f"{stack.gateway_url}/v1/settlements"
    answer = await stack.http.get(
        settlements, params={"date": day.isoformat(), "currency": "CNY"}, headers=stack.auth()
    )
    assert answer.status_code == 200, answer.text
    validate(spec, "/v1/settlements", 200, answer.json())
    view = answer.json()
    assert (view["collected"], view["fees"], view["payable"]) == (10_000, 60, 9_940)
    assert view["payment_count"] == 1 and view["refund_count"] == 0

    for params in (
        {"date": "2026-02-30", "currency": "CNY"},
        {"date": "26-11-2026", "currency": "CNY"},
        {"date": "0001-01-01", "currency": "CNY"},
        {"date": day.isoformat(), "currency": "cny"},
        {"date": day.isoformat()},
        {},
    ):
        refused = await stack.http.get(settlements, params=params, headers=stack.auth())
        assert refused.status_code == 400, (params, refused.text)
        validate(spec, "/v1/settlements", 400, refused.json())
        assert refused.json()["error"]["code"] == "parameter_invalid"
    unauthenticated = await stack.http.get(f"{stack.gateway_url}/v1/balance")
    assert unauthenticated.status_code == 401
    validate(spec, "/v1/balance", 401, unauthenticated.json())

    async with AsyncPayfrontClient(stack.api_key, base_url=stack.gateway_url) as client:
        balance = await client.get_balance()
        settlement = await client.get_settlement(day, "CNY")
    assert balance.pending == {"CNY": 9_940} and not balance.livemode
    assert settlement.payable == 9_940


async def test_many_payments_each_get_exactly_one_entry(stack: Stack) -> None:
    pay_nos = await asyncio.gather(*(paid(stack, 100 + i) for i in range(8)))
    for pay_no in pay_nos:
        assert len(await wait_entry(stack, pay_no)) == 1
    pending = merchant_pending("mch_test", "CNY", False).id
    assert await account_balance(stack.db, pending) == sum(100 + i for i in range(8))
    check = await check_ledger(stack.db)
    assert check.ok, check
