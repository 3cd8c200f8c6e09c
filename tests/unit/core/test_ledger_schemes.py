"""core.ledger.fees and core.ledger.entries: fee arithmetic, posting schemes, balancing."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import pytest

from core.ledger.accounts import (
    AccountKind,
    Side,
    channel_clearing,
    channel_fees,
    merchant_pending,
)
from core.ledger.entries import (
    EntryPlan,
    Line,
    Role,
    UnbalancedEntry,
    payment_entry,
    refund_entry,
)
from core.ledger.fees import FeeRate, divide_half_up, payment_fee, refund_fee_returned

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def _balances(plan: EntryPlan) -> dict[AccountKind, int]:
    found: dict[AccountKind, int] = defaultdict(int)
    for line in plan.lines:
        found[line.account.kind] += line.delta_minor
    return dict(found)


# Fees ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "bps", "fixed", "fee"),
    [
        (10_000, 60, 0, 60),  # 0.6 % of 100.00 = 0.60
        (100, 60, 0, 1),  # 0.60 fen rounds up to 1
        (83, 60, 0, 0),  # 0.498 fen rounds down
        (250, 60, 0, 2),  # 1.5 fen: half rounds up
        (750, 38, 0, 3),  # 2.85 fen rounds up (0.38 %)
        (1, 10_000, 0, 1),
        (1_000, 290, 30, 59),  # Stripe-like 2.9 % + 30: 29 + 30
        (20, 290, 30, 20),  # never more than the payment
        (0, 60, 0, 0),
    ],
)
def test_payment_fee_rounds_half_up_to_the_minor_unit(
    amount: int, bps: int, fixed: int, fee: int
) -> None:
    assert payment_fee(amount, FeeRate(bps=bps, fixed_minor=fixed)) == fee


def test_divide_half_up_is_exact_on_large_integers() -> None:
    assert divide_half_up(10**13 * 60 + 5_000, 10_000) == 6 * 10**10 + 1
    assert divide_half_up(10**13 * 60 + 4_999, 10_000) == 6 * 10**10
    with pytest.raises(ValueError):
        divide_half_up(-1, 2)


def test_fee_rate_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        FeeRate(bps=-1)
    with pytest.raises(ValueError):
        FeeRate(bps=10_001)
    with pytest.raises(ValueError):
        FeeRate(fixed_minor=-1)


def test_partial_refunds_return_exactly_the_whole_fee_in_the_end() -> None:
    paid, fee = 1_001, 7  # 0.6 % of 10.01 rounds to 6; take 7 to force uneven parts
    parts, before = [], 0
    for refund in (333, 333, 335):
        parts.append(
            refund_fee_returned(
                "wechatpay",
                paid_minor=paid,
                fee_minor=fee,
                refunded_before_minor=before,
                refund_minor=refund,
            )
        )
        before += refund
    assert sum(parts) == fee
    assert parts == [2, 3, 2]


def test_stripe_keeps_its_fee_and_unknown_channels_are_treated_alike() -> None:
    for channel in ("stripe", "someday"):
        returned = refund_fee_returned(
            channel, paid_minor=1_000, fee_minor=59, refunded_before_minor=0, refund_minor=1_000
        )
        assert returned == 0
    assert (
        refund_fee_returned(
            "alipay", paid_minor=1_000, fee_minor=6, refunded_before_minor=0, refund_minor=1_000
        )
        == 6
    )


def test_refunds_over_the_payment_are_refused() -> None:
    with pytest.raises(ValueError):
        refund_fee_returned(
            "wechatpay", paid_minor=100, fee_minor=1, refunded_before_minor=60, refund_minor=41
        )


# Posting schemes ------------------------------------------------------------------------------


def _payment(amount: int = 10_000, fee: int = 60) -> EntryPlan:
    return payment_entry(
        event_id="evt_1",
        merchant_id="mch_1",
        pay_no="pay_1",
        channel_account_id="wx_1",
        currency="CNY",
        livemode=False,
        amount_minor=amount,
        fee_minor=fee,
        effective_at=NOW,
    )


def test_payment_entry_charges_the_fee_to_the_merchant() -> None:
    plan = _payment()
    plan.validate()
    rows = {(line.account.kind, line.side, line.role): line.amount_minor for line in plan.lines}
    assert rows == {
        (AccountKind.CHANNEL_CLEARING, Side.DEBIT, Role.NET): 9_940,
        (AccountKind.CHANNEL_FEES, Side.DEBIT, Role.FEE): 60,
        (AccountKind.MERCHANT_PENDING, Side.CREDIT, Role.GROSS): 10_000,
        (AccountKind.MERCHANT_PENDING, Side.DEBIT, Role.FEE): 60,
        (AccountKind.CHANNEL_FEES, Side.CREDIT, Role.FEE): 60,
    }
    assert plan.totals() == {"CNY": (10_060, 10_060)}
    # The merchant is owed the net; the channel owes us the same; fees pass through.
    assert _balances(plan) == {
        AccountKind.CHANNEL_CLEARING: 9_940,
        AccountKind.CHANNEL_FEES: 0,
        AccountKind.MERCHANT_PENDING: 9_940,
    }


def test_payment_without_fee_has_no_zero_lines() -> None:
    plan = _payment(fee=0)
    plan.validate()
    assert len(plan.lines) == 2
    assert all(line.amount_minor > 0 for line in plan.lines)


def test_refund_entry_reverses_the_payment_and_returns_the_fee() -> None:
    plan = refund_entry(
        event_id="evt_2",
        merchant_id="mch_1",
        pay_no="pay_1",
        refund_no="ref_1",
        channel_account_id="wx_1",
        currency="CNY",
        livemode=False,
        refund_minor=10_000,
        fee_returned_minor=60,
        effective_at=NOW,
    )
    plan.validate()
    assert _balances(plan) == {
        AccountKind.CHANNEL_CLEARING: -9_940,
        AccountKind.CHANNEL_FEES: 0,
        AccountKind.MERCHANT_PENDING: -9_940,
    }
    # A full refund with the whole fee returned leaves every account where it started.
    payment = _balances(_payment())
    refund = _balances(plan)
    assert {kind: payment[kind] + refund[kind] for kind in payment} == dict.fromkeys(payment, 0)


def test_refund_without_fee_returned_costs_the_merchant_the_fee() -> None:
    plan = refund_entry(
        event_id="evt_3",
        merchant_id="mch_1",
        pay_no="pay_1",
        refund_no="ref_1",
        channel_account_id="st_1",
        currency="USD",
        livemode=True,
        refund_minor=1_000,
        fee_returned_minor=0,
        effective_at=NOW,
    )
    plan.validate()
    assert _balances(plan) == {
        AccountKind.MERCHANT_PENDING: -1_000,
        AccountKind.CHANNEL_CLEARING: -1_000,
    }


# The balancing rule ---------------------------------------------------------------------------


def _plan(*lines: Line, currency: str = "CNY") -> EntryPlan:
    return EntryPlan(
        source_event_id="evt_x",
        event_type="payment.succeeded",
        merchant_id="mch_1",
        pay_no="pay_1",
        refund_no=None,
        currency=currency,
        livemode=False,
        effective_at=NOW,
        lines=lines,
    )


def test_an_unbalanced_entry_is_refused() -> None:
    pending = merchant_pending("mch_1", "CNY", False)
    clearing = channel_clearing("wx_1", "CNY", False)
    with pytest.raises(UnbalancedEntry, match="debits 100 != credits 99"):
        _plan(
            Line(clearing, Side.DEBIT, 100, Role.NET), Line(pending, Side.CREDIT, 99, Role.GROSS)
        ).validate()


def test_balance_is_per_currency() -> None:
    cny = merchant_pending("mch_1", "CNY", False)
    usd = channel_clearing("wx_1", "USD", False)
    plan = _plan(Line(usd, Side.DEBIT, 100, Role.NET), Line(cny, Side.CREDIT, 100, Role.GROSS))
    with pytest.raises(UnbalancedEntry):
        plan.validate()


def test_lines_must_be_positive_and_present() -> None:
    fees = channel_fees("wx_1", "CNY", False)
    with pytest.raises(UnbalancedEntry):
        _plan().validate()
    with pytest.raises(UnbalancedEntry):
        _plan(Line(fees, Side.DEBIT, 0, Role.FEE), Line(fees, Side.CREDIT, 0, Role.FEE)).validate()
    with pytest.raises(UnbalancedEntry):
        _plan(
            Line(fees, Side.DEBIT, -5, Role.FEE), Line(fees, Side.CREDIT, -5, Role.FEE)
        ).validate()


def test_a_line_in_the_other_mode_is_refused() -> None:
    live = merchant_pending("mch_1", "CNY", True)
    test = channel_clearing("wx_1", "CNY", False)
    plan = _plan(Line(test, Side.DEBIT, 100, Role.NET), Line(live, Side.CREDIT, 100, Role.GROSS))
    with pytest.raises(UnbalancedEntry, match="mode"):
        plan.validate()


def test_account_ids_and_sides() -> None:
    assert merchant_pending("mch_1", "CNY", False).id == "merchant_pending:mch_1:CNY:test"
    assert channel_clearing("wx_1", "USD", True).id == "channel_clearing:wx_1:USD:live"
    assert merchant_pending("mch_1", "CNY", False).normal_side is Side.CREDIT
    assert channel_clearing("wx_1", "CNY", False).normal_side is Side.DEBIT
    assert channel_fees("wx_1", "CNY", False).merchant_id is None
    assert merchant_pending("mch_1", "CNY", False).merchant_id == "mch_1"
