"""Posting schemes as data: the entry each money-moving event gets, and the balancing rule
no entry escapes (per currency, debits equal credits). Pure: no database."""

from __future__ import annotations

import enum
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from core.ledger.accounts import (
    AccountRef,
    Side,
    channel_clearing,
    channel_fees,
    merchant_available,
    merchant_pending,
    wallet,
)

PAYMENT_SUCCEEDED = "payment.succeeded"
REFUND_SUCCEEDED = "refund.succeeded"
RECHARGE_SUCCEEDED = "recharge.succeeded"
TRANSFER_SUCCEEDED = "transfer.succeeded"
WITHDRAWAL_SUCCEEDED = "withdrawal.succeeded"
SETTLEMENT = "settlement"


class Role(enum.StrEnum):
    """What a line is for; the settlement view adds merchant lines up by role."""

    GROSS = "gross"  # the whole amount the shopper paid
    FEE = "fee"  # the channel's fee, withheld and charged on to the merchant
    NET = "net"  # what the channel moves: gross less fee, or refund less fee returned
    REFUND = "refund"  # the amount given back to the shopper
    FEE_REFUND = "fee_refund"  # the part of the fee the channel returns on a refund
    SETTLEMENT = "settlement"  # a day's net pending funds moved to available (or back)


class UnbalancedEntry(ValueError):
    """An entry whose debits and credits differ in some currency: never written."""


@dataclass(frozen=True, slots=True)
class Line:
    account: AccountRef
    side: Side
    amount_minor: int
    role: Role

    @property
    def delta_minor(self) -> int:
        """The change to the account's balance, which is kept on its normal side."""
        return self.amount_minor if self.side is self.account.normal_side else -self.amount_minor


@dataclass(frozen=True, slots=True)
class EntryPlan:
    """One journal entry, before it is written."""

    source_event_id: str
    event_type: str
    merchant_id: str
    pay_no: str | None
    refund_no: str | None
    currency: str
    livemode: bool
    effective_at: datetime
    lines: tuple[Line, ...]

    def totals(self) -> dict[str, tuple[int, int]]:
        """Per currency: (debits, credits)."""
        sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for line in self.lines:
            sums[line.account.currency][0 if line.side is Side.DEBIT else 1] += line.amount_minor
        return {currency: (debits, credits) for currency, (debits, credits) in sums.items()}

    def validate(self) -> None:
        """Raise ``UnbalancedEntry`` unless the entry may be written."""
        if not self.lines:
            raise UnbalancedEntry(f"{self.source_event_id}: an entry needs lines")
        for line in self.lines:
            if line.amount_minor <= 0:
                raise UnbalancedEntry(f"{self.source_event_id}: line amounts are positive")
            if line.account.currency != self.currency or line.account.livemode != self.livemode:
                raise UnbalancedEntry(
                    f"{self.source_event_id}: {line.account.id} is not in the entry's "
                    f"currency and mode ({self.currency}, livemode={self.livemode})"
                )
        for currency, (debits, credits) in self.totals().items():
            if debits != credits:
                raise UnbalancedEntry(
                    f"{self.source_event_id}: {currency} debits {debits} != credits {credits}"
                )


def _lines(*candidates: tuple[AccountRef, Side, int, Role]) -> tuple[Line, ...]:
    # A zero amount (no fee, or a fee as large as the payment) gets no line at all.
    return tuple(Line(*candidate) for candidate in candidates if candidate[2] != 0)


def payment_entry(
    *,
    event_id: str,
    merchant_id: str,
    pay_no: str,
    channel_account_id: str,
    currency: str,
    livemode: bool,
    amount_minor: int,
    fee_minor: int,
    effective_at: datetime,
) -> EntryPlan:
    """``payment.succeeded``: the channel owes us the amount less its fee; we owe the
    merchant the amount, less the fee, which the merchant bears."""
    if not 0 <= fee_minor <= amount_minor:
        raise ValueError(f"fee {fee_minor} outside 0..{amount_minor}")
    clearing = channel_clearing(channel_account_id, currency, livemode)
    fees = channel_fees(channel_account_id, currency, livemode)
    pending = merchant_pending(merchant_id, currency, livemode)
    lines = _lines(
        (clearing, Side.DEBIT, amount_minor - fee_minor, Role.NET),
        (fees, Side.DEBIT, fee_minor, Role.FEE),
        (pending, Side.CREDIT, amount_minor, Role.GROSS),
        (pending, Side.DEBIT, fee_minor, Role.FEE),
        (fees, Side.CREDIT, fee_minor, Role.FEE),
    )
    return EntryPlan(
        source_event_id=event_id,
        event_type=PAYMENT_SUCCEEDED,
        merchant_id=merchant_id,
        pay_no=pay_no,
        refund_no=None,
        currency=currency,
        livemode=livemode,
        effective_at=effective_at,
        lines=lines,
    )


def refund_entry(
    *,
    event_id: str,
    merchant_id: str,
    pay_no: str,
    refund_no: str,
    channel_account_id: str,
    currency: str,
    livemode: bool,
    refund_minor: int,
    fee_returned_minor: int,
    effective_at: datetime,
    from_available: bool = False,
) -> EntryPlan:
    """``refund.succeeded``: the payment's entry in reverse for the refunded amount; the fee
    the channel returns (if any) goes back to the merchant, who bore it. A refund of a
    payment whose day is already settled (``from_available``) comes out of the merchant's
    available account, where that payment's money went, instead of pending."""
    if refund_minor <= 0 or not 0 <= fee_returned_minor <= refund_minor:
        raise ValueError(f"refund {refund_minor} with fee returned {fee_returned_minor}")
    clearing = channel_clearing(channel_account_id, currency, livemode)
    fees = channel_fees(channel_account_id, currency, livemode)
    merchant = (merchant_available if from_available else merchant_pending)(
        merchant_id, currency, livemode
    )
    lines = _lines(
        (merchant, Side.DEBIT, refund_minor, Role.REFUND),
        (clearing, Side.CREDIT, refund_minor - fee_returned_minor, Role.NET),
        (fees, Side.CREDIT, fee_returned_minor, Role.FEE_REFUND),
        (fees, Side.DEBIT, fee_returned_minor, Role.FEE_REFUND),
        (merchant, Side.CREDIT, fee_returned_minor, Role.FEE_REFUND),
    )
    return EntryPlan(
        source_event_id=event_id,
        event_type=REFUND_SUCCEEDED,
        merchant_id=merchant_id,
        pay_no=pay_no,
        refund_no=refund_no,
        currency=currency,
        livemode=livemode,
        effective_at=effective_at,
        lines=lines,
    )


def recharge_entry(
    *,
    event_id: str,
    merchant_id: str,
    pay_no: str,
    wallet_id: str,
    channel_account_id: str,
    currency: str,
    livemode: bool,
    amount_minor: int,
    fee_minor: int,
    effective_at: datetime,
) -> EntryPlan:
    """A recharge paid in full (its ``payment.succeeded``): the channel owes us the amount
    less its fee, we owe the wallet's holder the whole amount, and the merchant bears the
    fee (its pending account is debited for it)."""
    if not 0 <= fee_minor <= amount_minor:
        raise ValueError(f"fee {fee_minor} outside 0..{amount_minor}")
    clearing = channel_clearing(channel_account_id, currency, livemode)
    fees = channel_fees(channel_account_id, currency, livemode)
    pending = merchant_pending(merchant_id, currency, livemode)
    lines = _lines(
        (clearing, Side.DEBIT, amount_minor - fee_minor, Role.NET),
        (fees, Side.DEBIT, fee_minor, Role.FEE),
        (wallet(wallet_id, currency, livemode), Side.CREDIT, amount_minor, Role.GROSS),
        (pending, Side.DEBIT, fee_minor, Role.FEE),
        (fees, Side.CREDIT, fee_minor, Role.FEE),
    )
    return EntryPlan(
        source_event_id=event_id,
        event_type=RECHARGE_SUCCEEDED,
        merchant_id=merchant_id,
        pay_no=pay_no,
        refund_no=None,
        currency=currency,
        livemode=livemode,
        effective_at=effective_at,
        lines=lines,
    )


def transfer_entry(
    *,
    event_id: str,
    merchant_id: str,
    from_wallet_id: str,
    to_wallet_id: str,
    currency: str,
    livemode: bool,
    amount_minor: int,
    effective_at: datetime,
) -> EntryPlan:
    """``transfer.succeeded``: what payfront owes moves from one holder to the other."""
    if amount_minor <= 0:
        raise ValueError(f"transfer of {amount_minor}")
    lines = _lines(
        (wallet(from_wallet_id, currency, livemode), Side.DEBIT, amount_minor, Role.GROSS),
        (wallet(to_wallet_id, currency, livemode), Side.CREDIT, amount_minor, Role.GROSS),
    )
    return EntryPlan(
        source_event_id=event_id,
        event_type=TRANSFER_SUCCEEDED,
        merchant_id=merchant_id,
        pay_no=None,
        refund_no=None,
        currency=currency,
        livemode=livemode,
        effective_at=effective_at,
        lines=lines,
    )


def withdrawal_entry(
    *,
    event_id: str,
    merchant_id: str,
    wallet_id: str,
    channel_account_id: str,
    currency: str,
    livemode: bool,
    amount_minor: int,
    effective_at: datetime,
) -> EntryPlan:
    """``withdrawal.succeeded``: the holder was paid out of the channel's balance, so payfront
    owes the wallet less and the channel owes payfront less. (A channel's payout fee is not
    modelled: no rate is configured for payouts.)"""
    if amount_minor <= 0:
        raise ValueError(f"withdrawal of {amount_minor}")
    lines = _lines(
        (wallet(wallet_id, currency, livemode), Side.DEBIT, amount_minor, Role.GROSS),
        (
            channel_clearing(channel_account_id, currency, livemode),
            Side.CREDIT,
            amount_minor,
            Role.NET,
        ),
    )
    return EntryPlan(
        source_event_id=event_id,
        event_type=WITHDRAWAL_SUCCEEDED,
        merchant_id=merchant_id,
        pay_no=None,
        refund_no=None,
        currency=currency,
        livemode=livemode,
        effective_at=effective_at,
        lines=lines,
    )


def settlement_entry(
    *,
    key: str,
    merchant_id: str,
    currency: str,
    livemode: bool,
    amount_minor: int,
    effective_at: datetime,
) -> EntryPlan:
    """A settlement: ``amount_minor`` of the merchant's pending funds become available; a
    negative amount (refunds and fees exceeded what was collected) moves back the other way."""
    if amount_minor == 0:
        raise ValueError("a settlement moves a non-zero amount")
    pending = merchant_pending(merchant_id, currency, livemode)
    available = merchant_available(merchant_id, currency, livemode)
    source, target = (pending, available) if amount_minor > 0 else (available, pending)
    lines = _lines(
        (source, Side.DEBIT, abs(amount_minor), Role.SETTLEMENT),
        (target, Side.CREDIT, abs(amount_minor), Role.SETTLEMENT),
    )
    return EntryPlan(
        source_event_id=key,
        event_type=SETTLEMENT,
        merchant_id=merchant_id,
        pay_no=None,
        refund_no=None,
        currency=currency,
        livemode=livemode,
        effective_at=effective_at,
        lines=lines,
    )
