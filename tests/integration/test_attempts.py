"""Several attempts per trade on the real stack: a shopper switches from WeChat Pay to Alipay,
the earlier attempt is closed at WeChat first; an earlier attempt found paid settles the trade
instead; a partial payment is refunded at the channel by the default policy."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from payfront.devsetup_alipay import provision_alipay_sandbox_account
from sdk import verify_webhook
from tests.conftest import Stack


@pytest.fixture
def stack_overrides() -> dict[str, Any]:
    return {"check_after_s": 30.0}


async def _attempt(stack: Stack, trade_no: str, **body: Any) -> dict[str, Any]:
    answer = await stack.http.post(
        f"{stack.gateway_url}/v1/trades/{trade_no}/attempts", json=body, headers=stack.auth()
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def _trade(stack: Stack, trade_no: str) -> dict[str, Any]:
    answer = await stack.http.get(f"{stack.gateway_url}/v1/trades/{trade_no}", headers=stack.auth())
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def _event_types(stack: Stack, count: int) -> list[tuple[str, str]]:
    await stack.inbox.wait_for(count, timeout=15)
    found = []
    for headers, body in stack.inbox.received:
        event = verify_webhook(body, headers["Payfront-Signature"], stack.webhook_secret)
        found.append((event.type, orjson.loads(body)["data"]["object"]["pay_no"]))
    return sorted(found)


async def test_switching_channel_closes_the_earlier_attempt_first(stack: Stack) -> None:
    alipay = await provision_alipay_sandbox_account(
        stack.db,
        stack.vault,
        sandbox_url=stack.sandbox_url,
        merchant_id="mch_test",
        account_id="ali_test",
    )
    first = (await stack.create_payment(amount=1500)).json()
    await stack.wait_status(first["pay_no"], "awaiting_payment")
    second = await _attempt(stack, first["trade_no"], channel="alipay", method="qr")
    assert second["trade_no"] == first["trade_no"] and second["pay_no"] != first["pay_no"]
    assert (second["amount"], second["currency"]) == (1500, "CNY")

    token = await stack.token(second["token"], wait=10)
    assert token["status"] == "awaiting_payment"
    # Closed at WeChat before Alipay was asked: that QR code can no longer be paid.
    assert (await stack.payment(first["pay_no"]))["status"] == "closed"
    assert (await stack.sandbox_order(first["pay_no"]))["trade_state"] == "CLOSED"
    assert (await stack.shopper_pays(first["pay_no"])).status_code == 409

    paid = await stack.http.post(
        f"{stack.sandbox_url}/sandbox/alipay/orders/{second['pay_no']}/pay",
        json={"app_id": alipay.app_id, "outcome": "success"},
    )
    assert paid.status_code == 200, paid.text
    await stack.wait_status(second["pay_no"], "paid")
    trade = await _trade(stack, first["trade_no"])
    assert trade["status"] == "paid" and trade["current_pay_no"] == second["pay_no"]
    assert [(a["pay_no"], a["status"]) for a in trade["attempts"]] == [
        (first["pay_no"], "closed"),
        (second["pay_no"], "paid"),
    ]
    assert await _event_types(stack, 2) == sorted(
        [("payment.closed", first["pay_no"]), ("payment.succeeded", second["pay_no"])]
    )
    refused = await stack.http.post(
        f"{stack.gateway_url}/v1/trades/{first['trade_no']}/attempts",
        json={"channel": "wechatpay", "method": "native"},
        headers=stack.auth(),
    )
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "trade_not_open"


async def test_an_earlier_attempt_found_paid_settles_the_trade(stack: Stack) -> None:
    await stack.set_faults(lose_callbacks=1.0)
    first = (await stack.create_payment(amount=900)).json()
    await stack.wait_status(first["pay_no"], "awaiting_payment")
    assert (await stack.shopper_pays(first["pay_no"])).status_code == 200  # callback lost
    second = await _attempt(stack, first["trade_no"], channel="wechatpay", method="native")
    token = await stack.token(second["token"], wait=10)
    assert token["status"] == "prepay_failed"
    assert token["failure"]["code"] == "TRADE_ALREADY_SETTLED"
    assert (await stack.payment(first["pay_no"]))["status"] == "paid"
    assert (await _trade(stack, first["trade_no"]))["status"] == "paid"
    # The second attempt never reached WeChat.
    missing = await stack.http.get(
        f"{stack.sandbox_url}/sandbox/wechatpay/orders/{second['pay_no']}"
    )
    assert missing.status_code == 404


async def test_a_partial_payment_is_refunded_at_the_channel(stack: Stack) -> None:
    payment = (await stack.create_payment(amount=5000)).json()
    await stack.wait_status(payment["pay_no"], "awaiting_payment")
    assert (await stack.shopper_pays(payment["pay_no"], paid_amount=3000)).status_code == 200
    partial = await stack.wait_status(payment["pay_no"], "partially_paid")
    assert (partial["paid_amount"], partial["amount_refunded"]) == (3000, 3000)
    listed = f"{stack.gateway_url}/v1/payments/{payment['pay_no']}/refunds"
    async with asyncio.timeout(20):
        while True:
            refunds = (await stack.http.get(listed, headers=stack.auth())).json()["data"]
            if refunds and refunds[0]["status"] == "succeeded":
                break
            await asyncio.sleep(0.1)
    assert [(r["amount"], r["reason"]) for r in refunds] == [(3000, "partial payment")]
    types = [t for t, _ in await _event_types(stack, 2)]
    assert types == ["payment.partially_paid", "refund.succeeded"]
    # The trade counts the attempt as failed: the shopper may pay again.
    assert (await _trade(stack, payment["trade_no"]))["status"] == "failed"
    again = await _attempt(stack, payment["trade_no"], channel="wechatpay", method="native")
    assert (await stack.token(again["token"], wait=10))["status"] == "awaiting_payment"
