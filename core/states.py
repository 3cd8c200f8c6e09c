"""State machines as tables: ``{(state, event): next_state}``, one per machine, in one place.

Code never compares statuses to decide a move; it names an event and the table answers.
``core.store.transitions`` applies a move with compare-and-set.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


class PayStatus(enum.StrEnum):
    PENDING = "pending"  # written by the token path; the prepay job is owed
    PREPAYING = "prepaying"  # a worker is (or was) calling the channel's create
    AWAITING_PAYMENT = "awaiting_payment"  # the credential is ready for the shopper
    PAID = "paid"
    PREPAY_FAILED = "prepay_failed"
    CLOSED = "closed"


class PayEvent(enum.StrEnum):
    START_PREPAY = "start_prepay"
    CREDENTIAL_READY = "credential_ready"
    PREPAY_REJECTED = "prepay_rejected"
    PAYMENT_SUCCEEDED = "payment_succeeded"
    CLOSED = "closed"


PAY_TRANSITIONS: Mapping[tuple[PayStatus, PayEvent], PayStatus] = {
    (PayStatus.PENDING, PayEvent.START_PREPAY): PayStatus.PREPAYING,
    (PayStatus.PREPAYING, PayEvent.CREDENTIAL_READY): PayStatus.AWAITING_PAYMENT,
    (PayStatus.PENDING, PayEvent.PREPAY_REJECTED): PayStatus.PREPAY_FAILED,
    (PayStatus.PREPAYING, PayEvent.PREPAY_REJECTED): PayStatus.PREPAY_FAILED,
    # A query after a lost answer can find the order already paid.
    (PayStatus.PREPAYING, PayEvent.PAYMENT_SUCCEEDED): PayStatus.PAID,
    (PayStatus.AWAITING_PAYMENT, PayEvent.PAYMENT_SUCCEEDED): PayStatus.PAID,
    (PayStatus.AWAITING_PAYMENT, PayEvent.CLOSED): PayStatus.CLOSED,
    (PayStatus.PREPAYING, PayEvent.CLOSED): PayStatus.CLOSED,
}

# Statuses after which nothing more happens to the pay order.
PAY_TERMINAL = frozenset({PayStatus.PAID, PayStatus.PREPAY_FAILED, PayStatus.CLOSED})
# Statuses in which the token has no credential yet and a long-poll should wait.
PAY_WAITING = frozenset({PayStatus.PENDING, PayStatus.PREPAYING})


class TradeStatus(enum.StrEnum):
    OPEN = "open"
    PAID = "paid"
    FAILED = "failed"
    CLOSED = "closed"


class TradeEvent(enum.StrEnum):
    PAID = "paid"
    ATTEMPT_FAILED = "attempt_failed"
    CLOSED = "closed"


TRADE_TRANSITIONS: Mapping[tuple[TradeStatus, TradeEvent], TradeStatus] = {
    (TradeStatus.OPEN, TradeEvent.PAID): TradeStatus.PAID,
    (TradeStatus.OPEN, TradeEvent.ATTEMPT_FAILED): TradeStatus.FAILED,
    (TradeStatus.OPEN, TradeEvent.CLOSED): TradeStatus.CLOSED,
}

# Which trade event follows a pay order reaching a status (one attempt per trade for now).
TRADE_EVENT_FOR_PAY: Mapping[PayStatus, TradeEvent] = {
    PayStatus.PAID: TradeEvent.PAID,
    PayStatus.PREPAY_FAILED: TradeEvent.ATTEMPT_FAILED,
    PayStatus.CLOSED: TradeEvent.CLOSED,
}


class RefundStatus(enum.StrEnum):
    PENDING = "pending"  # written by the merchant API; the refund job is owed
    SUBMITTING = "submitting"  # a worker is (or was) sending it: the channel may have it
    PROCESSING = "processing"  # the channel accepted it; the money has not moved yet
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the channel refused or gave up: no money moved, the amount is free again


class RefundEvent(enum.StrEnum):
    SUBMIT = "submit"
    ACCEPTED = "accepted"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


REFUND_TRANSITIONS: Mapping[tuple[RefundStatus, RefundEvent], RefundStatus] = {
    (RefundStatus.PENDING, RefundEvent.SUBMIT): RefundStatus.SUBMITTING,
    (RefundStatus.SUBMITTING, RefundEvent.ACCEPTED): RefundStatus.PROCESSING,
    # Some channels refund at once (Alipay, Stripe cards); a query or callback may also
    # report the end before the submit's own answer is read.
    (RefundStatus.SUBMITTING, RefundEvent.SUCCEEDED): RefundStatus.SUCCEEDED,
    (RefundStatus.PROCESSING, RefundEvent.SUCCEEDED): RefundStatus.SUCCEEDED,
    (RefundStatus.SUBMITTING, RefundEvent.FAILED): RefundStatus.FAILED,
    (RefundStatus.PROCESSING, RefundEvent.FAILED): RefundStatus.FAILED,
}

REFUND_TERMINAL = frozenset({RefundStatus.SUCCEEDED, RefundStatus.FAILED})


class IllegalTransition(Exception):
    def __init__(self, machine: str, state: str, event: str) -> None:
        super().__init__(f"{machine}: no transition from {state!r} on {event!r}")
        self.state = state
        self.event = event


def next_pay_status(status: PayStatus, event: PayEvent) -> PayStatus:
    try:
        return PAY_TRANSITIONS[(status, event)]
    except KeyError:
        raise IllegalTransition("pay_order", status, event) from None


def next_trade_status(status: TradeStatus, event: TradeEvent) -> TradeStatus:
    try:
        return TRADE_TRANSITIONS[(status, event)]
    except KeyError:
        raise IllegalTransition("trade_order", status, event) from None


def next_refund_status(status: RefundStatus, event: RefundEvent) -> RefundStatus:
    try:
        return REFUND_TRANSITIONS[(status, event)]
    except KeyError:
        raise IllegalTransition("refund_order", status, event) from None
