"""The settlement view: per merchant, day and currency, what was collected, refunded and
charged in channel fees, and what is payable, added up from the merchant's ledger lines; and
whether the day is settled (pending → available), by which entry and when."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime

import sqlalchemy as sa

from core.ledger.accounts import MERCHANT_KINDS, AccountKind, Side, merchant_pending
from core.ledger.entries import PAYMENT_SUCCEEDED, REFUND_SUCCEEDED, Role
from core.ledger.posting import settled_through
from core.ledger.settle import unsettled_query
from core.ledger.terms import SETTLEMENT_TZ, SettlementTerms, day_bounds, settlement_key
from core.store.db import Database
from core.store.tables import ledger_accounts, ledger_entries, ledger_lines

__all__ = ["SETTLEMENT_TZ", "DayStatus", "Settlement", "day_bounds", "settlement_for_day"]


class DayStatus(enum.StrEnum):
    NOT_DUE = "not_due"  # its funds stay pending until ``available_at``
    DUE = "due"  # due, and pending funds wait for the next settlement run
    SETTLED = "settled"  # its settlement entry is posted
    NOTHING_TO_SETTLE = "nothing_to_settle"  # due, and no pending funds of it to move


@dataclass(frozen=True, slots=True)
class Settlement:
    merchant_id: str
    livemode: bool
    day: date
    currency: str
    collected_minor: int  # gross of the payments that succeeded that day
    refunded_minor: int  # refunds that succeeded that day
    fees_minor: int  # channel fees charged, less fees the channels returned on refunds
    payments: int
    refunds: int
    status: DayStatus
    available_at: datetime  # when the day's funds become available (the merchant's terms)
    # The settlement entry, when posted: its id, when the run posted it, and what it moved
    # pending → available (payable, plus postings carried from earlier settled days, less
    # refunds of already settled payments that came out of available directly).
    entry_id: int | None = None
    settled_at: datetime | None = None
    settled_minor: int = 0

    @property
    def payable_minor(self) -> int:
        """What the day adds to what is owed to the merchant (negative: the merchant owes)."""
        return self.collected_minor - self.refunded_minor - self.fees_minor


async def settlement_for_day(
    db: Database,
    merchant_id: str,
    livemode: bool,
    day: date,
    currency: str,
    *,
    terms: SettlementTerms | None = None,
    now: datetime | None = None,
) -> Settlement:
    terms = terms or SettlementTerms()
    now = now or datetime.now(UTC)
    start, end = day_bounds(day)
    query = (
        sa.select(
            ledger_lines.c.role,
            ledger_lines.c.side,
            sa.func.sum(ledger_lines.c.amount_minor),
        )
        .select_from(ledger_lines.join(ledger_accounts).join(ledger_entries))
        .where(
            ledger_entries.c.merchant_id == merchant_id,
            ledger_entries.c.livemode == livemode,
            ledger_entries.c.currency == currency,
            ledger_entries.c.effective_at >= start,
            ledger_entries.c.effective_at < end,
            # A refund of a settled payment comes out of available: both accounts count.
            ledger_accounts.c.kind.in_([kind.value for kind in MERCHANT_KINDS]),
        )
        .group_by(ledger_lines.c.role, ledger_lines.c.side)
    )
    counts = (
        sa.select(ledger_entries.c.event_type, sa.func.count())
        .where(
            ledger_entries.c.merchant_id == merchant_id,
            ledger_entries.c.livemode == livemode,
            ledger_entries.c.currency == currency,
            ledger_entries.c.effective_at >= start,
            ledger_entries.c.effective_at < end,
        )
        .group_by(ledger_entries.c.event_type)
    )
    settled = (
        sa.select(
            ledger_entries.c.id,
            ledger_entries.c.posted_at,
            ledger_lines.c.side,
            ledger_lines.c.amount_minor,
        )
        .select_from(ledger_entries.join(ledger_lines).join(ledger_accounts))
        .where(
            ledger_entries.c.source_event_id
            == settlement_key(merchant_id, currency, livemode, day),
            ledger_accounts.c.kind == AccountKind.MERCHANT_PENDING.value,
        )
    )
    available_at = terms.due_at(merchant_id, day)
    async with db.read() as conn:
        sums = {(role, side): int(total) for role, side, total in await conn.execute(query)}
        by_type = {kind: int(n) for kind, n in await conn.execute(counts)}
        entry = (await conn.execute(settled)).first()
        if entry is not None:
            status = DayStatus.SETTLED
        elif now < available_at:
            status = DayStatus.NOT_DUE
        else:
            latest = await conn.run_sync(settled_through, merchant_id, currency, livemode)
            pending = merchant_pending(merchant_id, currency, livemode)
            waiting = (latest is None or latest < day) and int(
                (await conn.execute(unsettled_query(pending, day))).scalar_one()
            ) != 0
            status = DayStatus.DUE if waiting else DayStatus.NOTHING_TO_SETTLE

    def total(role: Role, side: Side) -> int:
        return sums.get((role.value, side.value), 0)

    return Settlement(
        merchant_id=merchant_id,
        livemode=livemode,
        day=day,
        currency=currency,
        collected_minor=total(Role.GROSS, Side.CREDIT),
        refunded_minor=total(Role.REFUND, Side.DEBIT),
        fees_minor=total(Role.FEE, Side.DEBIT) - total(Role.FEE_REFUND, Side.CREDIT),
        payments=by_type.get(PAYMENT_SUCCEEDED, 0),
        refunds=by_type.get(REFUND_SUCCEEDED, 0),
        status=status,
        available_at=available_at,
        entry_id=entry.id if entry else None,
        settled_at=entry.posted_at if entry else None,
        # The entry debits pending when it moved funds to available, credits it going back.
        settled_minor=(
            0 if entry is None else entry.amount_minor * (1 if entry.side == Side.DEBIT else -1)
        ),
    )
