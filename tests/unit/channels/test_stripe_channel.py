"""Tests for channels/stripe.py and channels/stripe_wire.py: form encoding, idempotency keys,
error classification, PaymentIntent status mapping, webhook signatures and events."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.base import CreateOrder, HttpResponse, TradeState
from channels.errors import (
    CallbackIgnored,
    CallbackRejected,
    ChannelAlreadyPaid,
    ChannelError,
    ChannelFatal,
    ChannelOrderNotFound,
    ChannelRetryable,
    ChannelUnknownOutcome,
)
from channels.registry import CHANNELS, build_channel
from channels.stripe import (
    HANDLED_EVENT_TYPES,
    STRIPE_VERSION,
    SignatureRejected,
    Stripe,
    StripeConfig,
    from_credentials,
    parse_signature_header,
    sign_payload,
)
from core.money import CURRENCY_EXPONENTS

NOW = datetime(2026, 11, 25, 4, 0, 0, tzinfo=UTC)
T = int(NOW.timestamp())
SECRET_KEY = "sk_test_51PayfrontExampleKey0000000000"
WEBHOOK_SECRET = "whsec_currentSecret0000000000000000"
OLD_WEBHOOK_SECRET = "whsec_previousSecret000000000000000"
ACCOUNT_ID = "acct_1PayfrontTest"
PI_ID = "pi_3PayfrontIntent000001"
PAY_NO = "pay01JD8ZQ4Y1X0000000000001"

CREDENTIALS = {
    "secret_key": SECRET_KEY,
    "webhook_secret": WEBHOOK_SECRET,
    "account_id": ACCOUNT_ID,
}


def channel(**overrides: str) -> Stripe:
    return from_credentials({**CREDENTIALS, **overrides})


def order(**overrides: Any) -> CreateOrder:
    fields: dict[str, Any] = {
        "out_trade_no": PAY_NO,
        "amount_minor": 1999,
        "currency": "USD",
        "description": "A cup of tea & cake = 2 items, 抹茶",
        "notify_url": "https://pay.example.com/callbacks/stripe/acct",
        "method": "payment_intent",
    }
    fields.update(overrides)
    return CreateOrder(**fields)


def intent(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": PI_ID,
        "object": "payment_intent",
        "amount": 1999,
        "amount_received": 0,
        "currency": "usd",
        "status": "requires_payment_method",
        "client_secret": f"{PI_ID}_secret_abcdefghijklmnop",
        "created": T - 60,
        "livemode": False,
        "metadata": {"pay_no": PAY_NO},
        "latest_charge": None,
        "automatic_payment_methods": {"enabled": True, "allow_redirects": "always"},
    }
    body.update(overrides)
    return body


def answer(status: int, payload: Any = None, **headers: str) -> HttpResponse:
    body = b"" if payload is None else orjson.dumps(payload)
    return HttpResponse(status, {"Content-Type": "application/json", **headers}, body)


def stripe_error(type_: str, code: str | None = None, **extra: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"type": type_, "message": f"{type_} {code}"}
    if code is not None:
        error["code"] = code
    error.update(extra)
    return {"error": error}


# -- configuration --------------------------------------------------------------------------


def test_config_from_credentials() -> None:
    config = StripeConfig.from_credentials(
        {
            "secret_key": f" {SECRET_KEY} ",
            "webhook_secret": f"{WEBHOOK_SECRET}, {OLD_WEBHOOK_SECRET},",
            "api_base": "http://127.0.0.1:8090/",
        }
    )
    assert config.secret_key == SECRET_KEY
    assert config.webhook_secrets == (WEBHOOK_SECRET, OLD_WEBHOOK_SECRET)
    assert config.api_base == "http://127.0.0.1:8090"
    assert config.account_id is None
    assert config.livemode is False
    assert SECRET_KEY not in repr(config) and WEBHOOK_SECRET not in repr(config)
    assert StripeConfig.from_credentials(CREDENTIALS).api_base == "https://api.stripe.com"
    live = {**CREDENTIALS, "secret_key": "sk_live_abc123"}
    assert StripeConfig.from_credentials(live).livemode is True


@pytest.mark.parametrize(
    "change",
    [
        {"secret_key": "pk_test_publishable"},
        {"secret_key": "sk_test_abc\r\nX-Injected: 1"},
        {"secret_key": ""},
        {"webhook_secret": "not-a-whsec"},
        {"webhook_secret": " , "},
        {"api_base": "ftp://api.stripe.com"},
        {"account_id": "1234"},
    ],
)
def test_config_refuses_bad_credentials(change: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="stripe"):
        StripeConfig.from_credentials({**CREDENTIALS, **change})


def test_registry_builds_the_adapter() -> None:
    spec = CHANNELS["stripe"]
    assert spec.methods == frozenset({"payment_intent"})
    assert {"USD", "JPY", "EUR"} <= spec.currencies
    # Every currency offered is one payfront knows (and so has an exponent for).
    assert spec.currencies <= set(CURRENCY_EXPONENTS)
    assert spec.identity == {}
    adapter = build_channel("stripe", CREDENTIALS)
    assert isinstance(adapter, Stripe)
    assert adapter.name == "stripe"


# -- build_create ---------------------------------------------------------------------------


def test_build_create_request() -> None:
    request = channel().build_create(order(), now=NOW)

    assert request.method == "POST"
    assert request.url == "https://api.stripe.com/v1/payment_intents"
    assert request.headers["Authorization"] == f"Bearer {SECRET_KEY}"
    assert request.headers["Stripe-Version"] == STRIPE_VERSION
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["Idempotency-Key"] == f"payfront-create-{PAY_NO}"
    assert "payfront" in request.headers["User-Agent"]
    assert parse_qsl(request.body.decode("ascii"), strict_parsing=True) == [
        ("amount", "1999"),
        ("currency", "usd"),
        ("description", "A cup of tea & cake = 2 items, 抹茶"),
        ("metadata[pay_no]", PAY_NO),
        ("automatic_payment_methods[enabled]", "true"),
    ]


def test_form_encoding_keeps_brackets_and_escapes_values() -> None:
    body = channel().build_create(order(attach="a[b]=c&d"), now=NOW).body
    assert b"metadata[pay_no]=" in body
    assert b"automatic_payment_methods[enabled]=true" in body
    # Separators and brackets inside values are escaped, UTF-8 percent-encoded.
    assert b"metadata[attach]=a%5Bb%5D%3Dc%26d" in body
    assert b"description=A+cup+of+tea+%26+cake+%3D+2+items%2C+%E6%8A%B9%E8%8C%B6" in body
    assert body.isascii()


@pytest.mark.parametrize(("currency", "amount"), [("JPY", 500), ("KRW", 15000), ("EUR", 1)])
def test_amount_is_sent_as_payfront_holds_it(currency: str, amount: int) -> None:
    """payfront's ``amount_minor`` for a zero-decimal currency is already whole yen/won."""
    request = channel().build_create(order(currency=currency, amount_minor=amount), now=NOW)
    params = dict(parse_qsl(request.body.decode()))
    assert params["amount"] == str(amount)
    assert params["currency"] == currency.lower()


def test_repeated_create_is_byte_identical() -> None:
    first = channel().build_create(order(), now=NOW)
    later = channel().build_create(order(), now=NOW + timedelta(hours=3))
    assert first == later  # body, URL and every header, the idempotency key included


def test_idempotency_key_is_derived_from_the_order_number() -> None:
    adapter = channel()
    key = adapter.build_create(order(), now=NOW).headers["Idempotency-Key"]
    other = adapter.build_create(order(out_trade_no="pay_other_0002"), now=NOW)
    assert key == f"payfront-create-{PAY_NO}"
    assert other.headers["Idempotency-Key"] == "payfront-create-pay_other_0002"
    # Another account's adapter derives the same key: Stripe scopes keys per account.
    assert (
        channel(secret_key="sk_test_another")
        .build_create(order(), now=NOW)
        .headers["Idempotency-Key"]
        == key
    )


def test_build_create_refuses_other_methods_and_unfit_numbers() -> None:
    with pytest.raises(ChannelFatal) as refused:
        channel().build_create(order(method="native"), now=NOW)
    assert refused.value.code == "METHOD_NOT_SUPPORTED"
    with pytest.raises(ChannelFatal):
        channel().build_create(order(out_trade_no="has space"), now=NOW)


def test_api_base_is_configurable() -> None:
    request = channel(api_base="http://127.0.0.1:9999").build_create(order(), now=NOW)
    assert request.url == "http://127.0.0.1:9999/v1/payment_intents"


# -- query and close ------------------------------------------------------------------------


def test_build_query_by_payment_intent_id() -> None:
    request = channel().build_query(PAY_NO, channel_trade_no=PI_ID, now=NOW)
    assert request.method == "GET"
    split = urlsplit(request.url)
    assert split.path == f"/v1/payment_intents/{PI_ID}"
    assert parse_qsl(split.query) == [("expand[]", "latest_charge")]
    assert request.body == b""
    assert "Idempotency-Key" not in request.headers
    assert "Content-Type" not in request.headers
    assert request.headers["Authorization"] == f"Bearer {SECRET_KEY}"


def test_query_and_close_need_the_payment_intent_id() -> None:
    with pytest.raises(ChannelOrderNotFound):
        channel().build_query(PAY_NO, now=NOW)
    with pytest.raises(ChannelOrderNotFound):
        channel().build_close(PAY_NO, channel_trade_no=None, now=NOW)


def test_ids_are_escaped_in_paths() -> None:
    request = channel().build_query(PAY_NO, channel_trade_no="pi_1/../x?y", now=NOW)
    assert urlsplit(request.url).path == "/v1/payment_intents/pi_1%2F..%2Fx%3Fy"


def test_build_close_cancels_with_its_own_stable_key() -> None:
    request = channel().build_close(PAY_NO, channel_trade_no=PI_ID, now=NOW)
    assert request.method == "POST"
    assert request.url == f"https://api.stripe.com/v1/payment_intents/{PI_ID}/cancel"
    assert request.body == b"cancellation_reason=abandoned"
    assert request.headers["Idempotency-Key"] == f"payfront-cancel-{PAY_NO}"
    again = channel().build_close(PAY_NO, channel_trade_no=PI_ID, now=NOW + timedelta(days=1))
    assert again == request


# -- parse_create ---------------------------------------------------------------------------


def test_parse_create_returns_the_client_secret() -> None:
    result = channel().parse_create(answer(200, intent()), now=NOW)
    assert result.credential == {
        "client_secret": f"{PI_ID}_secret_abcdefghijklmnop",
        "payment_intent_id": PI_ID,
    }
    assert result.channel_trade_no == PI_ID


@pytest.mark.parametrize(
    "payload",
    [intent(client_secret=None), intent(object="charge"), {"id": PI_ID}, None, [1, 2]],
)
def test_parse_create_unreadable_success_is_unknown(payload: Any) -> None:
    with pytest.raises(ChannelUnknownOutcome):
        channel().parse_create(answer(200, payload), now=NOW)


# The classification table (see stripe_wire.classify_failure for the documentation sources):
# (HTTP status, response headers, body, expected class, expected code).
Row = tuple[int, dict[str, str], Any, type[ChannelError], str]
INVALID = "invalid_request_error"
RETRY_TRUE = {"Stripe-Should-Retry": "true"}
RETRY_FALSE = {"Stripe-Should-Retry": "false"}

# fmt: off
CLASSIFICATION: list[Row] = [
    (409, {}, stripe_error(INVALID, "idempotency_key_in_use"), ChannelRetryable,
     "idempotency_key_in_use"),
    (429, {}, stripe_error(INVALID, "rate_limit"), ChannelRetryable, "rate_limit"),
    (429, {}, stripe_error(INVALID, "lock_timeout"), ChannelRetryable, "lock_timeout"),
    (400, {}, stripe_error(INVALID, "rate_limit"), ChannelRetryable, "rate_limit"),
    (400, RETRY_TRUE, stripe_error(INVALID, "lock_timeout"), ChannelRetryable, "lock_timeout"),
    (503, {"stripe-should-retry": "true"}, stripe_error("api_error"), ChannelRetryable,
     "api_error"),
    (500, {}, stripe_error("api_error"), ChannelUnknownOutcome, "api_error"),
    (500, RETRY_FALSE, stripe_error("api_error"), ChannelUnknownOutcome, "api_error"),
    (502, {}, b"<html>bad gateway</html>", ChannelUnknownOutcome, "HTTP_502"),
    (409, RETRY_FALSE, stripe_error(INVALID), ChannelUnknownOutcome, INVALID),
    (400, {}, stripe_error("idempotency_error"), ChannelFatal, "idempotency_error"),
    (400, RETRY_TRUE, stripe_error("idempotency_error"), ChannelFatal, "idempotency_error"),
    (402, {}, stripe_error("card_error", "card_declined", decline_code="generic_decline"),
     ChannelFatal, "card_declined"),
    (400, {}, stripe_error(INVALID, "parameter_missing", param="amount"), ChannelFatal,
     "parameter_missing"),
    (400, {}, stripe_error(INVALID, "amount_too_small"), ChannelFatal, "amount_too_small"),
    (401, {}, stripe_error(INVALID), ChannelFatal, INVALID),
    (403, {}, stripe_error(INVALID), ChannelFatal, INVALID),
    (404, {}, stripe_error(INVALID, "resource_missing", param="intent"), ChannelOrderNotFound,
     "resource_missing"),
    (404, {}, stripe_error(INVALID), ChannelFatal, INVALID),
    (424, {}, stripe_error("api_error"), ChannelUnknownOutcome, "api_error"),
    (418, {}, b"", ChannelFatal, "HTTP_418"),
    (302, {}, b"", ChannelUnknownOutcome, "HTTP_302"),
]
# fmt: on


@pytest.mark.parametrize(
    ("status", "headers", "payload", "expected", "code"),
    CLASSIFICATION,
    ids=[f"{row[0]}-{row[4]}-{'/'.join(row[1].values()) or 'nohdr'}" for row in CLASSIFICATION],
)
@pytest.mark.parametrize("call", ["create", "query", "close"])
def test_error_classification(
    status: int,
    headers: dict[str, str],
    payload: Any,
    expected: type[ChannelError],
    code: str,
    call: str,
) -> None:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    response = HttpResponse(status, headers, body)
    adapter = channel()
    with pytest.raises(ChannelError) as raised:
        if call == "create":
            adapter.parse_create(response, now=NOW)
        elif call == "query":
            adapter.parse_query(response, now=NOW)
        else:
            adapter.parse_close(response, now=NOW)
    assert type(raised.value) is expected
    assert raised.value.code == code
    assert raised.value.http_status == status


# -- parse_query: the status table ----------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("requires_payment_method", TradeState.NOT_PAID),
        ("requires_confirmation", TradeState.NOT_PAID),
        ("requires_action", TradeState.PAYING),
        ("processing", TradeState.PAYING),
        ("requires_capture", TradeState.PAYING),
        ("succeeded", TradeState.PAID),
        ("canceled", TradeState.CLOSED),
    ],
)
def test_payment_intent_status_mapping(status: str, state: TradeState) -> None:
    paid = status == "succeeded"
    trade = channel().parse_query(
        answer(200, intent(status=status, amount_received=1999 if paid else 0)), now=NOW
    )
    assert trade.state is state
    assert trade.channel_state == status
    assert trade.out_trade_no == PAY_NO
    assert trade.channel_trade_no == PI_ID
    assert trade.amount_minor == 1999
    assert trade.currency == "USD"
    assert trade.merchant_id == ACCOUNT_ID
    assert trade.paid_at is None  # no expanded charge


def test_paid_amount_is_amount_received_and_paid_at_the_charge_time() -> None:
    charge = {
        "id": "ch_3Payfront",
        "object": "charge",
        "amount": 1999,
        "amount_captured": 1500,
        "created": T - 5,
        "currency": "usd",
        "paid": True,
        "status": "succeeded",
        "payment_intent": PI_ID,
        "metadata": {"pay_no": PAY_NO},
    }
    trade = channel().parse_query(
        answer(200, intent(status="succeeded", amount_received=1500, latest_charge=charge)),
        now=NOW,
    )
    assert trade.state is TradeState.PAID
    assert trade.amount_minor == 1500  # what was received, not what was asked
    assert trade.paid_at == datetime.fromtimestamp(T - 5, UTC)


def test_zero_decimal_amount_comes_back_unchanged() -> None:
    trade = channel().parse_query(
        answer(200, intent(amount=500, currency="jpy", status="canceled")), now=NOW
    )
    assert (trade.amount_minor, trade.currency) == (500, "JPY")


@pytest.mark.parametrize(
    "payload",
    [intent(status="requires_magic"), intent(metadata={}), intent(metadata={"pay_no": ""})],
)
def test_unreadable_intents_are_unknown(payload: dict[str, Any]) -> None:
    with pytest.raises(ChannelUnknownOutcome):
        channel().parse_query(answer(200, payload), now=NOW)


def test_amounts_must_be_integers() -> None:
    with pytest.raises(ChannelUnknownOutcome):
        channel().parse_query(answer(200, intent(amount="1999")), now=NOW)
    with pytest.raises(ChannelUnknownOutcome):
        channel().parse_query(answer(200, intent(amount=19.99)), now=NOW)


# -- parse_close ----------------------------------------------------------------------------


def unexpected_state(status: str) -> HttpResponse:
    return answer(
        400,
        stripe_error(
            "invalid_request_error",
            "payment_intent_unexpected_state",
            payment_intent=intent(status=status),
        ),
    )


def test_parse_close() -> None:
    adapter = channel()
    assert adapter.parse_close(answer(200, intent(status="canceled")), now=NOW) is None
    # Cancelling twice: Stripe refuses, the intent says it is cancelled: closed all the same.
    assert adapter.parse_close(unexpected_state("canceled"), now=NOW) is None
    with pytest.raises(ChannelAlreadyPaid):
        adapter.parse_close(unexpected_state("succeeded"), now=NOW)
    with pytest.raises(ChannelFatal) as processing:
        adapter.parse_close(unexpected_state("processing"), now=NOW)
    assert type(processing.value) is ChannelFatal
    with pytest.raises(ChannelUnknownOutcome):
        adapter.parse_close(answer(200, intent(status="requires_payment_method")), now=NOW)


# -- webhooks: signatures -------------------------------------------------------------------


def event_body(type_: str = "payment_intent.succeeded", **overrides: Any) -> bytes:
    obj = intent(status="succeeded", amount_received=1999, latest_charge="ch_3Payfront")
    event: dict[str, Any] = {
        "id": "evt_3PayfrontEvent0001",
        "object": "event",
        "api_version": STRIPE_VERSION,
        "created": T - 2,
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": "req_abc", "idempotency_key": f"payfront-create-{PAY_NO}"},
        "type": type_,
    }
    event.update(overrides)
    return orjson.dumps(event)


def signature_header(body: bytes, *secrets: str, timestamp: int = T, v0: bool = True) -> str:
    parts = [f"t={timestamp}"]
    parts += [f"v1={sign_payload(secret, timestamp, body)}" for secret in secrets]
    if v0:  # test-mode events also carry a v0 signature, which must be ignored
        parts.append("v0=" + hashlib.sha256(b"legacy").hexdigest())
    return ",".join(parts)


def test_sign_payload_is_stripes_scheme() -> None:
    body = b'{"id":"evt_1"}'
    expected = hmac.new(
        WEBHOOK_SECRET.encode(), f"{T}.".encode() + body, hashlib.sha256
    ).hexdigest()
    assert sign_payload(WEBHOOK_SECRET, T, body) == expected


def test_valid_callback_is_accepted() -> None:
    body = event_body()
    event = channel().parse_callback(
        {"stripe-signature": signature_header(body, WEBHOOK_SECRET)}, body, now=NOW
    )
    assert event.event_id == "evt_3PayfrontEvent0001"
    assert event.event_type == "payment_intent.succeeded"
    assert event.trade.state is TradeState.PAID
    assert event.trade.out_trade_no == PAY_NO
    assert event.trade.channel_trade_no == PI_ID
    assert event.trade.amount_minor == 1999
    assert event.trade.currency == "USD"
    assert event.trade.paid_at == datetime.fromtimestamp(T - 2, UTC)
    assert event.trade.merchant_id == ACCOUNT_ID
    assert event.raw["type"] == "payment_intent.succeeded"


def test_rotated_secrets_any_configured_secret_and_any_v1_match() -> None:
    rotating = channel(webhook_secret=f"{WEBHOOK_SECRET},{OLD_WEBHOOK_SECRET}")
    body = event_body()
    # During a roll Stripe signs with both secrets: two v1 values.
    both = signature_header(body, OLD_WEBHOOK_SECRET, WEBHOOK_SECRET)
    assert parse_signature_header(both)[1][0] != parse_signature_header(both)[1][1]
    for header in (
        both,
        signature_header(body, OLD_WEBHOOK_SECRET),
        signature_header(body, WEBHOOK_SECRET),
    ):
        assert rotating.parse_callback({"Stripe-Signature": header}, body, now=NOW)
    # An adapter that knows only the new secret still takes the doubly signed event...
    assert channel().parse_callback({"Stripe-Signature": both}, body, now=NOW)
    # ...but not one signed with the old secret alone.
    with pytest.raises(SignatureRejected) as old_only:
        channel().parse_callback(
            {"Stripe-Signature": signature_header(body, OLD_WEBHOOK_SECRET)}, body, now=NOW
        )
    assert old_only.value.reason == "bad_signature"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda body, header: (body + b" ", header), "bad_signature"),
        (lambda body, header: (body.replace(b"1999", b"9999"), header), "bad_signature"),
        (lambda body, header: (body, header.replace(f"t={T}", f"t={T + 1}")), "bad_signature"),
        (lambda body, header: (body, header.replace("v1=", "v2=")), "missing_signature"),
        (lambda body, header: (body, header.replace(f"t={T},", "")), "malformed_signature"),
        (lambda body, header: (body, header.replace(f"t={T}", "t=12a")), "malformed_signature"),
        (lambda body, header: (body, header.replace(f"t={T}", "t=١٢٣")), "malformed_signature"),
        (lambda body, header: (body, f"t={T},{header}"), "malformed_signature"),
        (lambda body, header: (body, header.upper()), "malformed_signature"),
        (lambda body, header: (body, ""), "missing_signature"),
        (lambda body, header: (body, "garbage"), "malformed_signature"),
        (lambda body, header: (body, ",,,=,==,t"), "malformed_signature"),
    ],
)
def test_tampered_or_malformed_signatures_are_rejected(mutate: Any, reason: str) -> None:
    body = event_body()
    sent_body, header = mutate(body, signature_header(body, WEBHOOK_SECRET))
    with pytest.raises(SignatureRejected) as rejected:
        channel().parse_callback({"Stripe-Signature": header}, sent_body, now=NOW)
    assert rejected.value.reason == reason


def test_missing_header_is_rejected() -> None:
    with pytest.raises(SignatureRejected) as rejected:
        channel().parse_callback({}, event_body(), now=NOW)
    assert rejected.value.reason == "missing_signature"


@pytest.mark.parametrize("offset", [-301, 301, -(10**6)])
def test_stale_or_future_timestamps_are_rejected(offset: int) -> None:
    body = event_body()
    header = signature_header(body, WEBHOOK_SECRET, timestamp=T + offset)
    with pytest.raises(SignatureRejected) as rejected:
        channel().parse_callback({"Stripe-Signature": header}, body, now=NOW)
    assert rejected.value.reason == "stale_timestamp"


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_timestamps_within_tolerance_are_accepted(offset: int) -> None:
    body = event_body()
    header = signature_header(body, WEBHOOK_SECRET, timestamp=T + offset)
    assert channel().parse_callback({"Stripe-Signature": header}, body, now=NOW)


# -- webhooks: events -----------------------------------------------------------------------


def signed(body: bytes) -> dict[str, str]:
    return {"Stripe-Signature": signature_header(body, WEBHOOK_SECRET)}


def test_payment_failed_and_canceled_events() -> None:
    failed_intent = intent(
        last_payment_error={"type": "card_error", "code": "card_declined"},
        status="requires_payment_method",
    )
    body = event_body("payment_intent.payment_failed", data={"object": failed_intent})
    failed = channel().parse_callback(signed(body), body, now=NOW)
    assert failed.event_type == "payment_intent.payment_failed"
    # Still payable with another card: not a failed order.
    assert failed.trade.state is TradeState.NOT_PAID
    assert failed.trade.paid_at is None

    body = event_body("payment_intent.canceled", data={"object": intent(status="canceled")})
    canceled = channel().parse_callback(signed(body), body, now=NOW)
    assert canceled.trade.state is TradeState.CLOSED


def test_charge_refunded_is_ignored() -> None:
    """The refund.* events carry the refund itself (id, amount, status, payfront's numbers);
    ``charge.refunded`` only the charge (without its refunds since API version 2022-11-15)."""
    charge = {
        "id": "ch_3Payfront",
        "object": "charge",
        "amount": 1999,
        "amount_refunded": 500,
        "created": T - 100,
        "currency": "usd",
        "payment_intent": PI_ID,
        "metadata": {"pay_no": PAY_NO},
    }
    body = event_body("charge.refunded", data={"object": charge})
    with pytest.raises(CallbackIgnored) as ignored:
        channel().parse_callback(signed(body), body, now=NOW)
    assert ignored.value.event_type == "charge.refunded"


@pytest.mark.parametrize(
    "body",
    [
        event_body(livemode=True),
        event_body(object="payment_intent"),
        event_body(data={"object": intent(metadata={})}),
        event_body(data={"object": intent(object="charge")}),
        event_body(data={"object": intent(status="exploded")}),
        event_body(data={"object": intent(amount="12")}),
        event_body(data={"object": []}),
        event_body(data=None),
        event_body(id=42),
        b"not json",
        b"",
        b"[]",
        b'{"object":"event"}',
        b"\xff\xfe\x00",
    ],
)
def test_genuine_but_unusable_events_are_rejected(body: bytes) -> None:
    with pytest.raises(CallbackRejected):
        channel().parse_callback(signed(body), body, now=NOW)


def test_connect_events_report_their_account() -> None:
    body = event_body(account="acct_1Connected")
    event = channel().parse_callback(signed(body), body, now=NOW)
    assert event.trade.merchant_id == "acct_1Connected"


def test_handled_event_types() -> None:
    assert set(HANDLED_EVENT_TYPES) == {
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "refund.created",
        "refund.updated",
        "refund.failed",
    }


FUZZ_CHANNEL = from_credentials(CREDENTIALS)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=512), header=st.text(max_size=200))
def test_any_bytes_with_any_header_only_ever_raise_callback_rejected(
    body: bytes, header: str
) -> None:
    with pytest.raises(CallbackRejected):
        FUZZ_CHANNEL.parse_callback({"Stripe-Signature": header}, body, now=NOW)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    type_=st.sampled_from([*HANDLED_EVENT_TYPES, "x"]),
    obj=st.dictionaries(
        st.sampled_from(
            [
                "id",
                "object",
                "amount",
                "amount_received",
                "currency",
                "status",
                "metadata",
                "latest_charge",
                "payment_intent",
                "created",
                "amount_captured",
                "refunded",
            ]
        ),
        json_values,
    ),
    created=st.integers(min_value=-(2**70), max_value=2**70),
)
def test_genuinely_signed_junk_only_ever_raises_rejected_or_ignored(
    type_: str, obj: dict[str, Any], created: int
) -> None:
    try:
        body = orjson.dumps(
            {
                "id": "evt_x",
                "object": "event",
                "type": type_,
                "created": created,
                "livemode": False,
                "data": {"object": obj},
            }
        )
    except orjson.JSONEncodeError:  # an integer orjson cannot write: not a body Stripe could send
        return
    with contextlib.suppress(CallbackRejected, CallbackIgnored):
        FUZZ_CHANNEL.parse_callback(signed(body), body, now=NOW)


@pytest.mark.parametrize("event_type", ["charge.succeeded", "payment_intent.created"])
def test_a_genuine_event_of_an_unhandled_type_is_ignored_not_rejected(event_type: str) -> None:
    body = event_body(event_type)
    with pytest.raises(CallbackIgnored) as ignored:
        channel().parse_callback(signed(body), body, now=NOW)
    assert ignored.value.event_type == event_type


def test_ack_answers() -> None:
    adapter = channel()
    ok = adapter.ack_success()
    assert ok.status == 200
    assert orjson.loads(ok.body) == {"received": True}
    failed = adapter.ack_failure("bad_signature: \ud800 no match")
    assert failed.status == 400
    assert orjson.loads(failed.body)["received"] is False


def test_signature_headers_stripe_libraries_write_today() -> None:
    """The header shape ``t=…,v1=…`` a current clock makes is accepted (no fixed NOW)."""
    body = event_body(created=int(time.time()))
    now = datetime.now(UTC)
    header = signature_header(body, WEBHOOK_SECRET, timestamp=int(now.timestamp()), v0=False)
    assert channel().parse_callback({"Stripe-Signature": header}, body, now=now)
