"""The matching of one statement day against payfront's orders, as a function of data: which
lines match, and every difference with what may be done about it. ``core.reconcile.service``
loads the data and records the outcome."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.reconcile.statements import PAYMENT, REFUND, LineRecord
from core.states import PAY_RECEIVED, PayStatus, RefundStatus


class Kind(enum.StrEnum):
    LONG = "long"  # at the channel, missing here
    SHORT = "short"  # here, missing at the channel
    AMOUNT_MISMATCH = "amount_mismatch"
    STATUS_MISMATCH = "status_mismatch"
    FEE_MISMATCH = "fee_mismatch"


KINDS: tuple[str, ...] = ("matched", *(kind.value for kind in Kind))


class Fix(enum.StrEnum):
    """What payfront may do by itself about a status difference: ask the channel and apply
    its answer through the paths a callback or the check jobs take."""

    QUERY_PAYMENT = "query_payment"  # paid there, awaiting (or unknown) here
    QUERY_REFUND = "query_refund"  # succeeded there, still in flight here


# A channel's refund state on its statement, normalised. "moved": the money left, the final
# state is not on the statement (Stripe books a refund when it is made, pending or not).
_REFUND_STATE: Mapping[str, Mapping[str, str]] = {
    "wechatpay": {
        "SUCCESS": "succeeded",
        "PROCESSING": "processing",
        "ABNORMAL": "failed",
        "CLOSED": "failed",
    },
    "alipay": {"退款": "succeeded"},  # Alipay bills only refunds that finished
    "stripe": {"refund": "moved", "payment_refund": "moved"},
}
# Our refund states each channel state agrees with.
_AGREES: Mapping[str, frozenset[str]] = {
    "succeeded": frozenset({RefundStatus.SUCCEEDED}),
    "processing": frozenset({RefundStatus.SUBMITTING, RefundStatus.PROCESSING}),
    "moved": frozenset({RefundStatus.SUBMITTING, RefundStatus.PROCESSING, RefundStatus.SUCCEEDED}),
    "failed": frozenset({RefundStatus.FAILED}),
}
# A refund's returned fee may differ by this much: the channel rounds each refund's share on
# its own, payfront rounds the running total so the shares add up to the whole fee.
REFUND_FEE_TOLERANCE_MINOR = 1
_PAY_FIXABLE = frozenset({PayStatus.AWAITING_PAYMENT, PayStatus.UNKNOWN})
_REFUND_FIXABLE = frozenset({RefundStatus.SUBMITTING, RefundStatus.PROCESSING})


def channel_refund_state(channel: str, channel_state: str) -> str:
    return _REFUND_STATE.get(channel, {}).get(channel_state, channel_state.lower())


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    pay_no: str
    status: str
    amount_minor: int
    paid_minor: int | None
    currency: str
    paid_at: datetime | None
    expected_fee_minor: int

    @property
    def received_minor(self) -> int:
        return self.paid_minor if self.paid_minor is not None else self.amount_minor


@dataclass(frozen=True, slots=True)
class RefundRecord:
    refund_no: str
    pay_no: str
    status: str
    amount_minor: int
    currency: str
    succeeded_at: datetime | None
    expected_fee_minor: int


@dataclass(frozen=True, slots=True)
class Finding:
    kind: Kind
    object: str  # "payment" | "refund"
    reference: str
    pay_no: str | None = None
    refund_no: str | None = None
    currency: str | None = None
    payfront_amount_minor: int | None = None
    channel_amount_minor: int | None = None
    payfront_status: str | None = None
    channel_status: str | None = None
    expected_fee_minor: int | None = None
    channel_fee_minor: int | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    fix: Fix | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind.value, self.object, self.reference)


@dataclass
class DayMatch:
    """What one day's matching found: lines without a difference, and the differences."""

    matched: int = 0
    findings: dict[tuple[str, str, str], Finding] = field(default_factory=dict)
    # {currency: {"channel_payments_minor": …, …}}
    totals: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, finding: Finding) -> None:
        self.findings.setdefault(finding.key, finding)

    def count(self, key: str, currency: str, amount: int) -> None:
        per = self.totals.setdefault(currency, {})
        per[key] = per.get(key, 0) + amount

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(KINDS, 0)
        counts["matched"] = self.matched
        for finding in self.findings.values():
            counts[finding.kind.value] += 1
        return counts


@dataclass(frozen=True, slots=True)
class OurDay:
    """payfront's side of the day: the orders the lines name (whatever their day), the
    orders the channel should have on this day, and which of those are on another day's
    statement."""

    payments: Mapping[str, PaymentRecord]
    refunds: Mapping[str, RefundRecord]
    expected_payments: Sequence[PaymentRecord]
    expected_refunds: Sequence[RefundRecord]
    billed_elsewhere: frozenset[tuple[str, str]] = frozenset()


def match_day(
    channel: str,
    lines: Sequence[LineRecord],
    ours: OurDay,
    progress: Callable[[int], None] | None = None,
) -> DayMatch:
    day = DayMatch()
    billed: set[tuple[str, str]] = set()
    for done, line in enumerate(lines, start=1):
        if line.kind == PAYMENT:
            billed.add((PAYMENT, line.out_trade_no))
            _payment_line(day, line, ours.payments.get(line.out_trade_no))
        else:
            billed.add((REFUND, line.out_refund_no or ""))
            refund = ours.refunds.get(line.out_refund_no or "")
            _refund_line(day, channel, line, refund)
        if progress is not None:
            progress(done)
    for payment in ours.expected_payments:
        day.count("payfront_payments_minor", payment.currency, payment.received_minor)
        seen = (PAYMENT, payment.pay_no)
        if seen not in billed and seen not in ours.billed_elsewhere:
            day.add(
                Finding(
                    Kind.SHORT,
                    PAYMENT,
                    payment.pay_no,
                    pay_no=payment.pay_no,
                    currency=payment.currency,
                    payfront_amount_minor=payment.received_minor,
                    payfront_status=payment.status,
                    detail={"paid_at": _iso(payment.paid_at)},
                )
            )
    for refund in ours.expected_refunds:
        day.count("payfront_refunds_minor", refund.currency, refund.amount_minor)
        seen = (REFUND, refund.refund_no)
        if seen not in billed and seen not in ours.billed_elsewhere:
            day.add(
                Finding(
                    Kind.SHORT,
                    REFUND,
                    refund.refund_no,
                    pay_no=refund.pay_no,
                    refund_no=refund.refund_no,
                    currency=refund.currency,
                    payfront_amount_minor=refund.amount_minor,
                    payfront_status=refund.status,
                    detail={"succeeded_at": _iso(refund.succeeded_at)},
                )
            )
    return day


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _line_detail(line: LineRecord) -> dict[str, Any]:
    return {
        "line_no": line.line_no,
        "occurred_at": line.occurred_at.isoformat(),
        "channel_state": line.channel_state,
        "channel_trade_no": line.channel_trade_no,
        "channel_refund_no": line.channel_refund_no,
        "out_trade_no": line.out_trade_no,
        "out_refund_no": line.out_refund_no,
    }


def _payment_line(day: DayMatch, line: LineRecord, pay: PaymentRecord | None) -> None:
    day.count("channel_payments_minor", line.currency, line.amount_minor)
    day.count("channel_fees_minor", line.currency, line.fee_minor)
    day.count("channel_payments", line.currency, 1)
    reference = line.out_trade_no or line.channel_trade_no or f"line:{line.line_no}"
    common: dict[str, Any] = {
        "channel_amount_minor": line.amount_minor,
        "channel_status": line.channel_state,
        "channel_fee_minor": line.fee_minor,
        "detail": _line_detail(line),
    }
    if pay is None:
        day.add(Finding(Kind.LONG, PAYMENT, reference, currency=line.currency, **common))
        return
    ours: dict[str, Any] = {
        "pay_no": pay.pay_no,
        "currency": pay.currency,
        "payfront_amount_minor": pay.received_minor,
        "payfront_status": pay.status,
        "expected_fee_minor": pay.expected_fee_minor,
    }
    found = False
    if line.currency != pay.currency or line.amount_minor not in (
        pay.amount_minor,
        pay.received_minor,
    ):
        day.add(Finding(Kind.AMOUNT_MISMATCH, PAYMENT, pay.pay_no, **ours, **common))
        found = True
    if pay.status not in PAY_RECEIVED:
        fix = Fix.QUERY_PAYMENT if pay.status in _PAY_FIXABLE else None
        day.add(Finding(Kind.STATUS_MISMATCH, PAYMENT, pay.pay_no, **ours, **common, fix=fix))
        found = True
    if line.currency == pay.currency and line.fee_minor != pay.expected_fee_minor:
        day.add(Finding(Kind.FEE_MISMATCH, PAYMENT, pay.pay_no, **ours, **common))
        found = True
    if not found:
        day.matched += 1


def _refund_line(
    day: DayMatch, channel: str, line: LineRecord, refund: RefundRecord | None
) -> None:
    day.count("channel_refunds_minor", line.currency, line.amount_minor)
    day.count("channel_fees_minor", line.currency, -line.fee_minor)
    day.count("channel_refunds", line.currency, 1)
    reference = line.out_refund_no or line.channel_refund_no or f"line:{line.line_no}"
    state = channel_refund_state(channel, line.channel_state)
    common: dict[str, Any] = {
        "channel_amount_minor": line.amount_minor,
        "channel_status": state,
        "channel_fee_minor": line.fee_minor,
        "detail": _line_detail(line),
    }
    if refund is None:
        day.add(
            Finding(
                Kind.LONG,
                REFUND,
                reference,
                currency=line.currency,
                pay_no=None,
                **common,
            )
        )
        return
    ours: dict[str, Any] = {
        "pay_no": refund.pay_no,
        "refund_no": refund.refund_no,
        "currency": refund.currency,
        "payfront_amount_minor": refund.amount_minor,
        "payfront_status": refund.status,
        "expected_fee_minor": refund.expected_fee_minor,
    }
    found = False
    if line.currency != refund.currency or line.amount_minor != refund.amount_minor:
        day.add(Finding(Kind.AMOUNT_MISMATCH, REFUND, refund.refund_no, **ours, **common))
        found = True
    if refund.status not in _AGREES.get(state, frozenset()):
        fixable = state == "succeeded" and refund.status in _REFUND_FIXABLE
        fix = Fix.QUERY_REFUND if fixable else None
        day.add(Finding(Kind.STATUS_MISMATCH, REFUND, refund.refund_no, **ours, **common, fix=fix))
        found = True
    if abs(line.fee_minor - refund.expected_fee_minor) > REFUND_FEE_TOLERANCE_MINOR:
        day.add(Finding(Kind.FEE_MISMATCH, REFUND, refund.refund_no, **ours, **common))
        found = True
    if not found:
        day.matched += 1
