"""The Stripe emulator's Connect transfers: the balance they draw on (charges net of fees,
refunds, admin top-ups), ``balance_insufficient`` kept under the Idempotency-Key, idempotent
creates, retrieve and list filters, the ``transfer.created`` event and the ``transfer`` balance
transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.unit.mock_channels.test_stripe_emulator import Box, Hook, start_box
from tests.unit.mock_channels.test_stripe_refunds_sandbox import (
    events_of,
    hook,
    paid_intent,
    refund,
)

__all__ = ["hook"]  # the fixture, used by name

DESTINATION = "acct_1PayeeConnected000"


@pytest.fixture
async def box(tmp_path: Path, hook: Hook) -> AsyncIterator[Box]:
    sandbox = await start_box(tmp_path / "state", {"webhook_url": hook.url})
    yield sandbox
    await sandbox.client.close()


def transfer_params(amount: int, number: str, **extra: str) -> dict[str, object]:
    return {
        "amount": amount,
        "currency": "usd",
        "destination": DESTINATION,
        "transfer_group": f"payfront-payout-{number}",
        "metadata[out_payout_no]": number,
        **extra,
    }


async def test_transfers_draw_on_the_balance(box: Box, hook: Hook) -> None:
    intent = await paid_intent(box)  # 1999 less 2.9% + 30 (88): 1911 net
    await refund(box, intent["id"], 400, "r1")  # 1511 left
    refused = await box.api(
        "POST", "/v1/transfers", transfer_params(1512, "w1"), idempotency_key="k-w1"
    )
    assert refused.status == 400 and refused.json()["error"]["code"] == "balance_insufficient"
    # Kept for the key, as Stripe keeps answers of requests that began executing.
    replay = await box.api(
        "POST", "/v1/transfers", transfer_params(1512, "w1"), idempotency_key="k-w1"
    )
    assert replay.headers.get("Idempotent-Replayed") == "true" and replay.status == 400

    made = await box.api(
        "POST", "/v1/transfers", transfer_params(1511, "w2"), idempotency_key="k-w2"
    )
    assert made.status == 200, made.body
    transfer = made.json()
    assert transfer["object"] == "transfer" and transfer["amount"] == 1511
    again = await box.api(
        "POST", "/v1/transfers", transfer_params(1511, "w2"), idempotency_key="k-w2"
    )
    assert again.json()["id"] == transfer["id"]
    other = await box.api("POST", "/v1/transfers", transfer_params(1, "w2"), idempotency_key="k-w2")
    assert other.status == 400 and other.json()["error"]["type"] == "idempotency_error"

    txn = await box.api("GET", f"/v1/balance_transactions/{transfer['balance_transaction']}")
    assert txn.json()["type"] == "transfer" and txn.json()["amount"] == -1511
    events = await events_of(hook, "transfer.created", 1)
    assert events[0]["data"]["object"]["id"] == transfer["id"]


async def test_top_up_retrieve_and_list(box: Box) -> None:
    status, topped = await box.admin(
        "POST", f"/sandbox/stripe/accounts/{box.account['account_id']}/balance", {"amount": 900}
    )
    assert status == 200 and topped["balance"] == 900
    for number in ("a", "b"):
        made = await box.api("POST", "/v1/transfers", transfer_params(300, number))
        assert made.status == 200
    listed = await box.api("GET", "/v1/transfers", {"transfer_group": "payfront-payout-a"})
    assert [t["metadata"]["out_payout_no"] for t in listed.json()["data"]] == ["a"]
    everything = await box.api("GET", "/v1/transfers", {"destination": DESTINATION, "limit": 1})
    assert everything.json()["has_more"] is True
    first = everything.json()["data"][0]
    assert first["metadata"]["out_payout_no"] == "b"  # newest first
    got = await box.api("GET", f"/v1/transfers/{first['id']}")
    assert got.json()["id"] == first["id"]
    missing = await box.api("GET", "/v1/transfers/tr_missing")
    assert missing.status == 404 and missing.json()["error"]["code"] == "resource_missing"


async def test_transfer_refusals(box: Box) -> None:
    own = await box.api(
        "POST", "/v1/transfers", transfer_params(1, "x", destination=box.account["account_id"])
    )
    assert own.status == 400 and own.json()["error"]["param"] == "destination"
    unknown = await box.api("POST", "/v1/transfers", transfer_params(1, "y", color="red"))
    assert unknown.status == 400 and unknown.json()["error"]["code"] == "parameter_unknown"
