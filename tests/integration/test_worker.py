"""The worker under channel failures, lost Redis state and failing merchant endpoints."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from core.store.tables import events, outbox, webhook_attempts, webhook_deliveries
from sdk import verify_webhook
from tests.conftest import Stack


@pytest.fixture
def stack_overrides() -> dict[str, Any]:
    return {"channel_timeout_s": 0.3, "prepay_max_tries": 30}


async def _rows(stack: Stack, query: Any) -> list[Any]:
    async with stack.db.read() as conn:
        return list((await conn.execute(query)).all())


async def test_channel_errors_are_retried_until_the_channel_recovers(stack: Stack) -> None:
    await stack.set_faults(error_rate=1.0)
    payment = (await stack.create_payment()).json()
    await stack.wait_status(payment["pay_no"], "prepaying")
    await asyncio.sleep(0.4)  # several failed tries
    assert (await stack.payment(payment["pay_no"]))["status"] == "prepaying"
    missing = await stack.http.get(
        f"{stack.sandbox_url}/sandbox/wechatpay/orders/{payment['pay_no']}"
    )
    assert missing.status_code == 404  # a 500 SYSTEM_ERROR acted on nothing
    await stack.set_faults()
    token = await stack.token(payment["token"], wait=10)
    assert token["status"] == "awaiting_payment"
    assert token["credential"]["code_url"].startswith("weixin://")


async def test_lost_answer_is_resolved_by_query_then_an_identical_create(stack: Stack) -> None:
    await stack.set_faults(timeout_rate=1.0)
    payment = (await stack.create_payment(amount=888)).json()
    # The sandbox acted on the create; its answer never comes back (unknown outcome).
    async with asyncio.timeout(10):
        while (
            await stack.http.get(
                f"{stack.sandbox_url}/sandbox/wechatpay/orders/{payment['pay_no']}"
            )
        ).status_code != 200:
            await asyncio.sleep(0.02)
    await stack.set_faults()
    token = await stack.token(payment["token"], wait=10)
    assert token["status"] == "awaiting_payment"
    at_channel = await stack.sandbox_order(payment["pay_no"])
    # Same order at the channel (an identical repeat is the same order), same credential.
    assert token["credential"]["code_url"] == at_channel["credential"]["code_url"]
    assert at_channel["request"]["amount"]["total"] == 888


async def test_a_refusal_fails_the_payment_and_tells_the_merchant(stack: Stack) -> None:
    registration = stack.account.keys.sandbox_registration() | {"appid": "wx_not_this_one"}
    answer = await stack.http.post(
        f"{stack.sandbox_url}/sandbox/wechatpay/merchants", json=registration
    )
    answer.raise_for_status()
    payment = (await stack.create_payment()).json()
    token = await stack.token(payment["token"], wait=10)
    assert token["status"] == "prepay_failed"
    assert token["credential"] is None
    assert token["failure"]["code"] == "APPID_MCHID_NOT_MATCH"
    await stack.inbox.wait_for(1)
    headers, body = stack.inbox.received[0]
    event = verify_webhook(body, headers["Payfront-Signature"], stack.webhook_secret)
    assert event.type == "payment.failed"
    assert orjson.loads(body)["data"]["object"]["failure"]["code"] == "APPID_MCHID_NOT_MATCH"


async def test_flushing_redis_mid_flow_loses_and_duplicates_nothing(stack: Stack) -> None:
    await stack.stop_worker()
    payments = [(await stack.create_payment(amount=100 + i)).json() for i in range(6)]
    await stack.forget_redis_state()  # as FLUSHDB: every queued prepay job is gone
    await stack.start_worker()
    for payment in payments:
        token = await stack.token(payment["token"], wait=15)
        assert token["status"] == "awaiting_payment", token
    for payment in payments:
        assert (await stack.shopper_pays(payment["pay_no"])).status_code == 200
    await stack.forget_redis_state()  # notification jobs queued by the callbacks are gone
    for payment in payments:
        await stack.wait_status(payment["pay_no"], "paid")
    await stack.inbox.wait_for(len(payments), timeout=20)
    per_payment = await _rows(
        stack, sa.select(events.c.pay_no, sa.func.count()).group_by(events.c.pay_no)
    )
    assert sorted(row[0] for row in per_payment) == sorted(p["pay_no"] for p in payments)
    assert all(row[1] == 1 for row in per_payment)
    delivered = {orjson.loads(body)["id"] for _, body in stack.inbox.received}
    assert len(delivered) == len(payments)
    # Ledger postings owed by the events drain a moment after the webhooks (their jobs were
    # flushed too, and the sweeper re-enqueues them).
    async with asyncio.timeout(10):
        while pending := await _rows(
            stack, sa.select(outbox.c.kind).where(outbox.c.status == "pending")
        ):
            await asyncio.sleep(0.1)
    assert pending == []


async def test_webhook_is_retried_until_acknowledged_and_every_attempt_is_logged(
    stack: Stack,
) -> None:
    stack.inbox.answers = [500, 503]
    payment = (await stack.create_payment()).json()
    await stack.token(payment["token"], wait=5)
    await stack.shopper_pays(payment["pay_no"])
    await stack.inbox.wait_for(3, timeout=20)
    bodies = {body for _, body in stack.inbox.received}
    assert len(bodies) == 1  # the same event each time
    for headers, body in stack.inbox.received:
        verify_webhook(body, headers["Payfront-Signature"], stack.webhook_secret)
    async with asyncio.timeout(5):
        while True:
            delivery = (await _rows(stack, sa.select(webhook_deliveries)))[0]
            if delivery.status == "succeeded":
                break
            await asyncio.sleep(0.02)
    assert delivery.attempts == 3
    attempts = await _rows(
        stack, sa.select(webhook_attempts).order_by(webhook_attempts.c.attempt_no)
    )
    assert [(a.attempt_no, a.status_code) for a in attempts] == [(1, 500), (2, 503), (3, 200)]
