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
    # The channel's answer to the create was lost and retries ran out: the order may exist
    # there. A check job asks the channel until it knows; a person may settle it by API.
    UNKNOWN = "unknown"
    # The shopper paid less than asked (paid_minor < amount_minor): kept or refunded per the
    # merchant's policy; nothing more happens to this attempt.
    PARTIALLY_PAID = "partially_paid"


class PayEvent(enum.StrEnum):
    START_PREPAY = "start_prepay"
    CREDENTIAL_READY = "credential_ready"
    PREPAY_REJECTED = "prepay_rejected"
    PAYMENT_SUCCEEDED = "payment_succeeded"
    CLOSED = "closed"
    OUTCOME_LOST = "outcome_lost"
    PARTIAL_PAYMENT = "partial_payment"
    # Money arrived for an order closed here (the channel paid it after our close).
    LATE_PAYMENT = "late_payment"
    # A newer attempt of the same trade replaces this one (closed at its channel first).
    SUPERSEDED = "superseded"


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
    (PayStatus.PREPAYING, PayEvent.OUTCOME_LOST): PayStatus.UNKNOWN,
    # Settled by the check job's query, or by a person through the resolution API.
    (PayStatus.UNKNOWN, PayEvent.PAYMENT_SUCCEEDED): PayStatus.PAID,
    (PayStatus.UNKNOWN, PayEvent.CLOSED): PayStatus.CLOSED,
    (PayStatus.UNKNOWN, PayEvent.PREPAY_REJECTED): PayStatus.PREPAY_FAILED,
    (PayStatus.PREPAYING, PayEvent.PARTIAL_PAYMENT): PayStatus.PARTIALLY_PAID,
    (PayStatus.AWAITING_PAYMENT, PayEvent.PARTIAL_PAYMENT): PayStatus.PARTIALLY_PAID,
    (PayStatus.UNKNOWN, PayEvent.PARTIAL_PAYMENT): PayStatus.PARTIALLY_PAID,
    (PayStatus.CLOSED, PayEvent.LATE_PAYMENT): PayStatus.PAID,
    (PayStatus.PENDING, PayEvent.SUPERSEDED): PayStatus.CLOSED,
    (PayStatus.PREPAYING, PayEvent.SUPERSEDED): PayStatus.CLOSED,
    (PayStatus.AWAITING_PAYMENT, PayEvent.SUPERSEDED): PayStatus.CLOSED,
    (PayStatus.UNKNOWN, PayEvent.SUPERSEDED): PayStatus.CLOSED,
}

# Statuses after which nothing more happens to the pay order (a closed one can still be
# paid late at its channel: money the table must be able to record).
PAY_TERMINAL = frozenset({PayStatus.PAID, PayStatus.PREPAY_FAILED, PayStatus.PARTIALLY_PAID})
# Statuses in which money was received for the pay order.
PAY_RECEIVED = frozenset({PayStatus.PAID, PayStatus.PARTIALLY_PAID})
# Statuses in which the token has no credential yet and a long-poll should wait.
PAY_WAITING = frozenset({PayStatus.PENDING, PayStatus.PREPAYING})


class TradeStatus(enum.StrEnum):
    OPEN = "open"
    PAID = "paid"
    FAILED = "failed"  # the latest attempt failed; a new attempt reopens the trade
    CLOSED = "closed"
    PARTIALLY_PAID = "partially_paid"  # paid in part, kept by the merchant's policy


class TradeEvent(enum.StrEnum):
    PAID = "paid"
    ATTEMPT_FAILED = "attempt_failed"
    CLOSED = "closed"
    PARTIALLY_PAID = "partially_paid"
    NEW_ATTEMPT = "new_attempt"


TRADE_TRANSITIONS: Mapping[tuple[TradeStatus, TradeEvent], TradeStatus] = {
    (TradeStatus.OPEN, TradeEvent.PAID): TradeStatus.PAID,
    (TradeStatus.OPEN, TradeEvent.ATTEMPT_FAILED): TradeStatus.FAILED,
    (TradeStatus.OPEN, TradeEvent.CLOSED): TradeStatus.CLOSED,
    (TradeStatus.OPEN, TradeEvent.PARTIALLY_PAID): TradeStatus.PARTIALLY_PAID,
    (TradeStatus.OPEN, TradeEvent.NEW_ATTEMPT): TradeStatus.OPEN,
    (TradeStatus.FAILED, TradeEvent.NEW_ATTEMPT): TradeStatus.OPEN,
    # An older attempt still open when the latest failed can still be paid.
    (TradeStatus.FAILED, TradeEvent.PAID): TradeStatus.PAID,
}

# Which trade event follows a pay order's move. Only the trade's current attempt moves it,
# except a payment, which any attempt's money decides (see core.pay).
TRADE_EVENT_FOR_PAY: Mapping[PayEvent, TradeEvent] = {
    PayEvent.PAYMENT_SUCCEEDED: TradeEvent.PAID,
    PayEvent.PREPAY_REJECTED: TradeEvent.ATTEMPT_FAILED,
    PayEvent.CLOSED: TradeEvent.CLOSED,
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


class WithdrawalStatus(enum.StrEnum):
    PENDING = "pending"  # written, the wallet debited; the withdraw job is owed
    SUBMITTING = "submitting"  # a worker is (or was) sending the payout: the channel may have it
    PROCESSING = "processing"  # the channel accepted it; the payee may have to confirm
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # refused or given up at the channel: the wallet is credited back


class WithdrawalEvent(enum.StrEnum):
    SUBMIT = "submit"
    ACCEPTED = "accepted"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


WITHDRAWAL_TRANSITIONS: Mapping[tuple[WithdrawalStatus, WithdrawalEvent], WithdrawalStatus] = {
    (WithdrawalStatus.PENDING, WithdrawalEvent.SUBMIT): WithdrawalStatus.SUBMITTING,
    (WithdrawalStatus.SUBMITTING, WithdrawalEvent.ACCEPTED): WithdrawalStatus.PROCESSING,
    (WithdrawalStatus.SUBMITTING, WithdrawalEvent.SUCCEEDED): WithdrawalStatus.SUCCEEDED,
    (WithdrawalStatus.PROCESSING, WithdrawalEvent.SUCCEEDED): WithdrawalStatus.SUCCEEDED,
    (WithdrawalStatus.SUBMITTING, WithdrawalEvent.FAILED): WithdrawalStatus.FAILED,
    (WithdrawalStatus.PROCESSING, WithdrawalEvent.FAILED): WithdrawalStatus.FAILED,
}

WITHDRAWAL_TERMINAL = frozenset({WithdrawalStatus.SUCCEEDED, WithdrawalStatus.FAILED})


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


def next_withdrawal_status(status: WithdrawalStatus, event: WithdrawalEvent) -> WithdrawalStatus:
    try:
        return WITHDRAWAL_TRANSITIONS[(status, event)]
    except KeyError:
        raise IllegalTransition("withdrawal", status, event) from None
