"""Channel fees in exact integer arithmetic: basis points rounded half up to the minor unit
(as WeChat Pay and Alipay round their fees to the fen), plus a fixed amount, never more than
the payment; and the share of the fee a channel gives back on a refund."""

from __future__ import annotations

from dataclasses import dataclass

# Whether the channel returns its fee, in proportion, when a payment is refunded. WeChat Pay
# and Alipay do; Stripe keeps its fee. A channel not listed keeps it (the cautious choice:
# the merchant is never credited with a fee that was not returned).
REFUND_RETURNS_FEE: dict[str, bool] = {"wechatpay": True, "alipay": True, "stripe": False}

BPS_DENOMINATOR = 10_000


@dataclass(frozen=True, slots=True)
class FeeRate:
    """A channel account's rate: ``bps`` basis points of the amount plus ``fixed_minor``."""

    bps: int = 0
    fixed_minor: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.bps <= BPS_DENOMINATOR:
            raise ValueError(f"fee rate must be 0..{BPS_DENOMINATOR} basis points: {self.bps}")
        if self.fixed_minor < 0:
            raise ValueError(f"fixed fee must not be negative: {self.fixed_minor}")


def divide_half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half up, for non-negative integers."""
    if numerator < 0 or denominator <= 0:
        raise ValueError("divide_half_up takes a non-negative numerator and positive denominator")
    return (2 * numerator + denominator) // (2 * denominator)


def payment_fee(amount_minor: int, rate: FeeRate) -> int:
    """The channel's fee on a payment of ``amount_minor``: at most the amount itself."""
    if amount_minor < 0:
        raise ValueError("amount must not be negative")
    fee = divide_half_up(amount_minor * rate.bps, BPS_DENOMINATOR) + rate.fixed_minor
    return min(fee, amount_minor)


def refund_fee_returned(
    channel: str, *, paid_minor: int, fee_minor: int, refunded_before_minor: int, refund_minor: int
) -> int:
    """The part of the payment's fee the channel gives back on this refund.

    Proportional, computed on the running total so that the parts of several partial refunds
    add up to exactly the whole fee once the payment is fully refunded (each part is the
    rounded cumulative share minus the rounded share before it).
    """
    if not REFUND_RETURNS_FEE.get(channel, False) or fee_minor == 0 or paid_minor == 0:
        return 0
    if refund_minor <= 0 or refunded_before_minor < 0:
        raise ValueError("a refund is a positive amount after a non-negative one")
    if refunded_before_minor + refund_minor > paid_minor:
        raise ValueError("refunds add up to more than was paid")
    after = divide_half_up(fee_minor * (refunded_before_minor + refund_minor), paid_minor)
    before = divide_half_up(fee_minor * refunded_before_minor, paid_minor)
    return after - before
