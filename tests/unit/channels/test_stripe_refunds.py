"""Tests for Stripe refunds in the adapter (channels/stripe.py, channels/stripe_refunds.py): the
create's form and idempotency key, the status table, error classification, the refund query by
id and by the intent's list, and the refund.* webhooks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from channels.base import CreateRefund, HttpResponse, RefundState
from channels.errors import (
    CallbackIgnored,
    CallbackRejected,
    ChannelError,
    ChannelFatal,
    ChannelOrderNotFound,
    ChannelRetryable,
    ChannelUnknownOutcome,
)
from channels.stripe import (
    STRIPE_VERSION,
    SignatureRejected,
    Stripe,
    from_credentials,
    sign_payload,
)

NOW = datetime(2026, 11, 25, 4, 0, 0, tzinfo=UTC)
T = int(NOW.timestamp())
SECRET_KEY = "sk_test_51PayfrontExampleKey0000000000"
WEBHOOK_SECRET = "whsec_currentSecret0000000000000000"
PI_ID = "pi_3PayfrontIntent000001"
RE_ID = "re_3PayfrontRefund000001"
PAY_NO = "pay01JD8ZQ4Y1X0000000000001"
REFUND_NO = "rfd01JD8ZQ4Y1X0000000000001"


def channel(**overrides: str) -> Stripe:
    credentials = {"secret_key": SECRET_KEY, "webhook_secret": WEBHOOK_SECRET}
    return from_credentials({**credentials, **overrides})


def refund_order(**overrides: Any) -> CreateRefund:
    fields: dict[str, Any] = {
        "out_refund_no": REFUND_NO,
        "out_trade_no": PAY_NO,
        "refund_minor": 500,
        "total_minor": 1999,
        "currency": "USD",
        "notify_url": "https://pay.example.com/callbacks/stripe/acct",
        "channel_trade_no": PI_ID,
    }
    fields.update(overrides)
    return CreateRefund(**fields)


def refund_object(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": RE_ID,
        "object": "refund",
        "amount": 500,
        "balance_transaction": "txn_3Payfront",
        "charge": "ch_3Payfront",
        "created": T - 30,
        "currency": "usd",
        "metadata": {"out_refund_no": REFUND_NO, "out_trade_no": PAY_NO},
        "payment_intent": PI_ID,
        "reason": None,
        "receipt_number": None,
        "status": "succeeded",
    }
    body.update(overrides)
    return body


def answer(status: int, payload: Any = None, **headers: str) -> HttpResponse:
    body = b"" if payload is None else orjson.dumps(payload)
    return HttpResponse(status, {"Content-Type": "application/json", **headers}, body)


def refund_list(*refunds: dict[str, Any], has_more: bool = False) -> dict[str, Any]:
    return {"object": "list", "data": list(refunds), "has_more": has_more, "url": "/v1/refunds"}


def stripe_error(type_: str, code: str | None = None, **extra: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"type": type_, "message": f"{type_} {code}"}
    if code is not None:
        error["code"] = code
    error.update(extra)
    return {"error": error}


# -- build_refund ---------------------------------------------------------------------------


def test_build_refund_request() -> None:
    request = channel().build_refund(refund_order(), now=NOW)
    assert request.method == "POST"
    assert request.url == "https://api.stripe.com/v1/refunds"
    assert request.headers["Authorization"] == f"Bearer {SECRET_KEY}"
    assert request.headers["Stripe-Version"] == STRIPE_VERSION
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["Idempotency-Key"] == f"payfront-refund-{REFUND_NO}"
    assert parse_qsl(request.body.decode("ascii"), strict_parsing=True) == [
        ("payment_intent", PI_ID),
        ("amount", "500"),
        ("metadata[out_refund_no]", REFUND_NO),
        ("metadata[out_trade_no]", PAY_NO),
    ]


def test_repeated_refund_is_byte_identical_and_keyed_by_refund_number() -> None:
    first = channel().build_refund(refund_order(), now=NOW)
    later = channel().build_refund(refund_order(), now=NOW + timedelta(hours=5))
    assert first == later
    other = channel().build_refund(refund_order(out_refund_no="rfd_other_2"), now=NOW)
    assert other.headers["Idempotency-Key"] == "payfront-refund-rfd_other_2"
    # Not the create's key of the same order: a refund never replays the payment's answer.
    assert first.headers["Idempotency-Key"] != f"payfront-create-{PAY_NO}"


@pytest.mark.parametrize(
    ("reason", "stripe_reason", "note"),
    [
        ("requested_by_customer", "requested_by_customer", None),
        ("Requested by customer", "requested_by_customer", None),
        ("duplicate", "duplicate", None),
        (" fraudulent ", "fraudulent", None),
        ("The tea was cold & the cake = stale", None, "The tea was cold & the cake = stale"),
        ("x" * 600, None, "x" * 500),
        ("   ", None, None),
        (None, None, None),
    ],
)
def test_reason_is_stripes_or_goes_to_the_metadata(
    reason: str | None, stripe_reason: str | None, note: str | None
) -> None:
    request = channel().build_refund(refund_order(reason=reason), now=NOW)
    params = dict(parse_qsl(request.body.decode("ascii")))
    assert params.get("reason") == stripe_reason
    assert params.get("metadata[refund_reason]") == note


@pytest.mark.parametrize(("currency", "amount"), [("JPY", 300), ("KRW", 1500), ("EUR", 1)])
def test_refund_amount_is_sent_as_payfront_holds_it(currency: str, amount: int) -> None:
    request = channel().build_refund(refund_order(currency=currency, refund_minor=amount), now=NOW)
    assert dict(parse_qsl(request.body.decode()))["amount"] == str(amount)


def test_build_refund_needs_the_payment_intent_and_a_fit_number() -> None:
    with pytest.raises(ChannelFatal) as missing:
        channel().build_refund(refund_order(channel_trade_no=None), now=NOW)
    assert missing.value.code == "NO_PAYMENT_INTENT_ID"
    assert not isinstance(missing.value, ChannelOrderNotFound)
    with pytest.raises(ChannelFatal) as unfit:
        channel().build_refund(refund_order(out_refund_no="has space"), now=NOW)
    assert unfit.value.code == "BAD_ORDER_NUMBER"


# -- parse_refund: the status table ---------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("pending", RefundState.PROCESSING),
        ("requires_action", RefundState.PROCESSING),
        ("succeeded", RefundState.SUCCEEDED),
        ("failed", RefundState.FAILED),
        ("canceled", RefundState.FAILED),
    ],
)
def test_refund_status_mapping(status: str, state: RefundState) -> None:
    refund = channel().parse_refund(answer(200, refund_object(status=status)), now=NOW)
    assert refund.state is state
    assert refund.channel_state == status
    assert refund.out_refund_no == REFUND_NO
    assert refund.out_trade_no == PAY_NO
    assert refund.channel_refund_no == RE_ID
    assert (refund.amount_minor, refund.currency) == (500, "USD")
    if state is RefundState.SUCCEEDED:
        assert refund.succeeded_at == datetime.fromtimestamp(T - 30, UTC)
    else:
        assert refund.succeeded_at is None
    if state is RefundState.FAILED:
        assert refund.failure_reason == status  # no failure_reason given: the status
    else:
        assert refund.failure_reason is None


def test_failed_refund_carries_stripes_failure_reason() -> None:
    refund = channel().parse_refund(
        answer(200, refund_object(status="failed", failure_reason="expired_or_canceled_card")),
        now=NOW,
    )
    assert refund.state is RefundState.FAILED
    assert refund.failure_reason == "expired_or_canceled_card"


@pytest.mark.parametrize(
    "payload",
    [
        refund_object(status="teleported"),
        refund_object(status=None),
        refund_object(metadata={}),
        refund_object(metadata={"out_refund_no": ""}),
        refund_object(object="charge"),
        refund_object(amount="500"),
        {"id": RE_ID},
        [1],
        None,
    ],
)
def test_unreadable_refund_answers_are_unknown(payload: Any) -> None:
    with pytest.raises(ChannelUnknownOutcome):
        channel().parse_refund(answer(200, payload), now=NOW)


Row = tuple[int, dict[str, str], Any, type[ChannelError], str]
INVALID = "invalid_request_error"

# fmt: off
REFUND_ERRORS: list[Row] = [
    (400, {}, stripe_error(INVALID, "charge_already_refunded"), ChannelFatal,
     "charge_already_refunded"),
    (400, {}, stripe_error(INVALID, "amount_too_large", param="amount"), ChannelFatal,
     "amount_too_large"),
    (400, {}, stripe_error(INVALID, "charge_not_refundable"), ChannelFatal,
     "charge_not_refundable"),
    (400, {}, stripe_error(INVALID, "charge_disputed"), ChannelFatal, "charge_disputed"),
    (400, {}, stripe_error("idempotency_error"), ChannelFatal, "idempotency_error"),
    (400, {"Stripe-Should-Retry": "true"}, stripe_error("idempotency_error"), ChannelFatal,
     "idempotency_error"),
    (404, {}, stripe_error(INVALID, "resource_missing", param="payment_intent"),
     ChannelOrderNotFound, "resource_missing"),
    (409, {}, stripe_error(INVALID, "idempotency_key_in_use"), ChannelRetryable,
     "idempotency_key_in_use"),
    (429, {}, stripe_error(INVALID, "rate_limit"), ChannelRetryable, "rate_limit"),
    (500, {}, stripe_error("api_error"), ChannelUnknownOutcome, "api_error"),
    (503, {"Stripe-Should-Retry": "true"}, stripe_error("api_error"), ChannelRetryable,
     "api_error"),
    (409, {"Stripe-Should-Retry": "false"}, stripe_error(INVALID), ChannelUnknownOutcome,
     INVALID),
    (401, {}, stripe_error(INVALID), ChannelFatal, INVALID),
    (502, {}, b"<html>bad gateway</html>", ChannelUnknownOutcome, "HTTP_502"),
]
# fmt: on


@pytest.mark.parametrize(
    ("status", "headers", "payload", "expected", "code"),
    REFUND_ERRORS,
    ids=[f"{row[0]}-{row[4]}" for row in REFUND_ERRORS],
)
@pytest.mark.parametrize("call", ["refund", "refund_query"])
def test_refund_error_classification(
    status: int,
    headers: dict[str, str],
    payload: Any,
    expected: type[ChannelError],
    code: str,
    call: str,
) -> None:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    response = HttpResponse(status, headers, body)
    with pytest.raises(ChannelError) as raised:
        if call == "refund":
            channel().parse_refund(response, now=NOW)
        else:
            channel().parse_refund_query(response, out_refund_no=REFUND_NO, now=NOW)
    assert type(raised.value) is expected
    assert raised.value.code == code
    assert raised.value.http_status == status


# -- the refund query -----------------------------------------------------------------------


def test_build_refund_query_by_refund_id() -> None:
    request = channel().build_refund_query(
        REFUND_NO, out_trade_no=PAY_NO, channel_trade_no=PI_ID, channel_refund_no=RE_ID, now=NOW
    )
    assert request.method == "GET"
    assert request.url == f"https://api.stripe.com/v1/refunds/{RE_ID}"
    assert request.body == b""
    assert "Idempotency-Key" not in request.headers
    escaped = channel().build_refund_query(
        REFUND_NO, out_trade_no=PAY_NO, channel_refund_no="re_1/../x?y", now=NOW
    )
    assert urlsplit(escaped.url).path == "/v1/refunds/re_1%2F..%2Fx%3Fy"


def test_build_refund_query_without_the_refund_id_lists_the_intents_refunds() -> None:
    request = channel().build_refund_query(
        REFUND_NO, out_trade_no=PAY_NO, channel_trade_no=PI_ID, now=NOW
    )
    split = urlsplit(request.url)
    assert request.method == "GET"
    assert split.path == "/v1/refunds"
    assert parse_qsl(split.query) == [("payment_intent", PI_ID), ("limit", "100")]
    with pytest.raises(ChannelOrderNotFound):
        channel().build_refund_query(REFUND_NO, out_trade_no=PAY_NO, now=NOW)


def test_refund_query_by_id_checks_the_refund_number() -> None:
    adapter = channel()
    found = adapter.parse_refund_query(
        answer(200, refund_object(status="pending")), out_refund_no=REFUND_NO, now=NOW
    )
    assert (found.state, found.channel_refund_no) == (RefundState.PROCESSING, RE_ID)
    with pytest.raises(ChannelFatal) as mismatch:
        adapter.parse_refund_query(answer(200, refund_object()), out_refund_no="rfd_else", now=NOW)
    assert mismatch.value.code == "REFUND_NUMBER_MISMATCH"
    assert not isinstance(mismatch.value, ChannelOrderNotFound)


def test_refund_query_finds_the_refund_in_the_list_by_metadata() -> None:
    others = [
        refund_object(id=f"re_other{n}", metadata={"out_refund_no": f"rfd_{n}"}) for n in range(3)
    ]
    dashboard = refund_object(id="re_dashboard", metadata={})
    ours = refund_object(id="re_ours", amount=700, status="pending")
    listing = refund_list(others[0], dashboard, ours, *others[1:])
    found = channel().parse_refund_query(answer(200, listing), out_refund_no=REFUND_NO, now=NOW)
    assert found.channel_refund_no == "re_ours"
    assert (found.state, found.amount_minor) == (RefundState.PROCESSING, 700)


def test_refund_query_list_without_the_refund() -> None:
    adapter = channel()
    listing = refund_list(refund_object(metadata={"out_refund_no": "rfd_else"}))
    with pytest.raises(ChannelOrderNotFound) as absent:
        adapter.parse_refund_query(answer(200, listing), out_refund_no=REFUND_NO, now=NOW)
    assert absent.value.code == "REFUND_NOT_FOUND"
    with pytest.raises(ChannelOrderNotFound):
        adapter.parse_refund_query(answer(200, refund_list()), out_refund_no=REFUND_NO, now=NOW)
    # Not on the first hundred, but there are more: whether it exists is not known.
    more = refund_list(refund_object(metadata={"out_refund_no": "rfd_else"}), has_more=True)
    with pytest.raises(ChannelUnknownOutcome) as truncated:
        adapter.parse_refund_query(answer(200, more), out_refund_no=REFUND_NO, now=NOW)
    assert truncated.value.code == "REFUND_LIST_TRUNCATED"


def test_refund_query_list_with_two_refunds_of_one_number_is_fatal() -> None:
    listing = refund_list(refund_object(id="re_a"), refund_object(id="re_b"))
    with pytest.raises(ChannelFatal) as twice:
        channel().parse_refund_query(answer(200, listing), out_refund_no=REFUND_NO, now=NOW)
    assert twice.value.code == "DUPLICATE_REFUNDS"
    assert "re_a" in twice.value.message and "re_b" in twice.value.message


@pytest.mark.parametrize(
    "payload",
    [
        {"object": "list", "data": [refund_object(amount=1.5)], "has_more": False},
        {"object": "list", "data": "nope", "has_more": False},
        refund_list(refund_object(status="teleported")),
    ],
)
def test_unreadable_refund_lists_are_unknown(payload: Any) -> None:
    with pytest.raises(ChannelUnknownOutcome):
        channel().parse_refund_query(answer(200, payload), out_refund_no=REFUND_NO, now=NOW)


# -- refund webhooks ------------------------------------------------------------------------


def event_body(event_type: str, refund: dict[str, Any], **overrides: Any) -> bytes:
    event: dict[str, Any] = {
        "id": "evt_3PayfrontRefundEvent1",
        "object": "event",
        "api_version": STRIPE_VERSION,
        "created": T - 2,
        "data": {"object": refund},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": "req_abc", "idempotency_key": f"payfront-refund-{REFUND_NO}"},
        "type": event_type,
    }
    event.update(overrides)
    return orjson.dumps(event)


def signed(body: bytes, *, timestamp: int = T, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    return {"Stripe-Signature": f"t={timestamp},v1={sign_payload(secret, timestamp, body)}"}


@pytest.mark.parametrize(
    ("event_type", "status", "state"),
    [
        ("refund.created", "succeeded", RefundState.SUCCEEDED),
        ("refund.created", "pending", RefundState.PROCESSING),
        ("refund.updated", "succeeded", RefundState.SUCCEEDED),
        ("refund.updated", "failed", RefundState.FAILED),
        ("refund.updated", "canceled", RefundState.FAILED),
        ("refund.failed", "failed", RefundState.FAILED),
    ],
)
def test_refund_events(event_type: str, status: str, state: RefundState) -> None:
    failure = "expired_or_canceled_card" if status == "failed" else None
    body = event_body(event_type, refund_object(status=status, failure_reason=failure))
    event = channel().parse_callback(signed(body), body, now=NOW)
    assert event.trade is None
    assert event.refund is not None
    assert (event.event_id, event.event_type) == ("evt_3PayfrontRefundEvent1", event_type)
    assert event.refund.state is state
    assert event.refund.out_refund_no == REFUND_NO
    assert event.refund.out_trade_no == PAY_NO
    assert event.refund.channel_refund_no == RE_ID
    assert (event.refund.amount_minor, event.refund.currency) == (500, "USD")
    # The event's time is when the refund became what it says.
    expected_at = datetime.fromtimestamp(T - 2, UTC) if state is RefundState.SUCCEEDED else None
    assert event.refund.succeeded_at == expected_at
    if status == "failed":
        assert event.refund.failure_reason == "expired_or_canceled_card"
    assert event.raw["type"] == event_type


def test_a_refund_without_payfronts_numbers_is_ignored() -> None:
    body = event_body("refund.created", refund_object(metadata={"note": "made in the Dashboard"}))
    with pytest.raises(CallbackIgnored) as ignored:
        channel().parse_callback(signed(body), body, now=NOW)
    assert ignored.value.event_type == "refund.created"


@pytest.mark.parametrize("event_type", ["charge.refunded", "charge.refund.updated"])
def test_other_refund_events_are_ignored(event_type: str) -> None:
    body = event_body(event_type, refund_object())
    with pytest.raises(CallbackIgnored):
        channel().parse_callback(signed(body), body, now=NOW)


@pytest.mark.parametrize(
    "refund",
    [
        refund_object(status="teleported"),
        refund_object(status=None),
        refund_object(object="charge"),
        refund_object(amount="500"),
        {"id": RE_ID, "object": "refund"},
    ],
)
def test_unreadable_refund_events_are_rejected(refund: dict[str, Any]) -> None:
    body = event_body("refund.updated", refund)
    with pytest.raises(CallbackRejected) as rejected:
        channel().parse_callback(signed(body), body, now=NOW)
    assert rejected.value.reason == "malformed"


def test_refund_event_signatures_are_verified() -> None:
    body = event_body("refund.updated", refund_object())
    adapter = channel()
    assert adapter.parse_callback(signed(body), body, now=NOW).refund is not None
    tampered = body.replace(b'"amount":500', b'"amount":5000')
    assert tampered != body
    cases = [
        (signed(body), tampered, "bad_signature"),
        (signed(body, secret="whsec_notTheSecret000000000000"), body, "bad_signature"),
        (signed(body, timestamp=T - 301), body, "stale_timestamp"),
        (signed(body, timestamp=T + 301), body, "stale_timestamp"),
        ({}, body, "missing_signature"),
    ]
    for headers, sent, reason in cases:
        with pytest.raises(SignatureRejected) as rejected:
            adapter.parse_callback(headers, sent, now=NOW)
        assert rejected.value.reason == reason
    # Old but signed within the tolerance of the receiver's clock: accepted.
    assert adapter.parse_callback(signed(body, timestamp=T - 300), body, now=NOW)


def test_livemode_refund_event_is_rejected_by_a_test_key() -> None:
    body = event_body("refund.created", refund_object(), livemode=True)
    with pytest.raises(CallbackRejected) as rejected:
        channel().parse_callback(signed(body), body, now=NOW)
    assert rejected.value.reason == "livemode_mismatch"
