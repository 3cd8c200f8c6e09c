"""Refunds on the real stack, for each channel: the merchant API answers at once, a worker
refunds at the sandbox, the channel's answer, callbacks and queries end the refund exactly
once, the merchant gets a signed ``refund.succeeded``; refunds never exceed what was paid,
here or at the channel."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest

from payfront.devsetup_alipay import provision_alipay_sandbox_account
from sdk import verify_webhook
from tests.conftest import Stack
from tests.integration import test_stripe_flow as stripe_flow


@pytest.fixture
def stack_overrides() -> dict[str, Any]:
    return {"channel_timeout_s": 0.5, "check_after_s": 0.5, "check_every_s": 0.5}


async def refund(stack: Stack, pay_no: str, key: str | None = None, **body: Any) -> httpx.Response:
    headers = stack.auth(**({"Idempotency-Key": key} if key else {}))
    return await stack.http.post(
        f"{stack.gateway_url}/v1/payments/{pay_no}/refunds", json=body, headers=headers
    )


async def refund_view(stack: Stack, refund_no: str) -> dict[str, Any]:
    answer = await stack.http.get(
        f"{stack.gateway_url}/v1/refunds/{refund_no}", headers=stack.auth()
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def wait_refund(
    stack: Stack, refund_no: str, status: str, timeout: float = 15
) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while (view := await refund_view(stack, refund_no))["status"] != status:
            await asyncio.sleep(0.05)
    return view


async def refund_webhooks(stack: Stack, count: int) -> list[dict[str, Any]]:
    """The verified ``refund.*`` events the merchant received, once ``count`` have arrived."""
    async with asyncio.timeout(15):
        while True:
            found = []
            for headers, body in stack.inbox.received:
                event = verify_webhook(body, headers["Payfront-Signature"], stack.webhook_secret)
                if event.type.startswith("refund."):
                    found.append(orjson.loads(body))
            if len(found) >= count:
                return found
            await asyncio.sleep(0.05)


async def paid_wechatpay(stack: Stack, amount: int) -> str:
    payment = (await stack.create_payment(amount=amount)).json()
    await stack.wait_status(payment["pay_no"], "awaiting_payment")
    assert (await stack.shopper_pays(payment["pay_no"])).status_code == 200
    await stack.wait_status(payment["pay_no"], "paid")
    return str(payment["pay_no"])


async def paid_alipay(stack: Stack, amount: int) -> str:
    account = await provision_alipay_sandbox_account(
        stack.db,
        stack.vault,
        sandbox_url=stack.sandbox_url,
        merchant_id="mch_test",
        account_id="ali_test",
    )
    created = await stack.create_payment(amount=amount, channel="alipay", method="qr")
    pay_no = str(created.json()["pay_no"])
    await stack.wait_status(pay_no, "awaiting_payment")
    paid = await stack.http.post(
        f"{stack.sandbox_url}/sandbox/alipay/orders/{pay_no}/pay",
        json={"app_id": account.app_id, "outcome": "success"},
    )
    assert paid.status_code == 200, paid.text
    await stack.wait_status(pay_no, "paid")
    return pay_no


async def paid_stripe(stack: Stack, amount: int) -> str:
    await stripe_flow.provision(stack)
    payment, token = await stripe_flow.stripe_payment(stack, amount=amount, currency="CNY")
    await stripe_flow.shopper_pays(stack, token["credential"]["payment_intent_id"])
    await stack.wait_status(payment["pay_no"], "paid")
    return str(payment["pay_no"])


PAID: dict[str, Callable[[Stack, int], Awaitable[str]]] = {
    "wechatpay": paid_wechatpay,
    "alipay": paid_alipay,
    "stripe": paid_stripe,
}


@pytest.mark.parametrize("channel", sorted(PAID))
async def test_partial_then_rest_then_nothing_left(stack: Stack, channel: str) -> None:
    pay_no = await PAID[channel](stack, 1000)
    key = f"refund-{uuid.uuid4().hex}"
    first = await refund(stack, pay_no, key, amount=300, reason="broken cup")
    assert first.status_code == 201, first.text
    created = first.json()
    assert (created["status"], created["amount"], created["pay_no"]) == ("pending", 300, pay_no)
    replay = await refund(stack, pay_no, key, amount=300, reason="broken cup")
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json()["refund_no"] == created["refund_no"]
    assert (await refund(stack, pay_no, key, amount=301)).status_code == 422

    done = await wait_refund(stack, created["refund_no"], "succeeded")
    assert done["succeeded_at"] is not None and done["failure"] is None
    payment = await stack.payment(pay_no)
    assert (payment["status"], payment["amount_refunded"]) == ("paid", 300)

    too_much = await refund(stack, pay_no, amount=701)
    assert too_much.status_code == 400
    assert too_much.json()["error"]["code"] == "amount_exceeds_refundable"
    rest = await refund(stack, pay_no)  # no amount: all that is left
    assert rest.json()["amount"] == 700
    await wait_refund(stack, rest.json()["refund_no"], "succeeded")
    nothing = await refund(stack, pay_no, amount=1)
    assert nothing.status_code == 409
    assert nothing.json()["error"]["code"] == "payment_fully_refunded"

    events = await refund_webhooks(stack, 2)
    succeeded = sorted(
        (e["data"]["object"]["amount"], e["data"]["object"]["refund_no"])
        for e in events
        if e["type"] == "refund.succeeded"
    )
    assert succeeded == sorted([(300, created["refund_no"]), (700, rest.json()["refund_no"])])
    await asyncio.sleep(0.5)  # refund callbacks arriving late change nothing
    assert len(await refund_webhooks(stack, 2)) == 2
    listed = await stack.http.get(
        f"{stack.gateway_url}/v1/payments/{pay_no}/refunds", headers=stack.auth()
    )
    assert [(r["amount"], r["status"]) for r in listed.json()["data"]] == [
        (300, "succeeded"),
        (700, "succeeded"),
    ]


async def test_a_payment_not_paid_cannot_be_refunded(stack: Stack) -> None:
    payment = (await stack.create_payment()).json()
    await stack.wait_status(payment["pay_no"], "awaiting_payment")
    refused = await refund(stack, payment["pay_no"], amount=10)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "payment_not_refundable"
    assert (await stack.payment(payment["pay_no"]))["amount_refunded"] == 0
    missing = await refund(stack, "pay_not_there", amount=10)
    assert missing.status_code == 404
    bad = await refund(stack, payment["pay_no"], amount="10")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "amount"


async def test_concurrent_refund_requests_never_exceed_the_payment(stack: Stack) -> None:
    pay_no = await paid_wechatpay(stack, 100)
    answers = await asyncio.gather(*(refund(stack, pay_no, amount=40) for _ in range(8)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201, 201] + [400] * 6
    made = [answer.json()["refund_no"] for answer in answers if answer.status_code == 201]
    for refund_no in made:
        await wait_refund(stack, refund_no, "succeeded")
    assert (await stack.payment(pay_no))["amount_refunded"] == 80
