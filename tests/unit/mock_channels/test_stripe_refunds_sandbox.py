"""The Stripe emulator's refunds and balance: retrieve and list refunds (filters, Stripe's
pagination), refunds that settle later (``pm_card_pendingRefund``, ``pm_card_refundFail``, manual
settlement) with signed ``refund.*`` events on Stripe's retry schedule, idempotency on
``POST /v1/refunds``, and balance transactions with fees, ``created`` filters, pagination and
``expand[]=data.source``. Signatures are checked with ``hmac`` directly."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from mock_channels.stripe_sandbox import STRIPE_SANDBOX, StripeSandbox
from tests.unit.mock_channels.test_stripe_emulator import Box, Hook, start_box, verify


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    receiver = Hook()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    server = TestServer(app)
    await server.start_server()
    receiver.url = str(server.make_url("/hook"))
    yield receiver
    await server.close()


@pytest.fixture
async def box(tmp_path: Path, hook: Hook) -> AsyncIterator[Box]:
    sandbox = await start_box(tmp_path / "state", {"webhook_url": hook.url})
    yield sandbox
    await sandbox.client.close()


@pytest.fixture
async def manual(tmp_path: Path, hook: Hook) -> AsyncIterator[Box]:
    """An account whose pending refunds wait for the admin's settle."""
    sandbox = await start_box(
        tmp_path / "manual", {"webhook_url": hook.url, "refund_settlement": "manual"}
    )
    yield sandbox
    await sandbox.client.close()


def sandbox_of(box: Box) -> StripeSandbox:
    return box.client.server.app[STRIPE_SANDBOX]


async def paid_intent(
    box: Box, pay_no: str = "pay_r1", method: str = "pm_card_visa", amount: int = 1999
) -> dict[str, Any]:
    intent = await box.create(pay_no, amount=amount)
    status, view = await box.pay(intent["id"], payment_method=method)
    assert status == 200, view
    return intent


async def refund(box: Box, intent_id: str, amount: int, refund_no: str, **extra: Any) -> Any:
    params = {
        "payment_intent": intent_id,
        "amount": amount,
        "metadata[out_refund_no]": refund_no,
        "metadata[out_trade_no]": "pay_r1",
        **extra,
    }
    return await box.api("POST", "/v1/refunds", params, idempotency_key=f"k-{refund_no}")


async def events_of(hook: Hook, event_type: str, count: int, timeout: float = 5) -> list[Any]:
    async with asyncio.timeout(timeout):
        while True:
            found = [json.loads(body) for _, body in hook.of_type(event_type)]
            if len(found) >= count:
                return found
            hook.arrived.clear()
            await hook.arrived.wait()


# -- create, retrieve, list -----------------------------------------------------------------


async def test_retrieve_a_refund_with_its_metadata(box: Box, hook: Hook) -> None:
    intent = await paid_intent(box)
    made = await refund(box, intent["id"], 500, "rfd_1", reason="requested_by_customer")
    assert made.status == 200, made.body
    created = made.json()
    assert created["id"].startswith("re_")
    assert (created["status"], created["amount"], created["currency"]) == ("succeeded", 500, "usd")
    assert created["metadata"] == {"out_refund_no": "rfd_1", "out_trade_no": "pay_r1"}
    assert created["reason"] == "requested_by_customer"
    assert created["balance_transaction"].startswith("txn_")
    assert "failure_reason" not in created

    fetched = await box.api("GET", f"/v1/refunds/{created['id']}")
    assert fetched.status == 200
    assert fetched.json() == created

    missing = await box.api("GET", "/v1/refunds/re_nope")
    assert missing.status == 404 and missing.error["code"] == "resource_missing"
    expanded = await box.api("GET", f"/v1/refunds/{created['id']}", {"expand[]": "charge"})
    assert expanded.status == 400

    event = (await events_of(hook, "refund.created", 1))[0]
    assert event["data"]["object"] == created
    headers, body = hook.of_type("refund.created")[0]
    assert verify(headers, body, box.account["webhook_secret"])


async def test_refunds_are_private_to_their_account(box: Box) -> None:
    intent = await paid_intent(box)
    created = (await refund(box, intent["id"], 500, "rfd_priv")).json()
    other = await box.admin("POST", "/sandbox/stripe/accounts", {})
    other_key = other[1]["secret_key"]
    assert (await box.api("GET", f"/v1/refunds/{created['id']}", key=other_key)).status == 404
    listed = await box.api("GET", "/v1/refunds", key=other_key)
    assert listed.json()["data"] == []
    by_intent = await box.api("GET", "/v1/refunds", {"payment_intent": intent["id"]}, key=other_key)
    assert by_intent.status == 404


async def test_list_refunds_by_payment_intent_with_pagination(box: Box) -> None:
    first = await paid_intent(box, "pay_a", amount=5000)
    second = await paid_intent(box, "pay_b", amount=5000)
    ids = []
    for n in range(5):
        made = await refund(box, first["id"], 100 + n, f"rfd_a{n}")
        ids.append(made.json()["id"])
    await refund(box, second["id"], 300, "rfd_b0")

    everything = await box.api("GET", "/v1/refunds", {"payment_intent": first["id"]})
    listing = everything.json()
    assert (listing["object"], listing["url"], listing["has_more"]) == (
        "list",
        "/v1/refunds",
        False,
    )
    assert [r["id"] for r in listing["data"]] == ids[::-1]  # newest first

    page_one = (
        await box.api("GET", "/v1/refunds", {"payment_intent": first["id"], "limit": 2})
    ).json()
    assert [r["id"] for r in page_one["data"]] == [ids[4], ids[3]]
    assert page_one["has_more"] is True
    params = {"payment_intent": first["id"], "limit": 2, "starting_after": ids[3]}
    page_two = (await box.api("GET", "/v1/refunds", params)).json()
    assert [r["id"] for r in page_two["data"]] == [ids[2], ids[1]]
    assert page_two["has_more"] is True
    params["starting_after"] = ids[1]
    page_three = (await box.api("GET", "/v1/refunds", params)).json()
    assert [r["id"] for r in page_three["data"]] == [ids[0]]
    assert page_three["has_more"] is False

    backwards = {"payment_intent": first["id"], "limit": 2, "ending_before": ids[1]}
    newer = (await box.api("GET", "/v1/refunds", backwards)).json()
    assert [r["id"] for r in newer["data"]] == [ids[3], ids[2]]
    assert newer["has_more"] is True

    all_of_account = (await box.api("GET", "/v1/refunds", {"limit": 100})).json()
    assert len(all_of_account["data"]) == 6
    default_limit = (await box.api("GET", "/v1/refunds")).json()
    assert len(default_limit["data"]) == 6 and default_limit["has_more"] is False
    by_charge = await box.api("GET", "/v1/refunds", {"charge": page_one["data"][0]["charge"]})
    assert len(by_charge.json()["data"]) == 5


@pytest.mark.parametrize(
    ("params", "status", "param"),
    [
        ({"limit": 0}, 400, "limit"),
        ({"limit": 101}, 400, "limit"),
        ({"limit": "x"}, 400, "limit"),
        ({"starting_after": "re_nope"}, 404, "starting_after"),
        ({"starting_after": "re_a", "ending_before": "re_b"}, 400, "ending_before"),
        ({"payment_intent": "pi_nope"}, 404, "payment_intent"),
        ({"status": "pending"}, 400, "status"),
    ],
)
async def test_list_refunds_validates(
    box: Box, params: dict[str, Any], status: int, param: str
) -> None:
    answer = await box.api("GET", "/v1/refunds", params)
    assert answer.status == status
    assert answer.error["param"] == param


# -- idempotency ----------------------------------------------------------------------------


async def test_refund_idempotency_replays_and_refuses(box: Box, hook: Hook) -> None:
    intent = await paid_intent(box)
    first = await refund(box, intent["id"], 500, "rfd_idem")
    again = await refund(box, intent["id"], 500, "rfd_idem")
    assert again.status == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    changed = await refund(box, intent["id"], 600, "rfd_idem")
    assert changed.status == 400
    assert changed.error["type"] == "idempotency_error"
    listed = (await box.api("GET", "/v1/refunds", {"payment_intent": intent["id"]})).json()
    assert [r["id"] for r in listed["data"]] == [first.json()["id"]]  # one refund made
    charge = await box.api("GET", f"/v1/charges/{first.json()['charge']}")
    assert charge.json()["amount_refunded"] == 500
    assert len(await events_of(hook, "refund.created", 1)) == 1


async def test_refused_refunds_are_replayed_too(box: Box) -> None:
    intent = await paid_intent(box)
    assert (await refund(box, intent["id"], 1999, "rfd_all")).status == 200
    refused = await refund(box, intent["id"], 1, "rfd_more")
    assert refused.status == 400 and refused.error["code"] == "charge_already_refunded"
    replayed = await refund(box, intent["id"], 1, "rfd_more")
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.error["code"] == "charge_already_refunded"


# -- refunds that settle later --------------------------------------------------------------


async def test_pending_refund_succeeds_later_with_events(box: Box, hook: Hook) -> None:
    intent = await paid_intent(box, method="pm_card_pendingRefund")
    made = (await refund(box, intent["id"], 700, "rfd_pend")).json()
    assert made["status"] == "pending"
    created, updated = (
        (await events_of(hook, "refund.created", 1))[0],
        (await events_of(hook, "refund.updated", 1))[0],
    )
    assert created["data"]["object"]["status"] == "pending"
    assert created["request"]["idempotency_key"] == "k-rfd_pend"
    assert updated["data"]["object"]["status"] == "succeeded"
    assert updated["data"]["object"]["metadata"]["out_refund_no"] == "rfd_pend"
    assert updated["request"] == {"id": None, "idempotency_key": None}
    headers, body = hook.of_type("refund.updated")[0]
    assert verify(headers, body, box.account["webhook_secret"])
    fetched = (await box.api("GET", f"/v1/refunds/{made['id']}")).json()
    assert fetched["status"] == "succeeded"
    assert hook.of_type("refund.failed") == []


async def test_refund_of_refund_fail_card_fails_after_succeeding(box: Box, hook: Hook) -> None:
    intent = await paid_intent(box, method="pm_card_refundFail")
    made = (await refund(box, intent["id"], 1999, "rfd_fail")).json()
    assert made["status"] == "succeeded"
    failed = (await events_of(hook, "refund.failed", 1))[0]["data"]["object"]
    updated = (await events_of(hook, "refund.updated", 1))[0]["data"]["object"]
    for refund_object in (failed, updated):
        assert refund_object["id"] == made["id"]
        assert refund_object["status"] == "failed"
        assert refund_object["failure_reason"] == "expired_or_canceled_card"
        assert refund_object["failure_balance_transaction"].startswith("txn_")
    # The money is back: the charge is refundable again.
    charge = (await box.api("GET", f"/v1/charges/{made['charge']}")).json()
    assert (charge["amount_refunded"], charge["refunded"]) == (0, False)
    again = await refund(box, intent["id"], 1999, "rfd_fail_2")
    assert again.status == 200


async def test_manual_settlement(manual: Box, hook: Hook) -> None:
    box = manual
    intent = await paid_intent(box, method="pm_card_pendingRefund", amount=3000)
    first = (await refund(box, intent["id"], 1000, "rfd_m1")).json()
    second = (await refund(box, intent["id"], 1000, "rfd_m2")).json()
    await asyncio.sleep(0.05)  # longer than an automatic settlement would take
    assert (await box.api("GET", f"/v1/refunds/{first['id']}")).json()["status"] == "pending"

    status, settled = await box.admin("POST", f"/sandbox/stripe/refunds/{first['id']}/settle", {})
    assert (status, settled["status"]) == (200, "succeeded")
    status, failed = await box.admin(
        "POST",
        f"/sandbox/stripe/refunds/{second['id']}/settle",
        {"outcome": "failed", "failure_reason": "insufficient_funds"},
    )
    assert (status, failed["status"], failed["failure_reason"]) == (
        200,
        "failed",
        "insufficient_funds",
    )
    status, _ = await box.admin("POST", f"/sandbox/stripe/refunds/{second['id']}/settle", {})
    assert status == 409  # final already
    assert (await box.admin("POST", "/sandbox/stripe/refunds/re_nope/settle", {}))[0] == 404
    bad = await box.admin(
        "POST", f"/sandbox/stripe/refunds/{first['id']}/settle", {"outcome": "maybe"}
    )
    assert bad[0] == 400
    # A succeeded refund can still fail (a closed card).
    status, late = await box.admin(
        "POST", f"/sandbox/stripe/refunds/{first['id']}/settle", {"outcome": "failed"}
    )
    assert (status, late["failure_reason"]) == (200, "expired_or_canceled_card")

    updates = await events_of(hook, "refund.updated", 3)
    assert [(e["data"]["object"]["id"], e["data"]["object"]["status"]) for e in updates] == [
        (first["id"], "succeeded"),
        (second["id"], "failed"),
        (first["id"], "failed"),
    ]
    assert len(await events_of(hook, "refund.failed", 2)) == 2
    view = await box.view(intent["id"])
    assert {r["id"]: r["status"] for r in view["refunds"]} == {
        first["id"]: "failed",
        second["id"]: "failed",
    }
    assert {"refund.created", "refund.updated", "refund.failed"} <= {
        e["type"] for e in view["events"]
    }


async def test_refund_events_are_retried_until_acknowledged(box: Box, hook: Hook) -> None:
    await box.admin(
        "POST",
        "/sandbox/stripe/accounts",
        {"secret_key": box.account["secret_key"], "enabled_events": ["refund.created"]},
    )
    intent = await paid_intent(box)
    hook.statuses = [500, 400]
    made = (await refund(box, intent["id"], 500, "rfd_retry")).json()
    await hook.wait_for(3)
    bodies = [json.loads(body) for _, body in hook.of_type("refund.created")]
    assert len(bodies) == 3 and {b["id"] for b in bodies} == {bodies[0]["id"]}
    assert bodies[0]["data"]["object"]["id"] == made["id"]
    view = await box.view(intent["id"])
    created = next(e for e in view["events"] if e["type"] == "refund.created")
    assert [a["status"] for a in created["delivery_attempts"]] == [500, 400, 200]
    assert created["delivered"] is True


# -- balance transactions -------------------------------------------------------------------


async def test_balance_transactions_of_charges_and_refunds(box: Box) -> None:
    intent = await paid_intent(box)
    made = (await refund(box, intent["id"], 500, "rfd_bt")).json()
    listed = await box.api("GET", "/v1/balance_transactions", {"expand[]": "data.source"})
    assert listed.status == 200, listed.body
    refund_txn, charge_txn = listed.json()["data"]
    assert listed.json()["url"] == "/v1/balance_transactions"
    # 2.9% of 1999 is 57.971: 58, plus 30.
    assert (charge_txn["type"], charge_txn["amount"], charge_txn["fee"], charge_txn["net"]) == (
        "charge",
        1999,
        88,
        1911,
    )
    assert charge_txn["fee_details"][0]["type"] == "stripe_fee"
    assert charge_txn["source"]["object"] == "charge"
    assert charge_txn["source"]["metadata"] == {"pay_no": "pay_r1"}
    assert charge_txn["source"]["payment_intent"] == intent["id"]
    assert (refund_txn["type"], refund_txn["amount"], refund_txn["fee"], refund_txn["net"]) == (
        "refund",
        -500,
        0,
        -500,
    )
    assert refund_txn["id"] == made["balance_transaction"]
    assert refund_txn["source"]["id"] == made["id"]
    assert refund_txn["source"]["metadata"]["out_refund_no"] == "rfd_bt"

    plain = (await box.api("GET", "/v1/balance_transactions")).json()["data"]
    assert [t["source"] for t in plain] == [made["id"], charge_txn["source"]["id"]]
    one = await box.api(
        "GET", f"/v1/balance_transactions/{refund_txn['id']}", {"expand[]": "source"}
    )
    assert one.json()["source"]["id"] == made["id"]
    charge = (await box.api("GET", f"/v1/charges/{made['charge']}")).json()
    assert charge["balance_transaction"] == charge_txn["id"]
    only_refunds = await box.api("GET", "/v1/balance_transactions", {"type": "refund"})
    assert [t["id"] for t in only_refunds.json()["data"]] == [refund_txn["id"]]
    refused = await box.api("GET", "/v1/balance_transactions", {"expand[]": "data.charge"})
    assert refused.status == 400 and refused.error["param"] == "expand[0]"


async def test_fee_is_configurable_and_declined_charges_make_no_transaction(
    tmp_path: Path, hook: Hook
) -> None:
    box = await start_box(
        tmp_path / "fees", {"webhook_url": hook.url, "fee_percent": "1.5", "fee_fixed": 0}
    )
    try:
        assert box.account["fee_percent"] == "1.5"
        await paid_intent(box, amount=1000)
        declined = await box.create("pay_declined")
        await box.pay(declined["id"], outcome="fail")
        data = (await box.api("GET", "/v1/balance_transactions")).json()["data"]
        assert [(t["amount"], t["fee"]) for t in data] == [(1000, 15)]
    finally:
        await box.client.close()


async def test_balance_transactions_by_day_across_pages(box: Box) -> None:
    """``created[gte]``/``created[lt]`` pick one UTC day; pages follow ``starting_after``."""
    for n in range(5):
        await box.api(
            "POST",
            "/v1/payment_intents",
            {
                "amount": 1000 + n,
                "currency": "usd",
                "payment_method": "pm_card_visa",
                "confirm": "true",
            },
        )
    book = sandbox_of(box).book
    day = datetime(2026, 3, 14, tzinfo=UTC)
    start = int(day.timestamp())
    times = [start - 1, start, start + 10, start + 86399, start + 86400]
    for txn, moment in zip(book.balance_transactions.values(), times, strict=True):
        txn.created = moment
    window = {"created[gte]": start, "created[lt]": start + 86400, "limit": 2}
    first = (await box.api("GET", "/v1/balance_transactions", window)).json()
    assert [t["created"] for t in first["data"]] == [start + 86399, start + 10]
    assert first["has_more"] is True
    window["starting_after"] = first["data"][-1]["id"]
    second = (await box.api("GET", "/v1/balance_transactions", window)).json()
    assert [t["created"] for t in second["data"]] == [start]
    assert second["has_more"] is False
    exact = (await box.api("GET", "/v1/balance_transactions", {"created": start - 1})).json()
    assert [t["amount"] for t in exact["data"]] == [1000]
    bounded = {"created[gt]": start, "created[lte]": start + 86400}
    assert len((await box.api("GET", "/v1/balance_transactions", bounded)).json()["data"]) == 3
    bad = await box.api("GET", "/v1/balance_transactions", {"created[after]": start})
    assert bad.status == 400 and bad.error["param"] == "created"
