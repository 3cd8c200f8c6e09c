"""The Stripe channel on real components: token at once → worker creates the PaymentIntent at
the sandbox → the shopper pays → a signed Stripe event reaches the gateway → paid → the
merchant's signed webhook."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from payfront.devsetup_stripe import StripeSandboxAccount, provision_stripe_sandbox_account
from sdk import verify_webhook
from tests.conftest import Stack

ACCOUNT_ID = "stripe_test"


@pytest.fixture
def stack_overrides() -> dict[str, Any]:
    # A short channel timeout, so that a held answer is given up on quickly.
    return {"channel_timeout_s": 0.5}


async def provision(stack: Stack) -> StripeSandboxAccount:
    return await provision_stripe_sandbox_account(
        stack.db,
        stack.vault,
        sandbox_url=stack.sandbox_url,
        merchant_id="mch_test",
        account_id=ACCOUNT_ID,
        webhook_url=f"{stack.gateway_url}/test/callbacks/stripe/{ACCOUNT_ID}",
    )


async def stripe_payment(stack: Stack, **overrides: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Create a Stripe payment; its body and the token once the credential is there."""
    fields = {"channel": "stripe", "method": "payment_intent", "currency": "USD", **overrides}
    created = await stack.create_payment(**fields)
    assert created.status_code == 201, created.text
    payment = created.json()
    token = await stack.token(payment["token"], wait=5)
    assert token["status"] == "awaiting_payment", token
    return payment, token


async def shopper_pays(stack: Stack, intent_id: str, **body: Any) -> dict[str, Any]:
    answer = await stack.http.post(
        f"{stack.sandbox_url}/sandbox/stripe/payment_intents/{intent_id}/pay", json=body
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def sandbox_intent(stack: Stack, intent_id: str) -> dict[str, Any]:
    answer = await stack.http.get(f"{stack.sandbox_url}/sandbox/stripe/payment_intents/{intent_id}")
    answer.raise_for_status()
    return dict(answer.json())


async def test_payment_intent_paid_by_signed_event(stack: Stack) -> None:
    account = await provision(stack)
    assert account.stripe_account_id.startswith("acct_")

    payment, token = await stripe_payment(stack, amount=1999, metadata={"cart": "7"})
    credential = token["credential"]
    assert credential["type"] == "stripe_payment_intent"
    intent_id = credential["payment_intent_id"]
    assert intent_id.startswith("pi_")
    assert credential["client_secret"].startswith(intent_id + "_secret_")

    view = await sandbox_intent(stack, intent_id)
    intent = view["payment_intent"]
    assert (intent["amount"], intent["currency"]) == (1999, "usd")
    assert intent["metadata"] == {"pay_no": payment["pay_no"]}
    assert view["account_id"] == account.stripe_account_id

    await shopper_pays(stack, intent_id)
    final = await stack.wait_status(payment["pay_no"], "paid")
    assert final["paid_at"] is not None

    await stack.inbox.wait_for(1)
    headers, body = stack.inbox.received[0]
    event = verify_webhook(body, headers["Payfront-Signature"], stack.webhook_secret)
    assert event.type == "payment.succeeded"
    data = orjson.loads(body)["data"]["object"]
    assert data["pay_no"] == payment["pay_no"]
    assert (data["amount"], data["currency"], data["status"]) == (1999, "USD", "paid")
    assert data["metadata"] == {"cart": "7"}

    # The gateway acknowledged Stripe's event the first time, as Stripe expects (2xx).
    events = {e["type"]: e for e in (await sandbox_intent(stack, intent_id))["events"]}
    attempts = events["payment_intent.succeeded"]["delivery_attempts"]
    assert [a["status"] for a in attempts] == [200]
    assert "charge.succeeded" not in events or not events["charge.succeeded"]["delivery_attempts"]


async def test_zero_decimal_amount_passes_through_unchanged(stack: Stack) -> None:
    await provision(stack)
    payment, token = await stripe_payment(stack, amount=500, currency="JPY")
    intent_id = token["credential"]["payment_intent_id"]
    intent = (await sandbox_intent(stack, intent_id))["payment_intent"]
    assert (intent["amount"], intent["currency"]) == (500, "jpy")  # ¥500, not ¥5

    await shopper_pays(stack, intent_id)
    final = await stack.wait_status(payment["pay_no"], "paid")
    assert (final["amount"], final["currency"]) == (500, "JPY")
    await stack.inbox.wait_for(1)
    data = orjson.loads(stack.inbox.received[0][1])["data"]["object"]
    assert (data["amount"], data["currency"]) == (500, "JPY")


async def test_declined_attempt_is_acknowledged_and_the_order_stays_payable(stack: Stack) -> None:
    await provision(stack)
    payment, token = await stripe_payment(stack, amount=1200)
    intent_id = token["credential"]["payment_intent_id"]

    await shopper_pays(stack, intent_id, outcome="fail", decline_code="insufficient_funds")
    failed = await _delivered(stack, intent_id, "payment_intent.payment_failed")
    assert [a["status"] for a in failed["delivery_attempts"]] == [200]
    assert (await stack.payment(payment["pay_no"]))["status"] == "awaiting_payment"

    await shopper_pays(stack, intent_id)
    await stack.wait_status(payment["pay_no"], "paid")


async def test_forged_event_is_refused_and_changes_nothing(stack: Stack) -> None:
    await provision(stack)
    payment, token = await stripe_payment(stack)
    body = orjson.dumps(
        {
            "id": "evt_forged",
            "object": "event",
            "type": "payment_intent.succeeded",
            "created": 1,
            "livemode": False,
            "data": {
                "object": {
                    "id": token["credential"]["payment_intent_id"],
                    "object": "payment_intent",
                    "amount": 100,
                    "amount_received": 100,
                    "currency": "usd",
                    "status": "succeeded",
                    "metadata": {"pay_no": payment["pay_no"]},
                }
            },
        }
    )
    answer = await stack.http.post(
        f"{stack.gateway_url}/test/callbacks/stripe/{ACCOUNT_ID}",
        content=body,
        headers={"Stripe-Signature": "t=1,v1=" + "0" * 64, "Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    assert answer.json()["received"] is False
    assert (await stack.payment(payment["pay_no"]))["status"] == "awaiting_payment"


async def test_a_create_whose_answer_was_lost_is_not_made_twice(stack: Stack) -> None:
    """The sandbox makes the intent and holds the answer; the worker times out (unknown
    outcome), cannot query without the intent's id, and creates again with the same
    Idempotency-Key: Stripe replays the first intent."""
    account = await provision(stack)
    faults = await stack.http.put(
        f"{stack.sandbox_url}/sandbox/stripe/faults/{account.stripe_account_id}",
        json={"timeout_rate": 1.0},
    )
    faults.raise_for_status()
    created = await stack.create_payment(channel="stripe", method="payment_intent", currency="USD")
    assert created.status_code == 201, created.text
    token = await stack.token(created.json()["token"], wait=10)
    assert token["status"] == "awaiting_payment", token
    answer = await stack.http.get(
        f"{stack.sandbox_url}/sandbox/stripe/payment_intents",
        params={"account_id": account.stripe_account_id, "pay_no": created.json()["pay_no"]},
    )
    intents = answer.json()["data"]
    assert [view["payment_intent"]["id"] for view in intents] == [
        token["credential"]["payment_intent_id"]
    ]


async def test_provisioning_again_keeps_the_credentials(stack: Stack) -> None:
    first = await provision(stack)
    again = await provision(stack)
    assert again.stripe_account_id == first.stripe_account_id
    assert again.secret_key == first.secret_key
    assert again.webhook_secret == first.webhook_secret


async def _delivered(stack: Stack, intent_id: str, event_type: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            events = (await sandbox_intent(stack, intent_id))["events"]
            found = [e for e in events if e["type"] == event_type and e["delivery_attempts"]]
            if found:
                return dict(found[0])
            await asyncio.sleep(0.02)
