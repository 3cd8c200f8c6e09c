"""Balance reads: an account's balance now (stored balance plus its unfolded hot postings),
its balance at any time summed from the lines, a merchant's balances per currency, and the
checks that the ledger holds together (balanced entries, stored balances equal to lines)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from core.ledger.accounts import AccountKind
from core.store.db import Database
from core.store.tables import (
    ledger_accounts,
    ledger_entries,
    ledger_hot_postings,
    ledger_lines,
)


def _unfolded(account_id: sa.ColumnElement[str]) -> sa.ScalarSelect[int]:
    return (
        sa.select(sa.func.coalesce(sa.func.sum(ledger_hot_postings.c.delta_minor), 0))
        .where(ledger_hot_postings.c.account_id == account_id)
        .scalar_subquery()
    )


def current_balance() -> sa.ColumnElement[int]:
    """An account's balance now: stored balance plus its unfolded hot postings. Read it in
    one statement, so stored balance and buffer come from one snapshot (a fold committing in
    between can neither hide a posting nor count it twice)."""
    return ledger_accounts.c.balance_minor + _unfolded(ledger_accounts.c.id)


_CURRENT = current_balance().label("balance")


async def account_balance(db: Database, account_id: str) -> int:
    """The balance now, on the account's normal side, hot buffer included (0 if none)."""
    async with db.read() as conn:
        value = (
            await conn.execute(sa.select(_CURRENT).where(ledger_accounts.c.id == account_id))
        ).scalar()
    return int(value or 0)


def _signed_line() -> sa.ColumnElement[int]:
    return sa.case(
        (ledger_lines.c.side == ledger_accounts.c.normal_side, ledger_lines.c.amount_minor),
        else_=-ledger_lines.c.amount_minor,
    )


async def balance_from_lines(db: Database, account_id: str, at: datetime | None = None) -> int:
    """The balance summed from the lines of entries effective at or before ``at`` (all
    entries when None): the record the stored balances must always agree with."""
    query = (
        sa.select(sa.func.coalesce(sa.func.sum(_signed_line()), 0))
        .select_from(ledger_lines.join(ledger_accounts).join(ledger_entries))
        .where(ledger_lines.c.account_id == account_id)
    )
    if at is not None:
        query = query.where(ledger_entries.c.effective_at <= at)
    async with db.read() as conn:
        return int((await conn.execute(query)).scalar_one())


@dataclass(frozen=True, slots=True)
class CurrencyBalance:
    currency: str
    pending_minor: int
    available_minor: int


async def merchant_balances(
    db: Database, merchant_id: str, livemode: bool
) -> list[CurrencyBalance]:
    """Pending and available per currency (hot buffer included), currencies in order."""
    async with db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(ledger_accounts.c.kind, ledger_accounts.c.currency, _CURRENT).where(
                    ledger_accounts.c.merchant_id == merchant_id,
                    ledger_accounts.c.livemode == livemode,
                    ledger_accounts.c.kind.in_(
                        [AccountKind.MERCHANT_PENDING.value, AccountKind.MERCHANT_AVAILABLE.value]
                    ),
                )
            )
        ).all()
    found: dict[str, dict[str, int]] = {}
    for kind, currency, balance in rows:
        found.setdefault(currency, {})[kind] = int(balance)
    return [
        CurrencyBalance(
            currency=currency,
            pending_minor=kinds.get(AccountKind.MERCHANT_PENDING.value, 0),
            available_minor=kinds.get(AccountKind.MERCHANT_AVAILABLE.value, 0),
        )
        for currency, kinds in sorted(found.items())
    ]


@dataclass(frozen=True, slots=True)
class LedgerCheck:
    """What is wrong with the ledger: empty lists when it holds together."""

    unbalanced_entries: list[str]  # source event ids
    balance_mismatches: list[str]  # "account: stored+buffer X != lines Y"

    @property
    def ok(self) -> bool:
        return not self.unbalanced_entries and not self.balance_mismatches


async def check_ledger(db: Database) -> LedgerCheck:
    """Every entry's lines balance and match its totals; every account's balance (stored
    plus buffer) equals the sum of its lines."""
    debit = sa.case((ledger_lines.c.side == "debit", ledger_lines.c.amount_minor), else_=0)
    credit = sa.case((ledger_lines.c.side == "credit", ledger_lines.c.amount_minor), else_=0)
    sums = (
        sa.select(
            ledger_lines.c.entry_id,
            sa.func.sum(debit).label("debits"),
            sa.func.sum(credit).label("credits"),
        )
        .group_by(ledger_lines.c.entry_id)
        .subquery()
    )
    unbalanced = (
        sa.select(ledger_entries.c.source_event_id)
        .select_from(ledger_entries.outerjoin(sums, sums.c.entry_id == ledger_entries.c.id))
        .where(
            sa.or_(
                sums.c.entry_id.is_(None),
                sums.c.debits != sums.c.credits,
                sums.c.debits != ledger_entries.c.debits_minor,
                sums.c.credits != ledger_entries.c.credits_minor,
            )
        )
    )
    from_lines = (
        sa.select(ledger_lines.c.account_id, sa.func.sum(_signed_line()).label("total"))
        .select_from(ledger_lines.join(ledger_accounts))
        .group_by(ledger_lines.c.account_id)
        .subquery()
    )
    compared = sa.select(
        ledger_accounts.c.id, _CURRENT, sa.func.coalesce(from_lines.c.total, 0)
    ).select_from(
        ledger_accounts.outerjoin(from_lines, from_lines.c.account_id == ledger_accounts.c.id)
    )
    async with db.read() as conn:
        bad_entries = list((await conn.execute(unbalanced)).scalars())
        accounts = (await conn.execute(compared)).all()
    mismatches = [
        f"{account_id}: stored+buffer {current} != lines {total}"
        for account_id, current, total in accounts
        if int(current) != int(total)
    ]
    return LedgerCheck(unbalanced_entries=bad_entries, balance_mismatches=mismatches)
