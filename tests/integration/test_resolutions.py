"""What automation cannot settle, on the real stack: a payment whose create answer was lost
ends ``unknown`` (not failed), the check job settles it from the channel's word, a person can
settle it through the audited API; anomalies are listed and resolved with a trail; a merchant
can read an event's delivery log and have it sent again."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from core.store.tables import resolutions
from sdk import verify_webhook
from tests.conftest import Stack


@pytest.fixture
def stack_overrides() -> dict[str, Any]:
    return {"channel_timeout_s": 0.3, "prepay_max_tries": 2}


async def _unknown_payment(stack: Stack, **overrides: Any) -> dict[str, Any]:
    """A payment whose creates all reached the sandbox but whose answers never came back."""
    await stack.set_faults(timeout_rate=1.0)
    payment = (await stack.create_payment(**overrides)).json()
    unknown = await stack.wait_status(payment["pay_no"], "unknown", timeout=15)
    assert unknown["credential"] is None
    assert unknown["failure"]["code"]  # the last error is kept for the record
    return unknown


async def test_a_lost_create_answer_ends_unknown_then_the_check_closes_it(stack: Stack) -> None:
    payment = await _unknown_payment(stack)
    token = await stack.token(payment["token"], wait=0.5)  # unknown is not waited on
    assert token["status"] == "unknown"
    # The order exists at the channel, unpaid; nobody has its QR code.
    assert (await stack.sandbox_order(payment["pay_no"]))["trade_state"] == "NOTPAY"
    await asyncio.sleep(1.5)  # sweeps run; the channel does not answer queries either
    assert (await stack.payment(payment["pay_no"]))["status"] == "unknown"

    await stack.set_faults()
    closed = await stack.wait_status(payment["pay_no"], "closed", timeout=15)
    assert closed["paid_at"] is None
    assert (await stack.sandbox_order(payment["pay_no"]))["trade_state"] == "CLOSED"


async def test_unknown_but_paid_at_the_channel_is_found_paid(stack: Stack) -> None:
    await stack.set_faults(lose_callbacks=1.0)
    payment = await _unknown_payment(stack, amount=321)
    paid_there = await stack.shopper_pays(payment["pay_no"])
    assert paid_there.status_code == 200
    await stack.set_faults(lose_callbacks=1.0)  # answers again; callbacks still lost
    paid = await stack.wait_status(payment["pay_no"], "paid", timeout=15)
    assert paid["amount"] == 321
    await stack.inbox.wait_for(1)
    headers, body = stack.inbox.received[0]
    assert verify_webhook(body, headers["Payfront-Signature"], stack.webhook_secret).type == (
        "payment.succeeded"
    )


async def test_a_person_settles_an_unknown_payment_with_an_audit_trail(stack: Stack) -> None:
    payment = await _unknown_payment(stack)
    pay_no = payment["pay_no"]
    url = f"{stack.gateway_url}/v1/payments/{pay_no}/resolve"
    decision = {
        "action": "paid",
        "actor": "ops@shop.example",
        "reason": "seen paid in the WeChat Pay merchant console",
        "evidence": {"channel_trade_no": "4200001234567890", "ticket": "OPS-77"},
    }
    missing_reason = await stack.http.post(
        url, json={k: v for k, v in decision.items() if k != "reason"}, headers=stack.auth()
    )
    assert missing_reason.status_code == 400
    assert missing_reason.json()["error"]["param"] == "reason"

    settled = await stack.http.post(url, json=decision, headers=stack.auth())
    assert settled.status_code == 200, settled.text
    body = settled.json()
    assert body["status"] == "paid" and body["paid_at"] is not None
    again = await stack.http.post(url, json=decision, headers=stack.auth())
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "payment_not_unknown"

    async with stack.db.read() as conn:
        trail = (
            await conn.execute(sa.select(resolutions).where(resolutions.c.subject_id == pay_no))
        ).all()
    assert len(trail) == 1
    entry = trail[0]
    assert (entry.subject_type, entry.action, entry.actor) == ("payment", "paid", decision["actor"])
    assert entry.evidence == decision["evidence"]
    assert stack.api_key.startswith(entry.api_key_prefix) and len(entry.api_key_prefix) >= 8
    await stack.inbox.wait_for(1)
    assert orjson.loads(stack.inbox.received[0][1])["type"] == "payment.succeeded"


async def test_only_unknown_payments_can_be_settled_by_hand(stack: Stack) -> None:
    payment = (await stack.create_payment()).json()
    await stack.wait_status(payment["pay_no"], "awaiting_payment")
    answer = await stack.http.post(
        f"{stack.gateway_url}/v1/payments/{payment['pay_no']}/resolve",
        json={"action": "paid", "actor": "ops", "reason": "wrong button"},
        headers=stack.auth(),
    )
    assert answer.status_code == 409
    assert (await stack.payment(payment["pay_no"]))["status"] == "awaiting_payment"


async def test_anomalies_are_listed_and_resolved_once_with_a_trail(stack: Stack) -> None:
    payment = (await stack.create_payment(amount=5000)).json()
    await stack.wait_status(payment["pay_no"], "awaiting_payment")
    assert (await stack.shopper_pays(payment["pay_no"], paid_amount=5001)).status_code == 200
    listing = f"{stack.gateway_url}/v1/anomalies"
    async with asyncio.timeout(10):
        while not (found := (await stack.http.get(listing, headers=stack.auth())).json()["data"]):
            await asyncio.sleep(0.05)
    anomaly = found[0]
    assert (anomaly["pay_no"], anomaly["kind"], anomaly["status"]) == (
        payment["pay_no"],
        "payment_mismatch",
        "open",
    )
    assert anomaly["detail"]["reported_amount"] == 5001
    assert (await stack.payment(payment["pay_no"]))["status"] == "awaiting_payment"

    resolve = f"{listing}/{anomaly['id']}/resolve"
    decision = {
        "action": "refunded",
        "actor": "finance@shop.example",
        "reason": "shopper paid 0.01 too much; refunded the difference in the console",
        "evidence": {"console_refund": "50300001"},
    }
    bad = await stack.http.post(
        resolve, json=decision | {"action": "made_up"}, headers=stack.auth()
    )
    assert bad.status_code == 400
    done = await stack.http.post(resolve, json=decision, headers=stack.auth())
    assert done.status_code == 200, done.text
    resolved = done.json()
    assert resolved["status"] == "resolved" and resolved["resolved_at"] is not None
    assert [(r["action"], r["actor"]) for r in resolved["resolutions"]] == [
        ("refunded", "finance@shop.example")
    ]
    twice = await stack.http.post(resolve, json=decision, headers=stack.auth())
    assert twice.json()["error"]["code"] == "anomaly_already_resolved"
    assert (await stack.http.get(listing, params={"status": "open"}, headers=stack.auth())).json()[
        "data"
    ] == []
    one = await stack.http.get(f"{listing}/{anomaly['id']}", headers=stack.auth())
    assert len(one.json()["resolutions"]) == 1

    # Another merchant sees none of it.
    from core.merchants import create_api_key, create_merchant

    other = await create_api_key(stack.db, await create_merchant(stack.db, "Other shop"))
    theirs = await stack.http.get(listing, headers={"Authorization": f"Bearer {other}"})
    assert theirs.json()["data"] == []
    hidden = await stack.http.post(
        resolve, json=decision, headers={"Authorization": f"Bearer {other}"}
    )
    assert hidden.status_code == 404


async def test_an_event_can_be_read_with_its_log_and_sent_again(stack: Stack) -> None:
    stack.inbox.answers = [500]  # the merchant's endpoint fails once
    payment = (await stack.create_payment()).json()
    await stack.wait_status(payment["pay_no"], "awaiting_payment")
    await stack.shopper_pays(payment["pay_no"])
    await stack.inbox.wait_for(2, timeout=15)  # failed, then retried and delivered
    event_id = orjson.loads(stack.inbox.received[0][1])["id"]
    url = f"{stack.gateway_url}/v1/events/{event_id}"

    async def log_of(attempts: int) -> tuple[dict[str, Any], dict[str, Any]]:
        # The attempt is recorded just after the endpoint answered: wait for it.
        async with asyncio.timeout(10):
            while True:
                event = (await stack.http.get(url, headers=stack.auth())).json()
                [delivery] = event["deliveries"]
                if len(delivery["attempt_log"]) == attempts:
                    return event, delivery
                await asyncio.sleep(0.05)

    event, delivery = await log_of(2)
    assert event["type"] == "payment.succeeded"
    assert delivery["status"] == "succeeded"
    assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 200]

    resent = await stack.http.post(f"{url}/resend", headers=stack.auth())
    assert resent.status_code == 202, resent.text
    await stack.inbox.wait_for(3, timeout=15)
    headers, body = stack.inbox.received[2]
    assert verify_webhook(body, headers["Payfront-Signature"], stack.webhook_secret).id == event_id
    _, delivery = await log_of(3)
    assert delivery["status"] == "succeeded"
    missing = await stack.http.post(
        f"{stack.gateway_url}/v1/events/evt_missing/resend", headers=stack.auth()
    )
    assert missing.status_code == 404
