"""Stripe API v1 wire messages (pydantic), Stripe's form encoding, and the mapping of its
answers and errors to payfront's channel models.

Kept apart from the adapter's flow code. Only the fields payfront reads are declared; Stripe
adds fields over time, so unknown ones are ignored. Amounts are integers in the currency's
minor unit (none for zero-decimal currencies such as JPY) and refuse anything but JSON integers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TypeVar
from urllib.parse import quote_plus

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from channels.base import HttpResponse, TradeState, TradeStatus
from channels.errors import (
    ChannelError,
    ChannelFatal,
    ChannelOrderNotFound,
    ChannelRetryable,
    ChannelUnknownOutcome,
)


class WireModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# -- requests -------------------------------------------------------------------------------


class AutomaticPaymentMethods(WireModel):
    enabled: StrictBool


class PaymentIntentCreate(WireModel):
    """Parameters of ``POST /v1/payment_intents``; field order is the encoded order."""

    amount: StrictInt
    currency: StrictStr
    description: StrictStr | None = None
    metadata: dict[str, str]
    automatic_payment_methods: AutomaticPaymentMethods


class PaymentIntentCancel(WireModel):
    """Parameters of ``POST /v1/payment_intents/{id}/cancel``."""

    cancellation_reason: StrictStr


def _flatten(prefix: str, value: object) -> Iterator[tuple[str, str]]:
    if value is None:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _flatten(f"{prefix}[{key}]" if prefix else str(key), item)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _flatten(f"{prefix}[{index}]", item)
    elif isinstance(value, bool):  # before int: bool is an int
        yield prefix, "true" if value else "false"
    else:
        yield prefix, str(value)


def to_form(payload: BaseModel) -> bytes:
    """Stripe's form encoding: nested keys in brackets (``metadata[pay_no]=…``), lists indexed,
    booleans ``true``/``false``, declaration order. Brackets stay literal, as Stripe's own
    libraries send them; everything else is percent-encoded."""
    pairs = _flatten("", payload.model_dump(exclude_none=True))
    return "&".join(
        f"{quote_plus(key, safe='[]')}={quote_plus(value)}" for key, value in pairs
    ).encode("ascii")


# -- responses ------------------------------------------------------------------------------


class Charge(WireModel):
    id: StrictStr
    object: StrictStr = "charge"
    amount: StrictInt
    amount_captured: StrictInt | None = None
    amount_refunded: StrictInt = 0
    created: StrictInt
    currency: StrictStr
    paid: StrictBool | None = None
    refunded: StrictBool = False
    status: StrictStr | None = None
    payment_intent: StrictStr | None = None
    # Stripe copies the PaymentIntent's metadata to the charge when it is confirmed.
    metadata: dict[str, StrictStr] = Field(default_factory=dict)


class PaymentIntent(WireModel):
    id: StrictStr
    object: StrictStr
    amount: StrictInt
    amount_received: StrictInt = 0
    currency: StrictStr
    status: StrictStr
    client_secret: StrictStr | None = None
    created: StrictInt | None = None
    metadata: dict[str, StrictStr] = Field(default_factory=dict)
    # An id, or the charge itself when the request asked for ``expand[]=latest_charge``.
    latest_charge: StrictStr | Charge | None = None
    livemode: StrictBool | None = None


class ErrorDetail(WireModel):
    """``{"error": {type, code?, decline_code?, message?, param?, payment_intent?}}``."""

    type: StrictStr | None = None
    code: StrictStr | None = None
    decline_code: StrictStr | None = None
    message: StrictStr | None = None
    param: StrictStr | None = None
    # Stripe attaches the PaymentIntent to errors about one (e.g. a cancel in a wrong state).
    payment_intent: PaymentIntent | None = None


class ErrorBody(WireModel):
    error: ErrorDetail


class EventData(WireModel):
    object: dict[str, object]


class Event(WireModel):
    """The JSON body Stripe POSTs to a webhook endpoint."""

    id: StrictStr
    object: StrictStr
    type: StrictStr
    created: StrictInt
    livemode: StrictBool
    data: EventData
    # Set on events of a connected account (Stripe Connect).
    account: StrictStr | None = None


# -- mapping to payfront --------------------------------------------------------------------

# PaymentIntent statuses (docs.stripe.com/payments/paymentintents/lifecycle). A failed attempt
# returns the intent to ``requires_payment_method``: it stays payable with another card, so it
# is NOT_PAID, not FAILED (FAILED would make payfront give the order up while Stripe could
# still take the money).
PAYMENT_INTENT_STATES: Mapping[str, TradeState] = {
    "requires_payment_method": TradeState.NOT_PAID,
    "requires_confirmation": TradeState.NOT_PAID,
    "requires_action": TradeState.PAYING,
    "processing": TradeState.PAYING,
    # Authorised, not captured: no money has moved yet (payfront creates automatic capture).
    "requires_capture": TradeState.PAYING,
    "succeeded": TradeState.PAID,
    "canceled": TradeState.CLOSED,
}

PAY_NO_METADATA_KEY = "pay_no"

# Idempotency keys are at most 255 characters; our order numbers go into them and into paths.
_ORDER_NUMBER = re.compile(r"[A-Za-z0-9_\-.:]{1,200}")


def check_order_number(number: str) -> None:
    """Refuse an order or refund number unfit for an idempotency key."""
    if not _ORDER_NUMBER.fullmatch(number):
        raise ChannelFatal("BAD_ORDER_NUMBER", "order number unfit for an idempotency key")


_Model = TypeVar("_Model", bound=BaseModel)


def load(model: type[_Model], raw: bytes) -> _Model | None:
    """``raw`` parsed as ``model``, or None if it is not JSON of that shape."""
    try:
        return model.model_validate(orjson.loads(raw))
    except (orjson.JSONDecodeError, ValidationError):
        return None


def timestamp(seconds: int | None) -> datetime | None:
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def to_trade_status(
    intent: PaymentIntent, *, merchant_id: str | None, paid_at_fallback: int | None = None
) -> TradeStatus | None:
    """The PaymentIntent as payfront's ``TradeStatus``; None if its status is unknown or it
    does not carry payfront's order number (``metadata[pay_no]``)."""
    state = PAYMENT_INTENT_STATES.get(intent.status)
    out_trade_no = intent.metadata.get(PAY_NO_METADATA_KEY)
    if state is None or not out_trade_no:
        return None
    paid = state is TradeState.PAID
    charge = intent.latest_charge if isinstance(intent.latest_charge, Charge) else None
    paid_at = None
    if paid:
        paid_at = timestamp(charge.created if charge is not None else paid_at_fallback)
    return TradeStatus(
        out_trade_no=out_trade_no,
        state=state,
        channel_state=intent.status,
        amount_minor=intent.amount_received if paid else intent.amount,
        currency=intent.currency.upper(),
        channel_trade_no=intent.id,
        paid_at=paid_at,
        merchant_id=merchant_id,
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def classify_failure(response: HttpResponse) -> ChannelError:
    """An answer that is not the success the caller expected, as a ``ChannelError``.

    Sources: docs.stripe.com/api/errors (status summary: 409 "conflicts with another request
    (perhaps due to using the same idempotent key)", 429 rate limits, 5xx "an error with
    Stripe's servers"), docs.stripe.com/error-low-level (the result of a 500 is
    indeterminate; ``Stripe-Should-Retry``), docs.stripe.com/idempotency (same key with
    other parameters is an ``idempotency_error``), and stripe-python's retry rule
    (``Stripe-Should-Retry`` first, then 409, then 5xx).
    """
    status = response.status
    should_retry = (_header(response.headers, "stripe-should-retry") or "").strip().lower()
    envelope = load(ErrorBody, response.body)
    error = envelope.error if envelope is not None else None
    if error is not None:
        code = error.code or error.type or f"HTTP_{status}"
        message = error.message or ""
    else:
        code = f"HTTP_{status}"
        message = response.body[:200].decode("utf-8", "replace")

    def make(error_class: type[ChannelError]) -> ChannelError:
        return error_class(code, message, http_status=status)

    if 200 <= status < 300:
        return ChannelUnknownOutcome(
            "UNEXPECTED_RESPONSE", f"HTTP {status} without the expected body", http_status=status
        )
    if error is not None and error.type == "idempotency_error":
        # The same key was used with other parameters: retrying the same call cannot help.
        return make(ChannelFatal)
    if should_retry == "true":
        return make(ChannelRetryable)
    if status >= 500:
        return make(ChannelUnknownOutcome)
    rate_limited = status == 429 or (error is not None and error.code == "rate_limit")
    if status == 409 or rate_limited:
        # Nothing was done; with our idempotency key a repeat is safe. Unless Stripe says not
        # to: then ask before anything else.
        return make(ChannelUnknownOutcome if should_retry == "false" else ChannelRetryable)
    if status == 404 and error is not None and error.code == "resource_missing":
        return make(ChannelOrderNotFound)
    if status == 424:  # an external dependency failed: whether Stripe acted is not known
        return make(ChannelUnknownOutcome)
    if 400 <= status < 500:  # 400 invalid_request_error, 401, 402 card_error, 403, 404 ...
        return make(ChannelFatal)
    return make(ChannelUnknownOutcome)
