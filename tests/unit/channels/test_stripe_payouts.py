"""Tests for Stripe payouts in the adapter (channels/stripe.py, channels/stripe_payouts.py): the
transfer's form and idempotency key, its answer, error classification, the query by id and by
transfer_group list, and the transfer.* webhooks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from channels.base import CreatePayout, HttpResponse, PayoutState
from channels.errors import (
    CallbackIgnored,
    CallbackRejected,
    ChannelError,
    ChannelFatal,
    ChannelOrderNotFound,
    ChannelRetryable,
    ChannelUnknownOutcome,
)
from channels.stripe import STRIPE_VERSION, Stripe, from_credentials, sign_payload

NOW = datetime(2026, 11, 25, 4, 0, 0, tzinfo=UTC)
T = int(NOW.timestamp())
SECRET_KEY = "sk_test_51PayfrontExampleKey0000000000"
WEBHOOK_SECRET = "whsec_currentSecret0000000000000000"
DESTINATION = "acct_1PayeeConnected000"
TR_ID = "tr_3PayfrontTransfer00001"
PAYOUT_NO = "wdr01JD8ZQ4Y1X0000000000001"


def channel() -> Stripe:
    return from_credentials({"secret_key": SECRET_KEY, "webhook_secret": WEBHOOK_SECRET})


def payout(**overrides: Any) -> CreatePayout:
    fields: dict[str, Any] = {
        "out_payout_no": PAYOUT_NO,
        "amount_minor": 2500,
        "currency": "USD",
        "payee_id": DESTINATION,
        "remark": "wallet withdrawal",
    }
    fields.update(overrides)
    return CreatePayout(**fields)


def transfer(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": TR_ID,
        "object": "transfer",
        "amount": 2500,
        "amount_reversed": 0,
        "balance_transaction": "txn_3Payfront",
        "created": T - 5,
        "currency": "usd",
        "description": "wallet withdrawal",
        "destination": DESTINATION,
        "livemode": False,
        "metadata": {"out_payout_no": PAYOUT_NO, "remark": "wallet withdrawal"},
        "reversals": {"object": "list", "data": [], "has_more": False},
        "reversed": False,
        "transfer_group": f"payfront-payout-{PAYOUT_NO}",
    }
    body.update(overrides)
    return body


def answer(status: int, payload: Any, **headers: str) -> HttpResponse:
    return HttpResponse(
        status, {"Content-Type": "application/json", **headers}, orjson.dumps(payload)
    )


def test_build_payout_request() -> None:
    request = channel().build_payout(payout(), now=NOW)
    assert (request.method, request.url) == ("POST", "https://api.stripe.com/v1/transfers")
    assert request.headers["Idempotency-Key"] == f"payfront-payout-{PAYOUT_NO}"
    assert request.headers["Stripe-Version"] == STRIPE_VERSION
    assert parse_qsl(request.body.decode()) == [
        ("amount", "2500"),
        ("currency", "usd"),
        ("destination", DESTINATION),
        ("description", "wallet withdrawal"),
        ("transfer_group", f"payfront-payout-{PAYOUT_NO}"),
        ("metadata[out_payout_no]", PAYOUT_NO),
        ("metadata[remark]", "wallet withdrawal"),
    ]
    assert channel().build_payout(payout(), now=NOW) == request  # identical on every retry


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"payee_id": "o-openid"}, "INVALID_PAYEE"),
        ({"amount_minor": 0}, "INVALID_AMOUNT"),
        ({"out_payout_no": "no spaces"}, "BAD_ORDER_NUMBER"),
    ],
)
def test_payouts_refused_before_sending(overrides: dict[str, Any], code: str) -> None:
    with pytest.raises(ChannelFatal) as caught:
        channel().build_payout(payout(**overrides), now=NOW)
    assert caught.value.code == code


def test_a_created_transfer_is_a_succeeded_payout() -> None:
    status = channel().parse_payout(answer(200, transfer()), payout=payout(), now=NOW)
    assert status.state is PayoutState.SUCCEEDED and status.channel_state == "paid"
    assert (status.out_payout_no, status.amount_minor) == (PAYOUT_NO, 2500)
    assert status.channel_payout_no == TR_ID
    assert status.succeeded_at == datetime.fromtimestamp(T - 5, UTC)


def test_answer_about_another_payout_is_unknown() -> None:
    other = transfer(metadata={"out_payout_no": "wdr-other"})
    with pytest.raises(ChannelUnknownOutcome):
        channel().parse_payout(answer(200, other), payout=payout(), now=NOW)
    with pytest.raises(ChannelUnknownOutcome):
        channel().parse_payout(answer(200, {"object": "payout"}), payout=payout(), now=NOW)


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        # Stripe replays this answer for the same Idempotency-Key: fatal for this number.
        (400, {"type": "invalid_request_error", "code": "balance_insufficient"}, ChannelFatal),
        (400, {"type": "invalid_request_error", "code": "resource_missing"}, ChannelFatal),
        (400, {"type": "idempotency_error"}, ChannelFatal),
        (429, {"type": "invalid_request_error", "code": "rate_limit"}, ChannelRetryable),
        (500, {"type": "api_error"}, ChannelUnknownOutcome),
    ],
)
def test_error_classification(
    status: int, error: dict[str, Any], expected: type[ChannelError]
) -> None:
    with pytest.raises(ChannelError) as caught:
        channel().parse_payout(answer(status, {"error": error}), payout=payout(), now=NOW)
    assert type(caught.value) is expected


def test_query_by_id_and_by_transfer_group() -> None:
    by_id = channel().build_payout_query(PAYOUT_NO, channel_payout_no=TR_ID, now=NOW)
    assert by_id.url == f"https://api.stripe.com/v1/transfers/{TR_ID}"
    listed = channel().build_payout_query(PAYOUT_NO, now=NOW)
    query = dict(parse_qsl(urlsplit(listed.url).query))
    assert query == {"transfer_group": f"payfront-payout-{PAYOUT_NO}", "limit": "100"}
    status = channel().parse_payout_query(answer(200, transfer()), out_payout_no=PAYOUT_NO, now=NOW)
    assert status.channel_payout_no == TR_ID
    listing = {"object": "list", "data": [transfer()], "has_more": False}
    found = channel().parse_payout_query(answer(200, listing), out_payout_no=PAYOUT_NO, now=NOW)
    assert found.state is PayoutState.SUCCEEDED


def test_query_list_outcomes() -> None:
    empty = {"object": "list", "data": [], "has_more": False}
    with pytest.raises(ChannelOrderNotFound):
        channel().parse_payout_query(answer(200, empty), out_payout_no=PAYOUT_NO, now=NOW)
    twice = {"object": "list", "data": [transfer(), transfer(id="tr_2")], "has_more": False}
    with pytest.raises(ChannelFatal) as caught:
        channel().parse_payout_query(answer(200, twice), out_payout_no=PAYOUT_NO, now=NOW)
    assert caught.value.code == "DUPLICATE_TRANSFERS"
    other = transfer(metadata={"out_payout_no": "wdr-other"})
    with pytest.raises(ChannelFatal) as caught:
        channel().parse_payout_query(answer(200, other), out_payout_no=PAYOUT_NO, now=NOW)
    assert caught.value.code == "PAYOUT_NUMBER_MISMATCH"
    missing = {"error": {"type": "invalid_request_error", "code": "resource_missing"}}
    with pytest.raises(ChannelOrderNotFound):
        channel().parse_payout_query(answer(404, missing), out_payout_no=PAYOUT_NO, now=NOW)


def event_body(event_type: str, obj: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {
            "id": "evt_3PayfrontTransferEvt1",
            "object": "event",
            "api_version": STRIPE_VERSION,
            "created": T - 2,
            "data": {"object": obj},
            "livemode": False,
            "pending_webhooks": 1,
            "type": event_type,
        }
    )


def signed(body: bytes) -> dict[str, str]:
    return {"Stripe-Signature": f"t={T},v1={sign_payload(WEBHOOK_SECRET, T, body)}"}


def test_transfer_created_webhook() -> None:
    body = event_body("transfer.created", transfer())
    event = channel().parse_callback(signed(body), body, now=NOW)
    assert event.trade is None and event.refund is None and event.payout is not None
    assert event.payout.state is PayoutState.SUCCEEDED
    assert event.payout.out_payout_no == PAYOUT_NO
    with pytest.raises(CallbackRejected):
        channel().parse_callback(signed(body), body.replace(b"2500", b"2600"), now=NOW)


def test_other_transfer_webhooks_are_acknowledged_and_left_alone() -> None:
    # A reversal moves money back; payfront's payout model has no state for it.
    reversed_body = event_body("transfer.reversed", transfer(reversed=True))
    with pytest.raises(CallbackIgnored):
        channel().parse_callback(signed(reversed_body), reversed_body, now=NOW)
    dashboard = event_body("transfer.created", transfer(metadata={}))
    with pytest.raises(CallbackIgnored):
        channel().parse_callback(signed(dashboard), dashboard, now=NOW)
    not_a_transfer = event_body("transfer.created", {"id": "po_1", "object": "payout"})
    with pytest.raises(CallbackRejected):
        channel().parse_callback(signed(not_a_transfer), not_a_transfer, now=NOW)
