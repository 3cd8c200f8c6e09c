"""core/reconcile/matching.py: one statement day against payfront's orders, as data."""

from __future__ import annotations

from datetime import UTC, datetime

from core.reconcile.matching import (
    Fix,
    Kind,
    OurDay,
    PaymentRecord,
    RefundRecord,
    channel_refund_state,
    match_day,
)
from core.reconcile.statements import LineRecord

AT = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)


def pay_line(
    number: str, amount: int = 1000, fee: int = 6, channel_trade_no: str | None = None
) -> LineRecord:
    return LineRecord(
        "payment", number, amount, "CNY", fee, AT, "SUCCESS", channel_trade_no=channel_trade_no
    )


def refund_line(number: str, refund_no: str, state: str = "SUCCESS", fee: int = 6) -> LineRecord:
    return LineRecord("refund", number, 1000, "CNY", fee, AT, state, out_refund_no=refund_no)


def payment(pay_no: str, status: str = "paid", fee: int = 6) -> PaymentRecord:
    return PaymentRecord(pay_no, status, 1000, None, "CNY", AT, fee)


def refund(refund_no: str, status: str = "succeeded", fee: int = 6) -> RefundRecord:
    return RefundRecord(refund_no, "p1", status, 1000, "CNY", AT, fee)


def ours(*records: PaymentRecord | RefundRecord, expected: bool = True) -> OurDay:
    payments = {r.pay_no: r for r in records if isinstance(r, PaymentRecord)}
    refunds = {r.refund_no: r for r in records if isinstance(r, RefundRecord)}
    return OurDay(
        payments,
        refunds,
        list(payments.values()) if expected else [],
        [r for r in refunds.values() if r.status == "succeeded"] if expected else [],
    )


def test_agreeing_lines_match_and_totals_add_up() -> None:
    day = match_day(
        "wechatpay", [pay_line("p1"), refund_line("p1", "r1")], ours(payment("p1"), refund("r1"))
    )
    assert day.matched == 2 and not day.findings
    assert day.totals["CNY"]["channel_payments_minor"] == 1000
    assert day.totals["CNY"]["channel_fees_minor"] == 0  # the refund gave the fee back


def test_paid_there_awaiting_here_is_a_fixable_status_difference() -> None:
    day = match_day("wechatpay", [pay_line("p1")], ours(payment("p1", "awaiting_payment")))
    [finding] = day.findings.values()
    assert (finding.kind, finding.fix) == (Kind.STATUS_MISMATCH, Fix.QUERY_PAYMENT)
    closed = match_day("wechatpay", [pay_line("p1")], ours(payment("p1", "closed")))
    [finding] = closed.findings.values()
    assert (finding.kind, finding.fix) == (Kind.STATUS_MISMATCH, None)  # a person decides


def test_refund_states_per_channel() -> None:
    assert channel_refund_state("wechatpay", "PROCESSING") == "processing"
    assert channel_refund_state("alipay", "退款") == "succeeded"
    assert channel_refund_state("stripe", "refund") == "moved"
    fixable = match_day("wechatpay", [refund_line("p1", "r1")], ours(refund("r1", "processing")))
    assert [f.fix for f in fixable.findings.values()] == [Fix.QUERY_REFUND]
    # Stripe books a refund when it is made: processing here is no difference.
    moved = match_day(
        "stripe",
        [refund_line("p1", "r1", "refund", fee=0)],
        ours(refund("r1", "processing", fee=0)),
    )
    assert moved.matched == 1
    failed_there = match_day("wechatpay", [refund_line("p1", "r1", "ABNORMAL")], ours(refund("r1")))
    [finding] = failed_there.findings.values()
    assert (finding.kind, finding.fix, finding.channel_status) == (
        Kind.STATUS_MISMATCH,
        None,
        "failed",
    )


def test_long_short_amount_and_fee() -> None:
    day = match_day(
        "wechatpay",
        [pay_line("p1", amount=999), pay_line("p2", fee=9), pay_line("", channel_trade_no="42")],
        ours(payment("p1"), payment("p2"), payment("p3")),
    )
    kinds = sorted((f.kind.value, f.reference) for f in day.findings.values())
    assert kinds == [
        ("amount_mismatch", "p1"),
        ("fee_mismatch", "p2"),
        ("long", "42"),
        ("short", "p3"),
    ]
    assert day.counts()["matched"] == 0


def test_a_refund_fee_may_differ_by_one_minor_unit() -> None:
    day = match_day("wechatpay", [refund_line("p1", "r1", fee=5)], ours(refund("r1", fee=6)))
    assert day.matched == 1
    off = match_day("wechatpay", [refund_line("p1", "r1", fee=4)], ours(refund("r1", fee=6)))
    assert [f.kind for f in off.findings.values()] == [Kind.FEE_MISMATCH]


def test_on_another_days_statement_is_not_short() -> None:
    here = ours(refund("r1"))
    elsewhere = OurDay(
        here.payments, here.refunds, [], list(here.refunds.values()), frozenset({("refund", "r1")})
    )
    assert not match_day("wechatpay", [], elsewhere).findings
    [short] = match_day("wechatpay", [], here).findings.values()
    assert short.kind is Kind.SHORT
