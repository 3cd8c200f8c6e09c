"""Stripe adapter for PaymentIntents (``payment_intent``): the shopper's front-end confirms
the intent with Stripe.js using the ``client_secret`` payfront hands out.

Pure functions of data; the wire messages live in ``channels.stripe_wire``, refunds in
``channels.stripe_refunds``, statements (balance transactions) in ``channels.stripe_statements``
and webhook signatures in ``channels.stripe_signature``. Stripe's answers are not signed (their
integrity is TLS's); its webhooks are (``Stripe-Signature``, HMAC-SHA256).

Stripe cannot look a PaymentIntent up by payfront's order number: ``build_query`` needs the
PaymentIntent id (``channel_trade_no``, stored when the create answered) and raises
``ChannelOrderNotFound`` without it. payfront's worker then re-sends the identical create,
whose ``Idempotency-Key`` is derived from the order number (``payfront-create-{pay_no}``): Stripe
answers a repeated key with the first answer, so the same PaymentIntent comes back instead of a
second one being made. Stripe keeps keys for at least 24 hours; a create repeated later than
that would make a second intent, so after a day only the stored id is to be trusted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from urllib.parse import quote

import orjson
from pydantic import ValidationError

from channels import stripe_payouts as payouts
from channels import stripe_refunds as refunds
from channels import stripe_statements as statements
from channels import stripe_wire as wire
from channels.base import (
    ChannelEvent,
    CreateOrder,
    CreatePayout,
    CreateRefund,
    HttpRequest,
    HttpResponse,
    PayoutStatus,
    PrepayResult,
    RefundStatus,
    StatementPage,
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
from channels.stripe_signature import SIGNATURE_TOLERANCE_SECONDS as SIGNATURE_TOLERANCE_SECONDS
from channels.stripe_signature import SignatureRejected as SignatureRejected
from channels.stripe_signature import parse_signature_header as parse_signature_header
from channels.stripe_signature import sign_payload as sign_payload
from channels.stripe_signature import verify_signature

DEFAULT_API_BASE = "https://api.stripe.com"
# Pinned so that a change of the account's default API version cannot change the answers.
STRIPE_VERSION = "2025-03-31.basil"
USER_AGENT = "payfront/0.1 (stripe)"
CREATE_KEY_PREFIX = "payfront-create-"
CANCEL_KEY_PREFIX = "payfront-cancel-"
PAYMENT_EVENT_TYPES: tuple[str, ...] = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
)
# Sent for every refund since API version 2024-10-28.acacia (before: only for refunds without
# a charge), each with the whole refund. ``charge.refunded`` carries the charge (whose list of
# refunds is no longer included since 2022-11-15) and ``charge.refund.updated`` is sent for
# some methods only: neither tells more, both are ignored.
REFUND_EVENT_TYPES: tuple[str, ...] = ("refund.created", "refund.updated", "refund.failed")
# The event types payfront reads; a webhook endpoint should be subscribed to exactly these
# (any other genuine one is acknowledged and ignored by ``parse_callback``).
HANDLED_EVENT_TYPES: tuple[str, ...] = PAYMENT_EVENT_TYPES + REFUND_EVENT_TYPES
# Payout events (``transfer.created``) are handled too; a webhook endpoint that should receive
# them subscribes to these as well.
PAYOUT_EVENT_TYPES: tuple[str, ...] = payouts.PAYOUT_EVENT_TYPES

_SECRET_KEY = re.compile(r"(sk|rk)_(test|live)_[A-Za-z0-9_]+")
_WEBHOOK_SECRET = re.compile(r"whsec_[A-Za-z0-9+/=_-]+")
_ACCOUNT_ID = re.compile(r"acct_[A-Za-z0-9]+")


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


def idempotency_key(prefix: str, out_trade_no: str) -> str:
    """The key of one of our calls about one order: the same order always gives the same key."""
    return prefix + out_trade_no


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
        wire.check_order_number(order.out_trade_no)
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
        wire.check_order_number(out_trade_no)
        body = wire.to_form(wire.PaymentIntentCancel(cancellation_reason="abandoned"))
        return self._request(
            "POST",
            self._intent_path(out_trade_no, channel_trade_no) + "/cancel",
            body,
            idempotency_key(CANCEL_KEY_PREFIX, out_trade_no),
        )

    def build_refund(self, refund: CreateRefund, *, now: datetime) -> HttpRequest:
        form = refunds.create_form(refund)
        return self._request(
            "POST", "/v1/refunds", form, refunds.idempotency_key(refund.out_refund_no)
        )

    def build_refund_query(
        self,
        out_refund_no: str,
        *,
        out_trade_no: str,
        channel_trade_no: str | None = None,
        channel_refund_no: str | None = None,
        now: datetime,
    ) -> HttpRequest:
        if channel_refund_no:
            return self._request("GET", refunds.retrieve_path(channel_refund_no))
        # The create's answer was lost: the refund is found among the intent's by metadata.
        if not channel_trade_no:
            raise ChannelOrderNotFound(
                "NO_PAYMENT_INTENT_ID",
                f"neither the refund id nor the PaymentIntent id of {out_refund_no!r} is known",
            )
        return self._request("GET", refunds.list_path(channel_trade_no))

    def build_statement(self, day: date, *, now: datetime) -> HttpRequest:
        return self._request("GET", statements.page_path(day))

    def build_payout(self, payout: CreatePayout, *, now: datetime) -> HttpRequest:
        form = payouts.create_form(payout)
        return self._request(
            "POST", "/v1/transfers", form, payouts.idempotency_key(payout.out_payout_no)
        )

    def build_payout_query(
        self, out_payout_no: str, *, channel_payout_no: str | None = None, now: datetime
    ) -> HttpRequest:
        if channel_payout_no:
            return self._request("GET", payouts.retrieve_path(channel_payout_no))
        # The create's answer was lost: the transfer is found by its transfer_group.
        return self._request("GET", payouts.list_path(out_payout_no))

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

    def parse_create(
        self, response: HttpResponse, *, now: datetime, order: CreateOrder | None = None
    ) -> PrepayResult:
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

    def parse_refund(
        self, response: HttpResponse, *, now: datetime, refund: CreateRefund | None = None
    ) -> RefundStatus:
        if response.status != 200:
            raise wire.classify_failure(response)
        status = refunds.status_of_answer(response.body, response.status)
        if refund is not None and status.out_refund_no != refund.out_refund_no:
            # An answer about another refund (a reused idempotency key?): believe nothing.
            raise ChannelUnknownOutcome(
                "REFUND_NUMBER_MISMATCH",
                f"answer is about {status.out_refund_no!r}, not {refund.out_refund_no!r}",
                http_status=response.status,
            )
        return status

    def parse_refund_query(
        self, response: HttpResponse, *, out_refund_no: str, now: datetime
    ) -> RefundStatus:
        if response.status == 200:
            return refunds.find_refund(response.body, out_refund_no, response.status)
        raise wire.classify_failure(response)

    def parse_payout(
        self, response: HttpResponse, *, payout: CreatePayout, now: datetime
    ) -> PayoutStatus:
        if response.status != 200:
            raise wire.classify_failure(response)
        status = payouts.status_of_answer(response.body, response.status)
        if status.out_payout_no != payout.out_payout_no:
            raise ChannelUnknownOutcome(
                "PAYOUT_NUMBER_MISMATCH",
                f"answer is about {status.out_payout_no!r}, not {payout.out_payout_no!r}",
                http_status=response.status,
            )
        return status

    def parse_payout_query(
        self, response: HttpResponse, *, out_payout_no: str, now: datetime
    ) -> PayoutStatus:
        if response.status == 200:
            return payouts.find_transfer(response.body, out_payout_no, response.status)
        raise wire.classify_failure(response)

    def parse_statement(
        self, response: HttpResponse, *, cursor: Mapping[str, str], now: datetime
    ) -> StatementPage:
        if response.status != 200:
            raise wire.classify_failure(response)
        listing = statements.load_page(response.body)
        day = statements.day_of(listing, cursor)
        lines = statements.to_lines(listing, day)
        if not listing.has_more or not listing.data or day is None:
            return StatementPage(lines=lines)
        # Stripe's lists page with the last object's id and the same filters.
        last = listing.data[-1].id
        return StatementPage(
            lines=lines,
            next_request=self._request("GET", statements.page_path(day, starting_after=last)),
            cursor={"day": day.isoformat(), "starting_after": last},
        )

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
        if event.type in payouts.PAYOUT_EVENT_TYPES:
            return ChannelEvent(
                event_id=event.id,
                event_type=event.type,
                trade=None,
                raw=raw,
                payout=_event_payout(event),
            )
        if event.type not in HANDLED_EVENT_TYPES:
            # Signed by Stripe, so genuine: acknowledged and left alone.
            raise CallbackIgnored(event.id, event.type)
        if event.type in REFUND_EVENT_TYPES:
            refund = _event_refund(event)
            return ChannelEvent(
                event_id=event.id, event_type=event.type, trade=None, raw=raw, refund=refund
            )
        trade = self._event_trade(event)
        if trade is None:
            raise CallbackRejected("malformed", f"{event.type} object is not understood")
        return ChannelEvent(event_id=event.id, event_type=event.type, trade=trade, raw=raw)

    def _event_trade(self, event: wire.Event) -> TradeStatus | None:
        merchant_id = event.account or self.config.account_id
        try:
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


def _event_refund(event: wire.Event) -> RefundStatus:
    try:
        refund = refunds.Refund.model_validate(event.data.object)
    except ValidationError:
        raise CallbackRejected("malformed", f"{event.type} object is not a refund") from None
    if refund.object != "refund" or refunds.REFUND_STATES.get(refund.status or "") is None:
        raise CallbackRejected("malformed", f"{event.type} refund is not understood")
    # The event is made when the refund changes: its time is the change's.
    status = refunds.to_refund_status(refund, succeeded_at=event.created)
    if status is None:
        # Genuine, but not one of payfront's refunds (made in the Dashboard, say).
        raise CallbackIgnored(event.id, event.type)
    return status


def _event_payout(event: wire.Event) -> PayoutStatus:
    try:
        transfer = payouts.Transfer.model_validate(event.data.object)
    except ValidationError:
        raise CallbackRejected("malformed", f"{event.type} object is not a transfer") from None
    if transfer.object != "transfer":
        raise CallbackRejected("malformed", f"{event.type} object is not a transfer")
    status = payouts.to_payout_status(transfer)
    if status is None:
        # Genuine, but not one of payfront's payouts (made in the Dashboard, say).
        raise CallbackIgnored(event.id, event.type)
    return status


def _load_intent(body: bytes) -> wire.PaymentIntent | None:
    intent = wire.load(wire.PaymentIntent, body)
    if intent is None or intent.object != "payment_intent":
        return None
    return intent


def from_credentials(credentials: Mapping[str, str]) -> Stripe:
    """The registry's factory: an adapter from an account's decrypted credentials."""
    return Stripe(StripeConfig.from_credentials(credentials))
