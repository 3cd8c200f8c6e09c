"""The compensation job: lost callbacks are found by query, expired orders are closed at the
channel and then here, and a payment made just before expiry is not closed away."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from core.store.tables import pay_orders
from sdk import verify_webhook
from tests.conftest import Stack


@pytest.fixture
def stack_overrides() -> dict[str, Any]:
    return {"check_after_s": 0.3, "check_every_s": 0.5}


async def _awaiting(stack: Stack) -> dict[str, Any]:
    payment = (await stack.create_payment()).json()
    token = await stack.token(payment["token"], wait=5)
    assert token["status"] == "awaiting_payment"
    return payment


async def _expire(stack: Stack, pay_no: str) -> None:
    """Move the order's expiry into the past (as if its 15 minutes had gone by)."""
    async with stack.db.begin() as conn:
        await conn.execute(
            pay_orders.update()
            .where(pay_orders.c.pay_no == pay_no)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )


async def _webhook_types(stack: Stack, count: int) -> list[str]:
    await stack.inbox.wait_for(count, timeout=15)
    types = []
    for headers, body in stack.inbox.received:
        verify_webhook(body, headers["Payfront-Signature"], stack.webhook_secret)
        types.append(orjson.loads(body)["type"])
    return types


async def test_a_lost_callback_is_found_by_query(stack: Stack) -> None:
    await stack.set_faults(lose_callbacks=1.0)
    payment = await _awaiting(stack)
    assert (await stack.shopper_pays(payment["pay_no"])).status_code == 200
    order = await stack.sandbox_order(payment["pay_no"])
    assert order["trade_state"] == "SUCCESS" and order["callbacks_lost"] >= 1
    paid = await stack.wait_status(payment["pay_no"], "paid", timeout=15)
    assert paid["paid_at"] is not None
    assert await _webhook_types(stack, 1) == ["payment.succeeded"]


async def test_an_unpaid_order_is_only_queried_before_it_expires(stack: Stack) -> None:
    payment = await _awaiting(stack)
    await asyncio.sleep(2)  # several sweeps and checks
    assert (await stack.payment(payment["pay_no"]))["status"] == "awaiting_payment"
    async with stack.db.read() as conn:
        checked_at = (
            (
                await conn.execute(
                    pay_orders.select().where(pay_orders.c.pay_no == payment["pay_no"])
                )
            )
            .one()
            .checked_at
        )
    assert checked_at is not None
    assert (await stack.sandbox_order(payment["pay_no"]))["trade_state"] == "NOTPAY"


async def test_an_expired_order_is_closed_at_the_channel_then_here(stack: Stack) -> None:
    payment = await _awaiting(stack)
    await _expire(stack, payment["pay_no"])
    closed = await stack.wait_status(payment["pay_no"], "closed", timeout=15)
    assert closed["paid_at"] is None
    assert (await stack.sandbox_order(payment["pay_no"]))["trade_state"] == "CLOSED"
    # The shopper can no longer pay it.
    late = await stack.shopper_pays(payment["pay_no"])
    assert late.status_code == 409
    assert await _webhook_types(stack, 1) == ["payment.closed"]
    token = await stack.token(payment["token"])
    assert token["status"] == "closed"


async def test_paid_just_before_expiry_is_paid_not_closed(stack: Stack) -> None:
    await stack.set_faults(lose_callbacks=1.0)
    payment = await _awaiting(stack)
    await stack.shopper_pays(payment["pay_no"])
    await _expire(stack, payment["pay_no"])
    await stack.wait_status(payment["pay_no"], "paid", timeout=15)
    assert (await stack.sandbox_order(payment["pay_no"]))["trade_state"] == "SUCCESS"
    assert await _webhook_types(stack, 1) == ["payment.succeeded"]
