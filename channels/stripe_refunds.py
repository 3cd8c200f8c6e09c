"""Stripe refunds (``/v1/refunds``) for payfront's adapter: the create's parameters, the refund
object and the refund list as wire models, and their mapping to payfront's ``RefundStatus``.

A refund is made against the PaymentIntent (``payment_intent=pi_…``); payfront's numbers ride
in its ``metadata`` (``out_refund_no``, ``out_trade_no``), which Stripe keeps and sends back in
every answer, list and ``refund.*`` event. Stripe cannot look a refund up by metadata, so a
refund whose id was never stored (the create's answer was lost) is found by listing the
intent's refunds and matching ``metadata[out_refund_no]``.

Statuses (docs.stripe.com/api/refunds/object): ``pending`` and ``requires_action`` are
accepted, money not yet moved; ``succeeded``; ``failed`` and ``canceled`` moved no money. A card
refund usually answers ``succeeded`` at once, and may still turn ``failed`` later
(``refund.failed``, e.g. the card was closed: docs.stripe.com/refunds#failed-refunds).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlencode

from pydantic import Field, StrictBool, StrictInt, StrictStr

from channels import stripe_wire as wire
from channels.base import CreateRefund, RefundState, RefundStatus
from channels.errors import (
    ChannelFatal,
    ChannelOrderNotFound,
    ChannelUnknownOutcome,
)

REFUND_KEY_PREFIX = "payfront-refund-"
OUT_REFUND_NO_KEY = "out_refund_no"
OUT_TRADE_NO_KEY = "out_trade_no"
# A free-text reason goes to the metadata: Stripe's ``reason`` takes three values only.
REASON_METADATA_KEY = "refund_reason"
# Stripe's own reasons (docs.stripe.com/api/refunds/create). ``fraudulent`` also adds the card
# and e-mail to the account's Radar block lists, so it is sent only when asked for by name.
STRIPE_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
METADATA_VALUE_MAX = 500  # characters (docs.stripe.com/metadata)
# The most a list answer holds (``limit`` is 1 to 100).
LIST_LIMIT = 100

REFUND_STATES: Mapping[str, RefundState] = {
    "pending": RefundState.PROCESSING,
    "requires_action": RefundState.PROCESSING,  # the shopper must give details (non-card)
    "succeeded": RefundState.SUCCEEDED,
    "failed": RefundState.FAILED,
    "canceled": RefundState.FAILED,
}


class RefundCreate(wire.WireModel):
    """Parameters of ``POST /v1/refunds``; field order is the encoded order."""

    payment_intent: StrictStr
    amount: StrictInt
    reason: StrictStr | None = None
    metadata: dict[str, str]


class Refund(wire.WireModel):
    id: StrictStr
    object: StrictStr
    amount: StrictInt
    currency: StrictStr
    created: StrictInt
    # Optional in Stripe's own schema; a refund without one is not understood.
    status: StrictStr | None = None
    payment_intent: StrictStr | None = None
    charge: StrictStr | None = None
    failure_reason: StrictStr | None = None
    metadata: dict[str, StrictStr] = Field(default_factory=dict)


class RefundList(wire.WireModel):
    """``GET /v1/refunds``: ``{"object": "list", "data": [...], "has_more": …}``, newest first."""

    object: StrictStr
    data: list[Refund]
    has_more: StrictBool


def idempotency_key(out_refund_no: str) -> str:
    """The key of one refund: the same refund number always gives the same key.

    Stripe keeps keys for at least 24 hours, then forgets them: the same refund sent again
    after that is a new refund (Stripe stops it only once the charge is fully refunded). So a
    refund whose answer was lost for longer than that must be looked up (``list_path``)
    before it is sent again, never re-sent blindly.
    """
    return REFUND_KEY_PREFIX + out_refund_no


def create_form(refund: CreateRefund) -> bytes:
    """The form of ``POST /v1/refunds`` for one payfront refund; identical for every retry."""
    if not refund.channel_trade_no:
        raise ChannelFatal(
            "NO_PAYMENT_INTENT_ID",
            f"a Stripe refund needs the PaymentIntent id of {refund.out_trade_no!r}",
        )
    wire.check_order_number(refund.out_refund_no)
    metadata = {OUT_REFUND_NO_KEY: refund.out_refund_no, OUT_TRADE_NO_KEY: refund.out_trade_no}
    reason, note = _reason(refund.reason)
    if note is not None:
        metadata[REASON_METADATA_KEY] = note
    params = RefundCreate(
        payment_intent=refund.channel_trade_no,
        amount=refund.refund_minor,  # whole units already for zero-decimal currencies
        reason=reason,
        metadata=metadata,
    )
    return wire.to_form(params)


def _reason(text: str | None) -> tuple[str | None, str | None]:
    """(Stripe's ``reason``, or the text for the metadata)."""
    if text is None or not text.strip():
        return None, None
    named = text.strip().lower().replace(" ", "_").replace("-", "_")
    if named in STRIPE_REASONS:
        return named, None
    return None, text[:METADATA_VALUE_MAX]


def retrieve_path(channel_refund_no: str) -> str:
    return f"/v1/refunds/{quote(channel_refund_no, safe='')}"


def list_path(channel_trade_no: str) -> str:
    """One PaymentIntent's refunds, newest first (at most 100: a charge rarely has more)."""
    return "/v1/refunds?" + urlencode({"payment_intent": channel_trade_no, "limit": LIST_LIMIT})


def to_refund_status(refund: Refund, *, succeeded_at: int | None = None) -> RefundStatus | None:
    """The refund as payfront's ``RefundStatus``; None if its status is unknown or it does not
    carry payfront's refund number (made in Stripe's Dashboard, say).

    Stripe's refund tells no time of success: ``succeeded_at`` is the event's time for an
    event, else the refund's creation (card refunds succeed when they are made).
    """
    state = REFUND_STATES.get(refund.status or "")
    out_refund_no = refund.metadata.get(OUT_REFUND_NO_KEY)
    if state is None or refund.status is None or not out_refund_no:
        return None
    succeeded = state is RefundState.SUCCEEDED
    failure = None
    if state is RefundState.FAILED:
        failure = refund.failure_reason or refund.status
    return RefundStatus(
        out_refund_no=out_refund_no,
        state=state,
        channel_state=refund.status,
        out_trade_no=refund.metadata.get(OUT_TRADE_NO_KEY) or None,
        amount_minor=refund.amount,
        currency=refund.currency.upper(),
        channel_refund_no=refund.id,
        succeeded_at=wire.timestamp(succeeded_at or refund.created) if succeeded else None,
        failure_reason=failure,
    )


def load_refund(body: bytes) -> Refund | None:
    refund = wire.load(Refund, body)
    return refund if refund is not None and refund.object == "refund" else None


def status_of_answer(body: bytes, http_status: int) -> RefundStatus:
    """A 200 answer holding one refund (create or retrieve) as a ``RefundStatus``."""
    refund = load_refund(body)
    status = to_refund_status(refund) if refund is not None else None
    if status is None:
        raise ChannelUnknownOutcome(
            "UNREADABLE_REFUND",
            "not a refund, or its status or metadata[out_refund_no] is not understood",
            http_status=http_status,
        )
    return status


def find_refund(body: bytes, out_refund_no: str, http_status: int) -> RefundStatus:
    """A 200 answer of a refund query (one refund, or one intent's list) → the refund
    ``out_refund_no``; ``ChannelOrderNotFound`` if the list does not have it."""
    listing = wire.load(RefundList, body)
    if listing is None or listing.object != "list":
        status = status_of_answer(body, http_status)
        if status.out_refund_no != out_refund_no:
            # The stored id is some other refund: payfront's records are wrong, not Stripe.
            raise ChannelFatal(
                "REFUND_NUMBER_MISMATCH",
                f"{status.channel_refund_no} is refund {status.out_refund_no!r}, "
                f"not {out_refund_no!r}",
                http_status=http_status,
            )
        return status
    found = [r for r in listing.data if r.metadata.get(OUT_REFUND_NO_KEY) == out_refund_no]
    if len(found) > 1:
        # Only a create repeated after Stripe forgot its key makes two: money went twice.
        ids = ", ".join(r.id for r in found)
        raise ChannelFatal(
            "DUPLICATE_REFUNDS", f"{out_refund_no!r} is at Stripe {len(found)} times: {ids}"
        )
    if not found:
        if listing.has_more:
            raise ChannelUnknownOutcome(
                "REFUND_LIST_TRUNCATED",
                f"{out_refund_no!r} is not among the intent's {LIST_LIMIT} newest refunds",
                http_status=http_status,
            )
        raise ChannelOrderNotFound(
            "REFUND_NOT_FOUND", f"Stripe has no refund {out_refund_no!r}", http_status=http_status
        )
    matched = to_refund_status(found[0])
    if matched is None:
        raise ChannelUnknownOutcome(
            "UNREADABLE_REFUND", f"refund {found[0].id} has an unknown status", http_status=200
        )
    return matched
