"""The settlement view: per merchant, day and currency, what was collected, refunded and
charged in channel fees, and what is payable, added up from the merchant's ledger lines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from core.ledger.accounts import AccountKind, Side
from core.ledger.entries import PAYMENT_SUCCEEDED, REFUND_SUCCEEDED, Role
from core.store.db import Database
from core.store.tables import ledger_accounts, ledger_entries, ledger_lines

# Days are China Standard Time days, as WeChat Pay's and Alipay's statements and settlements
# count them.
SETTLEMENT_TZ = ZoneInfo("Asia/Shanghai")


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

    @property
    def payable_minor(self) -> int:
        """What the day adds to what is owed to the merchant (negative: the merchant owes)."""
        return self.collected_minor - self.refunded_minor - self.fees_minor


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), tzinfo=SETTLEMENT_TZ)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=SETTLEMENT_TZ)
    return start, end


async def settlement_for_day(
    db: Database, merchant_id: str, livemode: bool, day: date, currency: str
) -> Settlement:
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
            ledger_accounts.c.kind == AccountKind.MERCHANT_PENDING.value,
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
    async with db.read() as conn:
        sums = {(role, side): int(total) for role, side, total in await conn.execute(query)}
        by_type = {kind: int(n) for kind, n in await conn.execute(counts)}

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
    )
