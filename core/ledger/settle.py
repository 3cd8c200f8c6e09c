"""Settlement runs: once a merchant's day is due (core.ledger.terms), its net pending funds
move to available by one balanced entry per (merchant, currency, day, mode), keyed so that a
second or concurrent run posts nothing. Days are settled in order; money posted for a day
after that day was settled (a late posting) is carried into the next settlement."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from core.ledger.accounts import (
    AccountKind,
    AccountRef,
    Side,
    ensure_accounts,
    merchant_available,
    merchant_pending,
)
from core.ledger.balances import current_balance
from core.ledger.entries import SETTLEMENT, settlement_entry
from core.ledger.posting import settled_through, write_entry
from core.ledger.terms import SettlementTerms, day_bounds, day_of, settlement_key
from core.store.db import Database
from core.store.tables import ledger_accounts, ledger_entries, ledger_lines


class Settled(enum.StrEnum):
    SETTLED = "settled"  # this run posted the day's entry
    ALREADY_SETTLED = "already_settled"  # an earlier (or concurrent) run did, or a later day is
    NOTHING_TO_SETTLE = "nothing_to_settle"  # the day's pending funds net to zero
    NOT_DUE = "not_due"


@dataclass(frozen=True, slots=True)
class SettlementRun:
    merchant_id: str
    currency: str
    livemode: bool
    day: date
    outcome: Settled
    amount_minor: int = 0  # moved pending → available (negative: back)
    entry_id: int | None = None


def _pending_delta() -> sa.ColumnElement[int]:
    # merchant_pending keeps its balance on the credit side.
    return sa.case(
        (ledger_lines.c.side == Side.CREDIT.value, ledger_lines.c.amount_minor),
        else_=-ledger_lines.c.amount_minor,
    )


def _movements(pending: AccountRef) -> sa.ColumnElement[bool]:
    """Entries of the pending account's owner, currency and mode other than settlements
    (filtered on the entries' (merchant_id, effective_at) index first)."""
    return sa.and_(
        ledger_entries.c.merchant_id == pending.owner_id,
        ledger_entries.c.currency == pending.currency,
        ledger_entries.c.livemode == pending.livemode,
        ledger_entries.c.event_type != SETTLEMENT,
    )


def unsettled_query(pending: AccountRef, through: date) -> sa.Select[Any]:
    """Pending funds of days up to ``through`` not yet moved by a settlement, in one statement
    (one snapshot): the balance now — stored plus hot buffer, so buffered postings count
    exactly as their lines do — less what entries effective after ``through`` put there.
    Valid while no day after ``through`` is settled (runs go in day order)."""
    after = day_bounds(through)[1]
    later = (
        sa.select(sa.func.coalesce(sa.func.sum(_pending_delta()), 0))
        .select_from(ledger_lines.join(ledger_entries))
        .where(
            _movements(pending),
            ledger_entries.c.effective_at >= after,
            ledger_lines.c.account_id == pending.id,
        )
        .scalar_subquery()
    )
    balance = (
        sa.select(current_balance()).where(ledger_accounts.c.id == pending.id).scalar_subquery()
    )
    return sa.select(sa.func.coalesce(balance, 0) - later)


def _next_movement_day(
    conn: sa.Connection, pending: AccountRef, after: date | None, through: date
) -> date | None:
    """The first day after ``after`` (up to ``through``) with a movement of pending funds."""
    query = (
        sa.select(sa.func.min(ledger_entries.c.effective_at))
        .select_from(ledger_entries.join(ledger_lines))
        .where(
            _movements(pending),
            ledger_lines.c.account_id == pending.id,
            ledger_entries.c.effective_at < day_bounds(through)[1],
        )
    )
    if after is not None:
        query = query.where(ledger_entries.c.effective_at >= day_bounds(after)[1])
    first = conn.execute(query).scalar()
    return day_of(first) if first is not None else None


def _lock(conn: sa.Connection, refs: list[AccountRef]) -> None:
    """Serialise settlements of one merchant account (and postings to it, where it is not
    hot): a second run waits here, then sees the first one's entry. SQLite writers hold the
    database lock from BEGIN IMMEDIATE already."""
    ensure_accounts(conn, refs)
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.select(ledger_accounts.c.id)
            .where(ledger_accounts.c.id.in_([ref.id for ref in refs]))
            .order_by(ledger_accounts.c.id)
            .with_for_update()
        ).all()


def _settle_day(
    conn: sa.Connection, pending: AccountRef, day: date, due_at: datetime
) -> SettlementRun:
    merchant_id, currency, livemode = pending.owner_id, pending.currency, pending.livemode
    key = settlement_key(merchant_id, currency, livemode, day)

    def run(outcome: Settled, amount: int = 0, entry_id: int | None = None) -> SettlementRun:
        return SettlementRun(merchant_id, currency, livemode, day, outcome, amount, entry_id)

    _lock(conn, [merchant_available(merchant_id, currency, livemode), pending])
    latest = settled_through(conn, merchant_id, currency, livemode)
    if latest is not None and day <= latest:
        return _already_settled(conn, pending, day)
    amount = int(conn.execute(unsettled_query(pending, day)).scalar_one())
    if amount == 0:
        return run(Settled.NOTHING_TO_SETTLE)
    plan = settlement_entry(
        key=key,
        merchant_id=merchant_id,
        currency=currency,
        livemode=livemode,
        amount_minor=amount,
        effective_at=due_at,
    )
    return run(Settled.SETTLED, amount, write_entry(conn, plan))


def _already_settled(conn: sa.Connection, pending: AccountRef, day: date) -> SettlementRun:
    """A day at or before the latest settled one: its own entry, if it has one (a day whose
    funds netted to zero has none)."""
    merchant_id, currency, livemode = pending.owner_id, pending.currency, pending.livemode
    entry_id = conn.execute(
        sa.select(ledger_entries.c.id).where(
            ledger_entries.c.source_event_id == settlement_key(merchant_id, currency, livemode, day)
        )
    ).scalar()
    amount = 0 if entry_id is None else _settled_amount(conn, entry_id)
    return SettlementRun(
        merchant_id, currency, livemode, day, Settled.ALREADY_SETTLED, amount, entry_id
    )


def _settled_amount(conn: sa.Connection, entry_id: int) -> int:
    """A settlement entry's amount, signed as it moved pending → available."""
    side, amount = conn.execute(
        sa.select(ledger_lines.c.side, ledger_lines.c.amount_minor)
        .join(ledger_accounts)
        .where(
            ledger_lines.c.entry_id == entry_id,
            ledger_accounts.c.kind == AccountKind.MERCHANT_PENDING.value,
        )
    ).one()
    return int(amount) if side == Side.DEBIT.value else -int(amount)


async def _settle_one(
    db: Database, pending: AccountRef, day: date, due_at: datetime
) -> SettlementRun:
    try:
        return await db.run_write(_settle_day, pending, day, due_at)
    except IntegrityError:
        # The key was taken by a run this one did not wait for: it rolled back whole.
        return SettlementRun(
            pending.owner_id, pending.currency, pending.livemode, day, Settled.ALREADY_SETTLED
        )


async def settle_account(
    db: Database, terms: SettlementTerms, pending: AccountRef, through: date
) -> list[SettlementRun]:
    """Settle the pending account's unsettled days up to ``through`` (which must be due), in
    order: each day with movements, then ``through`` itself for anything carried."""
    async with db.read() as conn:
        latest = await conn.run_sync(
            settled_through, pending.owner_id, pending.currency, pending.livemode
        )
        if latest is not None and through <= latest:
            return [await conn.run_sync(_already_settled, pending, through)]
    runs: list[SettlementRun] = []
    after = latest
    while True:
        async with db.read() as conn:
            day = await conn.run_sync(_next_movement_day, pending, after, through)
            # With no movements left, ``through`` still settles what was carried from days
            # already settled (posted late).
            day = day or through
            # Read first, so that a day with nothing to move costs no write transaction; the
            # write reads it again under the lock.
            owed = int((await conn.execute(unsettled_query(pending, day))).scalar_one())
            if owed == 0:
                # Nothing owed: nothing there, or a concurrent run has just settled it.
                latest = await conn.run_sync(
                    settled_through, pending.owner_id, pending.currency, pending.livemode
                )
                settled = latest is not None and day <= latest
                runs.append(
                    await conn.run_sync(_already_settled, pending, day)
                    if settled
                    else _nothing(pending, day)
                )
        if owed != 0:
            runs.append(await _settle_one(db, pending, day, terms.due_at(pending.owner_id, day)))
        if day >= through:
            return runs
        after = day


def _nothing(pending: AccountRef, day: date) -> SettlementRun:
    return SettlementRun(
        pending.owner_id, pending.currency, pending.livemode, day, Settled.NOTHING_TO_SETTLE
    )


async def pending_accounts(db: Database, merchant_id: str | None = None) -> list[AccountRef]:
    query = sa.select(
        ledger_accounts.c.owner_id, ledger_accounts.c.currency, ledger_accounts.c.livemode
    ).where(ledger_accounts.c.kind == AccountKind.MERCHANT_PENDING.value)
    if merchant_id is not None:
        query = query.where(ledger_accounts.c.owner_id == merchant_id)
    async with db.read() as conn:
        rows = (await conn.execute(query.order_by(ledger_accounts.c.id))).all()
    return [merchant_pending(owner, currency, bool(live)) for owner, currency, live in rows]


async def settle_due(
    db: Database, terms: SettlementTerms, *, now: datetime | None = None
) -> list[SettlementRun]:
    """Every merchant account, every day due by ``now``: what the periodic job runs."""
    now = now or datetime.now(UTC)
    runs: list[SettlementRun] = []
    for pending in await pending_accounts(db):
        through = terms.last_due_day(pending.owner_id, now)
        runs += await settle_account(db, terms, pending, through)
    return runs


async def settle_merchant_day(
    db: Database,
    terms: SettlementTerms,
    merchant_id: str,
    day: date,
    *,
    now: datetime | None = None,
) -> list[SettlementRun]:
    """Settle one merchant's ``day`` in each of its currencies and modes (earlier unsettled
    days first); a day not yet due is refused with ``NOT_DUE`` and moves nothing."""
    now = now or datetime.now(UTC)
    accounts = await pending_accounts(db, merchant_id)
    if not terms.is_due(merchant_id, day, now):
        return [
            SettlementRun(merchant_id, ref.currency, ref.livemode, day, Settled.NOT_DUE)
            for ref in accounts
        ]
    runs: list[SettlementRun] = []
    for pending in accounts:
        runs += await settle_account(db, terms, pending, day)
    return runs
