"""Stripe adapter for PaymentIntents (``payment_intent``): the shopper's front-end confirms
the intent with Stripe.js using the ``client_secret`` payfront hands out.

Pure functions of data; the wire messages live in ``channels.stripe_wire``. Stripe's answers
are not signed (their integrity is TLS's); its webhooks are (``Stripe-Signature``, HMAC-SHA256).

Stripe cannot look a PaymentIntent up by payfront's order number: ``build_query`` needs the
PaymentIntent id (``channel_trade_no``, stored when the create answered) and raises
``ChannelOrderNotFound`` without it. payfront's worker then re-sends the identical create,
whose ``Idempotency-Key`` is derived from the order number (``payfront-create-{pay_no}``): Stripe
answers a repeated key with the first answer, so the same PaymentIntent comes back instead of a
second one being made. Stripe keeps keys for at least 24 hours; a create repeated later than
that would make a second intent, so after a day only the stored id is to be trusted.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote

import orjson
from pydantic import ValidationError

from channels import stripe_wire as wire
from channels.base import (
    ChannelEvent,
    CreateOrder,
    HttpRequest,
    HttpResponse,
    PrepayResult,
    TradeStatus,
)
from channels.errors import (
    CallbackIgnored,
    CallbackRejected,
    ChannelAlreadyPaid,
    ChannelFatal,
    ChannelOrderNotFound,
    ChannelUnknownOutcome,
)

DEFAULT_API_BASE = "https://api.stripe.com"
# Pinned so that a change of the account's default API version cannot change the answers.
STRIPE_VERSION = "2025-03-31.basil"
SIGNATURE_TOLERANCE_SECONDS = 300
USER_AGENT = "payfront/0.1 (stripe)"
CREATE_KEY_PREFIX = "payfront-create-"
CANCEL_KEY_PREFIX = "payfront-cancel-"
# The event types payfront reads; a webhook endpoint should be subscribed to exactly these
# (any other type is refused by ``parse_callback``, and Stripe would retry it for days).
HANDLED_EVENT_TYPES: tuple[str, ...] = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "charge.refunded",
)

_SECRET_KEY = re.compile(r"(sk|rk)_(test|live)_[A-Za-z0-9_]+")
_WEBHOOK_SECRET = re.compile(r"whsec_[A-Za-z0-9+/=_-]+")
_ACCOUNT_ID = re.compile(r"acct_[A-Za-z0-9]+")
# Idempotency keys are at most 255 characters; our order numbers go into them and into paths.
_ORDER_NUMBER = re.compile(r"[A-Za-z0-9_\-.:]{1,200}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_HEX_SIGNATURE = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class StripeConfig:
    """One Stripe account: its secret key, its webhook endpoint's signing secret(s)."""

    secret_key: str = field(repr=False)
    # Several during a rotation ("roll secret"): an event signed with any of them is genuine.
    webhook_secrets: tuple[str, ...] = field(repr=False)
    api_base: str = DEFAULT_API_BASE
    account_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.secret_key, str) or not _SECRET_KEY.fullmatch(self.secret_key):
            raise ValueError("stripe config: secret_key must be an sk_/rk_ test or live key")
        if not self.webhook_secrets or not all(
            isinstance(secret, str) and _WEBHOOK_SECRET.fullmatch(secret)
            for secret in self.webhook_secrets
        ):
            raise ValueError("stripe config: webhook_secrets must be whsec_… strings")
        if not self.api_base.startswith(("https://", "http://")) or self.api_base.endswith("/"):
            raise ValueError("stripe config: api_base must be http(s)://host without a '/'")
        if self.account_id is not None and not _ACCOUNT_ID.fullmatch(self.account_id):
            raise ValueError("stripe config: account_id must look like acct_…")

    @property
    def livemode(self) -> bool:
        return self.secret_key.startswith(("sk_live_", "rk_live_"))

    @classmethod
    def from_credentials(cls, creds: Mapping[str, str]) -> StripeConfig:
        """Parse string credentials: ``secret_key``, ``webhook_secret`` (comma-separated during
        a rotation), optional ``api_base`` and ``account_id``."""

        def required(key: str) -> str:
            value = creds.get(key)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"stripe credentials: {key!r} is missing or empty")
            return value.strip()

        secrets = tuple(s.strip() for s in required("webhook_secret").split(",") if s.strip())
        return cls(
            secret_key=required("secret_key"),
            webhook_secrets=secrets,
            api_base=(creds.get("api_base") or DEFAULT_API_BASE).strip().rstrip("/"),
            account_id=(creds.get("account_id") or "").strip() or None,
        )


class SignatureRejected(CallbackRejected):
    """A webhook's ``Stripe-Signature`` is missing, malformed, stale or does not verify."""


def idempotency_key(prefix: str, out_trade_no: str) -> str:
    """The key of one of our calls about one order: the same order always gives the same key."""
    return prefix + out_trade_no


def sign_payload(secret: str, timestamp: int, body: bytes) -> str:
    """Stripe's v1 scheme: hex HMAC-SHA256 keyed with the whole ``whsec_…`` string over
    ``"{timestamp}." + raw body``."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def parse_signature_header(header: str) -> tuple[int, list[str]]:
    """``t=…,v1=…[,v1=…][,v0=…]`` → (timestamp, v1 signatures); other schemes are ignored."""
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if name == "t":
            if timestamp is not None or not _TIMESTAMP.fullmatch(value):
                raise SignatureRejected("malformed_signature", "bad t= in Stripe-Signature")
            timestamp = int(value)
        elif name == "v1":
            signatures.append(value)
    if timestamp is None:
        raise SignatureRejected("malformed_signature", "Stripe-Signature has no t=")
    if not signatures:
        raise SignatureRejected("missing_signature", "Stripe-Signature has no v1 signature")
    return timestamp, signatures


def verify_signature(
    headers: Mapping[str, str], body: bytes, now: datetime, *, secrets: tuple[str, ...]
) -> None:
    """Accept the body if any v1 signature matches any configured secret and ``t`` is within
    the tolerance (either way: a clock ahead is as suspect as a replay)."""
    header = next(
        (value for name, value in headers.items() if name.lower() == "stripe-signature"), None
    )
    if not header:
        raise SignatureRejected("missing_signature", "no Stripe-Signature header")
    timestamp, candidates = parse_signature_header(header)
    expected = [sign_payload(secret, timestamp, body) for secret in secrets]
    genuine = any(
        hmac.compare_digest(mine, theirs)
        for theirs in candidates
        if _HEX_SIGNATURE.fullmatch(theirs)
        for mine in expected
    )
    if not genuine:
        raise SignatureRejected("bad_signature", "no v1 signature matches")
    if abs(now.timestamp() - timestamp) > SIGNATURE_TOLERANCE_SECONDS:
        raise SignatureRejected("stale_timestamp", f"Stripe-Signature t={timestamp} is stale")


class Stripe:
    """Stripe PaymentIntents for one account (the ``Channel`` protocol)."""

    name = "stripe"

    def __init__(self, config: StripeConfig) -> None:
        self.config = config

    # -- requests ----------------------------------------------------------------------------

    def build_create(self, order: CreateOrder, *, now: datetime) -> HttpRequest:
        if order.method != "payment_intent":
            raise ChannelFatal(
                "METHOD_NOT_SUPPORTED", f"stripe supports 'payment_intent', not {order.method!r}"
            )
        _check_order_number(order.out_trade_no)
        metadata = {wire.PAY_NO_METADATA_KEY: order.out_trade_no}
        if order.attach:
            metadata["attach"] = order.attach
        params = wire.PaymentIntentCreate(
            amount=order.amount_minor,  # already whole units for zero-decimal currencies
            currency=order.currency.lower(),
            description=order.description or None,
            metadata=metadata,
            automatic_payment_methods=wire.AutomaticPaymentMethods(enabled=True),
        )
        return self._request(
            "POST",
            "/v1/payment_intents",
            wire.to_form(params),
            idempotency_key(CREATE_KEY_PREFIX, order.out_trade_no),
        )

    def build_query(
        self, out_trade_no: str, *, channel_trade_no: str | None = None, now: datetime
    ) -> HttpRequest:
        # The charge rides along so that a paid intent tells when it was paid.
        query = "?expand%5B%5D=latest_charge"
        return self._request("GET", self._intent_path(out_trade_no, channel_trade_no) + query)

    def build_close(
        self, out_trade_no: str, *, channel_trade_no: str | None = None, now: datetime
    ) -> HttpRequest:
        _check_order_number(out_trade_no)
        body = wire.to_form(wire.PaymentIntentCancel(cancellation_reason="abandoned"))
        return self._request(
            "POST",
            self._intent_path(out_trade_no, channel_trade_no) + "/cancel",
            body,
            idempotency_key(CANCEL_KEY_PREFIX, out_trade_no),
        )

    @staticmethod
    def _intent_path(out_trade_no: str, channel_trade_no: str | None) -> str:
        if not channel_trade_no:
            raise ChannelOrderNotFound(
                "NO_PAYMENT_INTENT_ID",
                f"Stripe finds intents by id only; none is known for {out_trade_no!r}",
            )
        return f"/v1/payment_intents/{quote(channel_trade_no, safe='')}"

    def _request(
        self, method: str, path: str, body: bytes = b"", key: str | None = None
    ) -> HttpRequest:
        headers = {
            "Authorization": f"Bearer {self.config.secret_key}",
            "Stripe-Version": STRIPE_VERSION,
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if method == "POST":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if key is not None:
            headers["Idempotency-Key"] = key
        return HttpRequest(
            method=method, url=self.config.api_base + path, headers=headers, body=body
        )

    # -- responses ---------------------------------------------------------------------------

    def parse_create(self, response: HttpResponse, *, now: datetime) -> PrepayResult:
        if response.status == 200:
            intent = _load_intent(response.body)
            if intent is not None and intent.client_secret:
                return PrepayResult(
                    credential={
                        "client_secret": intent.client_secret,
                        "payment_intent_id": intent.id,
                    },
                    channel_trade_no=intent.id,
                )
        raise wire.classify_failure(response)

    def parse_query(self, response: HttpResponse, *, now: datetime) -> TradeStatus:
        if response.status == 200:
            intent = _load_intent(response.body)
            if intent is not None:
                status = wire.to_trade_status(intent, merchant_id=self.config.account_id)
                if status is None:
                    raise ChannelUnknownOutcome(
                        "UNREADABLE_PAYMENT_INTENT",
                        f"status {intent.status!r} or metadata[pay_no] not understood",
                        http_status=response.status,
                    )
                return status
        raise wire.classify_failure(response)

    def parse_close(self, response: HttpResponse, *, now: datetime) -> None:
        if response.status == 200:
            intent = _load_intent(response.body)
            if intent is not None and intent.status == "canceled":
                return
        failure = wire.classify_failure(response)
        envelope = wire.load(wire.ErrorBody, response.body)
        intent = envelope.error.payment_intent if envelope is not None else None
        if failure.code == "payment_intent_unexpected_state" and intent is not None:
            if intent.status == "canceled":  # cancelling a cancelled intent: it is closed
                return
            if intent.status == "succeeded":
                raise ChannelAlreadyPaid(failure.code, failure.message, http_status=response.status)
        raise failure

    # -- callbacks ---------------------------------------------------------------------------

    def parse_callback(
        self, headers: Mapping[str, str], body: bytes, *, now: datetime
    ) -> ChannelEvent:
        verify_signature(headers, body, now, secrets=self.config.webhook_secrets)
        try:
            raw = orjson.loads(body)
            event = wire.Event.model_validate(raw)
        except (orjson.JSONDecodeError, ValidationError) as exc:
            raise CallbackRejected("malformed", "body is not a Stripe event") from exc
        if event.object != "event":
            raise CallbackRejected("malformed", f"object {event.object!r} is not an event")
        if event.livemode != self.config.livemode:
            raise CallbackRejected("livemode_mismatch", "event and key are of different modes")
        if event.type not in HANDLED_EVENT_TYPES:
            # Signed by Stripe, so genuine: acknowledged and left alone.
            raise CallbackIgnored(event.id, event.type)
        trade = self._event_trade(event)
        if trade is None:
            raise CallbackRejected("malformed", f"{event.type} object is not understood")
        return ChannelEvent(event_id=event.id, event_type=event.type, trade=trade, raw=raw)

    def _event_trade(self, event: wire.Event) -> TradeStatus | None:
        merchant_id = event.account or self.config.account_id
        try:
            if event.type == "charge.refunded":
                charge = wire.Charge.model_validate(event.data.object)
                return wire.refunded_charge_status(charge, merchant_id=merchant_id)
            intent = wire.PaymentIntent.model_validate(event.data.object)
        except ValidationError:
            return None
        if intent.object != "payment_intent":
            return None
        # The event is created when the intent succeeds: its time is the payment's.
        return wire.to_trade_status(intent, merchant_id=merchant_id, paid_at_fallback=event.created)

    def ack_success(self) -> HttpResponse:
        return HttpResponse(200, {"Content-Type": "application/json"}, b'{"received":true}')

    def ack_failure(self, message: str) -> HttpResponse:
        text = message.encode("utf-8", "replace").decode("utf-8")  # lone surrogates
        body = orjson.dumps({"received": False, "error": text})
        return HttpResponse(400, {"Content-Type": "application/json"}, body)


def _check_order_number(out_trade_no: str) -> None:
    if not _ORDER_NUMBER.fullmatch(out_trade_no):
        raise ChannelFatal("BAD_ORDER_NUMBER", "order number unfit for an idempotency key")


def _load_intent(body: bytes) -> wire.PaymentIntent | None:
    intent = wire.load(wire.PaymentIntent, body)
    if intent is None or intent.object != "payment_intent":
        return None
    return intent


def from_credentials(credentials: Mapping[str, str]) -> Stripe:
    """The registry's factory: an adapter from an account's decrypted credentials."""
    return Stripe(StripeConfig.from_credentials(credentials))
