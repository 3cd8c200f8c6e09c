"""Writing entries: ``post_event`` turns a money-moving event into its journal entry, once,
in its own transaction (the ``post_entry`` job, owed via the outbox); ``write_entry`` writes
any balanced plan, sending hot accounts' balance changes to the buffer."""

from __future__ import annotations

import enum
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from core.events import POST_ENTRY_JOB, RECEIVED_EVENTS
from core.ledger.accounts import AccountKind, Side, ensure_accounts
from core.ledger.entries import (
    PAYMENT_SUCCEEDED,
    REFUND_SUCCEEDED,
    SETTLEMENT,
    TRANSFER_SUCCEEDED,
    WITHDRAWAL_SUCCEEDED,
    EntryPlan,
    Role,
    payment_entry,
    recharge_entry,
    refund_entry,
    transfer_entry,
    withdrawal_entry,
)
from core.ledger.fees import FeeRate, payment_fee, refund_fee_returned
from core.ledger.terms import day_of, day_of_key, key_range
from core.states import RefundStatus
from core.store.db import Database
from core.store.tables import (
    channel_accounts,
    events,
    ledger_accounts,
    ledger_entries,
    ledger_hot_postings,
    ledger_lines,
    merchants,
    outbox,
    pay_orders,
    refund_orders,
    trade_orders,
    wallet_transfers,
    withdrawals,
)


class Posted(enum.StrEnum):
    POSTED = "posted"
    ALREADY_POSTED = "already_posted"
    NOT_MONEY = "not_money"  # an event that moves no money: nothing to post
    NO_EVENT = "no_event"


class MissingSource(LookupError):
    """The event names an order that is not there: nothing is posted, the job fails loudly."""


def _now() -> datetime:
    return datetime.now(UTC)


def write_entry(conn: sa.Connection, plan: EntryPlan, *, now: datetime | None = None) -> int:
    """Write a balanced entry and its lines, and move the balances: a stored balance by one
    UPDATE per account (in id order, so concurrent postings never deadlock), a hot account's
    by a buffer row. Raises ``UnbalancedEntry`` (nothing written) or, when the source event
    already has an entry, ``IntegrityError`` from the unique constraint."""
    plan.validate()
    now = now or _now()
    hot = ensure_accounts(conn, [line.account for line in plan.lines])
    ((debits, credits),) = plan.totals().values()
    entry_id = conn.execute(
        ledger_entries.insert()
        .values(
            source_event_id=plan.source_event_id,
            event_type=plan.event_type,
            merchant_id=plan.merchant_id,
            pay_no=plan.pay_no,
            refund_no=plan.refund_no,
            currency=plan.currency,
            livemode=plan.livemode,
            debits_minor=debits,
            credits_minor=credits,
            effective_at=plan.effective_at,
            posted_at=now,
        )
        .returning(ledger_entries.c.id)
    ).scalar_one()
    conn.execute(
        ledger_lines.insert(),
        [
            {
                "entry_id": entry_id,
                "account_id": line.account.id,
                "side": line.side.value,
                "amount_minor": line.amount_minor,
                "role": line.role.value,
            }
            for line in plan.lines
        ],
    )
    deltas: dict[str, int] = defaultdict(int)
    for line in plan.lines:
        deltas[line.account.id] += line.delta_minor
    buffered = [
        {"account_id": account_id, "delta_minor": delta, "created_at": now}
        for account_id, delta in sorted(deltas.items())
        if hot[account_id] and delta != 0
    ]
    if buffered:
        conn.execute(ledger_hot_postings.insert(), buffered)
    for account_id, delta in sorted(deltas.items()):
        if not hot[account_id] and delta != 0:
            conn.execute(
                ledger_accounts.update()
                .where(ledger_accounts.c.id == account_id)
                .values(balance_minor=ledger_accounts.c.balance_minor + delta, updated_at=now)
            )
    return int(entry_id)


@dataclass(frozen=True, slots=True)
class RefundFacts:
    """What a refund's entry needs from the trade and pay data; the rest (the fee its payment
    was charged, whether that day is settled) is the ledger's own."""

    event_id: str
    refund: Any
    paid_minor: int
    refunded_before_minor: int
    succeeded_at: datetime
    # The payment's own entry, should it still be owed when the refund is posted.
    payment_plan: EntryPlan | None


@dataclass(frozen=True, slots=True)
class Owed:
    """An event's entry as the trade and pay data say it: a plan ready to write, or a
    refund's facts; ``merchant`` is (id, name, created_at) for a ledger database of its own."""

    event_id: str
    plan: EntryPlan | RefundFacts | None
    outcome: Posted | None
    merchant: tuple[str, str, datetime] | None = None


async def post_event(db: Database, event_id: str, *, ledger_db: Database | None = None) -> Posted:
    """Post the entry ``event_id`` owes (idempotent: a second run posts nothing) and mark
    its outbox row done.

    One database: in one transaction. A ledger database of its own (``ledger_db``; DB split,
    docs/ledger.md): the facts are read from ``db``, the entry is written to ``ledger_db``
    (idempotent by the event id, unique there), then the outbox row is marked done in ``db``;
    a crash in between re-runs the job, which finds the entry and only marks the row."""
    if ledger_db is None or ledger_db is db:
        try:
            return await db.run_write(_post_event, event_id)
        except IntegrityError:
            # A concurrent run wrote the same entry first; this transaction rolled back whole.
            if not await db.run_write(_has_entry, event_id):
                raise
            await db.run_write(_mark_done, event_id)
            return Posted.ALREADY_POSTED
    async with db.read() as conn:
        owed = await conn.run_sync(_owed, event_id, True)
    outcome = owed.outcome
    if outcome is None:
        try:
            outcome = await ledger_db.run_write(_write_owed, owed)
        except IntegrityError:
            if not await ledger_db.run_write(_has_entry, event_id):
                raise
            outcome = Posted.ALREADY_POSTED
    await db.run_write(_mark_done, event_id)
    return outcome


def _has_entry(conn: sa.Connection, event_id: str) -> bool:
    found = conn.execute(
        sa.select(ledger_entries.c.id).where(ledger_entries.c.source_event_id == event_id)
    ).first()
    return found is not None


def _mark_done(conn: sa.Connection, event_id: str) -> None:
    conn.execute(
        outbox.update()
        .where(
            outbox.c.kind == POST_ENTRY_JOB, outbox.c.ref == event_id, outbox.c.status == "pending"
        )
        .values(status="done", done_at=_now())
    )


def _post_event(conn: sa.Connection, event_id: str) -> Posted:
    """One database: read, write and mark done in one transaction."""
    if _has_entry(conn, event_id):
        _mark_done(conn, event_id)
        return Posted.ALREADY_POSTED
    owed = _owed(conn, event_id, False)
    outcome = owed.outcome or _write_owed(conn, owed)
    _mark_done(conn, event_id)
    return outcome


def _owed(conn: sa.Connection, event_id: str, with_merchant: bool) -> Owed:
    """Read from the trade and pay data what ``event_id``'s entry is (no ledger table read)."""
    event = conn.execute(sa.select(events).where(events.c.id == event_id)).first()
    if event is None:
        return Owed(event_id, None, Posted.NO_EVENT)
    if event.type in RECEIVED_EVENTS:
        # Paid, paid in part, paid late, paid twice: money came in all the same (refunds
        # of it, automatic or not, are posted as refunds).
        plan: EntryPlan | RefundFacts = _payment_plan(conn, event)
    elif event.type == REFUND_SUCCEEDED:
        plan = _refund_facts(conn, event)
    elif event.type == TRANSFER_SUCCEEDED:
        plan = _transfer_plan(conn, event)
    elif event.type == WITHDRAWAL_SUCCEEDED:
        plan = _withdrawal_plan(conn, event)
    else:
        return Owed(event_id, None, Posted.NOT_MONEY)
    merchant = None
    if with_merchant:
        row = conn.execute(
            sa.select(merchants.c.id, merchants.c.name, merchants.c.created_at).where(
                merchants.c.id == event.merchant_id
            )
        ).one()
        merchant = (row.id, row.name, row.created_at)
    return Owed(event_id, plan, None, merchant)


def _write_owed(conn: sa.Connection, owed: Owed) -> Posted:
    """Write the entry in the ledger's database (the same one, or its own)."""
    if _has_entry(conn, owed.event_id):
        return Posted.ALREADY_POSTED
    if owed.merchant is not None:
        copy_merchant(conn, *owed.merchant)
    plan = owed.plan
    assert plan is not None
    write_entry(conn, _refund_plan(conn, plan) if isinstance(plan, RefundFacts) else plan)
    return Posted.POSTED


def copy_merchant(conn: sa.Connection, merchant_id: str, name: str, created_at: datetime) -> None:
    """A ledger database of its own keeps the ids of the merchants it books for (its entries
    and accounts refer to them): copied there once, never changed."""
    found = conn.execute(sa.select(merchants.c.id).where(merchants.c.id == merchant_id)).first()
    if found is None:
        conn.execute(merchants.insert().values(id=merchant_id, name=name, created_at=created_at))


def _payment_plan(conn: sa.Connection, event: Any) -> EntryPlan:
    # The order, not the event's payload, is the record of what was paid.
    pay = conn.execute(
        sa.select(pay_orders, channel_accounts.c.fee_rate_bps, channel_accounts.c.fee_fixed_minor)
        .join(channel_accounts, channel_accounts.c.id == pay_orders.c.channel_account_id)
        .where(pay_orders.c.pay_no == event.pay_no, pay_orders.c.merchant_id == event.merchant_id)
    ).first()
    if pay is None:
        raise MissingSource(f"event {event.id}: no payment {event.pay_no}")
    rate = FeeRate(bps=pay.fee_rate_bps, fixed_minor=pay.fee_fixed_minor)
    trade = conn.execute(
        sa.select(trade_orders.c.kind, trade_orders.c.wallet_id).where(
            trade_orders.c.trade_no == pay.trade_no
        )
    ).one()
    if trade.kind == "recharge" and event.type == PAYMENT_SUCCEEDED:
        # Credited to the wallet (core.receipts) in the same transaction as this event.
        return recharge_entry(
            event_id=event.id,
            merchant_id=pay.merchant_id,
            pay_no=pay.pay_no,
            wallet_id=trade.wallet_id,
            channel_account_id=pay.channel_account_id,
            currency=pay.currency,
            livemode=pay.livemode,
            amount_minor=_received(pay),
            fee_minor=payment_fee(_received(pay), rate),
            effective_at=pay.paid_at or event.created_at,
        )
    return payment_entry(
        event_id=event.id,
        merchant_id=pay.merchant_id,
        pay_no=pay.pay_no,
        channel_account_id=pay.channel_account_id,
        currency=pay.currency,
        livemode=pay.livemode,
        amount_minor=_received(pay),
        fee_minor=payment_fee(_received(pay), rate),
        effective_at=pay.paid_at or event.created_at,
    )


def _transfer_plan(conn: sa.Connection, event: Any) -> EntryPlan:
    moved = conn.execute(
        sa.select(wallet_transfers).where(
            wallet_transfers.c.transfer_no == event.transfer_no,
            wallet_transfers.c.merchant_id == event.merchant_id,
        )
    ).first()
    if moved is None:
        raise MissingSource(f"event {event.id}: no transfer {event.transfer_no}")
    return transfer_entry(
        event_id=event.id,
        merchant_id=moved.merchant_id,
        from_wallet_id=moved.from_wallet_id,
        to_wallet_id=moved.to_wallet_id,
        currency=moved.currency,
        livemode=moved.livemode,
        amount_minor=moved.amount_minor,
        effective_at=moved.created_at,
    )


def _withdrawal_plan(conn: sa.Connection, event: Any) -> EntryPlan:
    paid_out = conn.execute(
        sa.select(withdrawals).where(
            withdrawals.c.withdrawal_no == event.withdrawal_no,
            withdrawals.c.merchant_id == event.merchant_id,
        )
    ).first()
    if paid_out is None:
        raise MissingSource(f"event {event.id}: no withdrawal {event.withdrawal_no}")
    return withdrawal_entry(
        event_id=event.id,
        merchant_id=paid_out.merchant_id,
        wallet_id=paid_out.wallet_id,
        channel_account_id=paid_out.channel_account_id,
        currency=paid_out.currency,
        livemode=paid_out.livemode,
        amount_minor=paid_out.amount_minor,
        effective_at=paid_out.succeeded_at or event.created_at,
    )


def _received(pay: Any) -> int:
    """What came in: the ordered amount, or less for a partial payment."""
    return int(pay.paid_minor if pay.paid_minor is not None else pay.amount_minor)


def _refund_facts(conn: sa.Connection, event: Any) -> RefundFacts:
    refund = conn.execute(
        sa.select(refund_orders).where(
            refund_orders.c.refund_no == event.refund_no,
            refund_orders.c.merchant_id == event.merchant_id,
        )
    ).first()
    if refund is None:
        raise MissingSource(f"event {event.id}: no refund {event.refund_no}")
    pay = conn.execute(sa.select(pay_orders).where(pay_orders.c.pay_no == refund.pay_no)).one()
    succeeded_at = refund.succeeded_at or event.created_at
    paid_event = conn.execute(
        sa.select(events)
        .where(events.c.pay_no == refund.pay_no, events.c.type.in_(RECEIVED_EVENTS))
        .order_by(events.c.created_at)
    ).first()
    return RefundFacts(
        event_id=event.id,
        refund=refund,
        paid_minor=_received(pay),
        refunded_before_minor=_refunded_before(conn, refund, succeeded_at),
        succeeded_at=succeeded_at,
        payment_plan=None if paid_event is None else _payment_plan(conn, paid_event),
    )


def _refund_plan(conn: sa.Connection, facts: RefundFacts) -> EntryPlan:
    """The refund's entry, from its facts and the ledger (``conn``: the ledger's database)."""
    refund = facts.refund
    fee_minor, paid_at = _payment_fee_posted(conn, refund.pay_no, facts.payment_plan)
    # Once the payment's day is settled its money is in available: the refund comes out of
    # there (docs/ledger.md, "Refunds after settlement").
    settled = settled_through(conn, refund.merchant_id, refund.currency, refund.livemode)
    return refund_entry(
        event_id=facts.event_id,
        merchant_id=refund.merchant_id,
        pay_no=refund.pay_no,
        refund_no=refund.refund_no,
        channel_account_id=refund.channel_account_id,
        currency=refund.currency,
        livemode=refund.livemode,
        refund_minor=refund.amount_minor,
        fee_returned_minor=refund_fee_returned(
            refund.channel,
            paid_minor=facts.paid_minor,
            fee_minor=fee_minor,
            refunded_before_minor=facts.refunded_before_minor,
            refund_minor=refund.amount_minor,
        ),
        effective_at=facts.succeeded_at,
        from_available=settled is not None and day_of(paid_at) <= settled,
    )


def settled_through(
    conn: sa.Connection, merchant_id: str, currency: str, livemode: bool
) -> date | None:
    """The latest day of the merchant's (currency, mode) that has been settled, if any: days
    are settled in order, so every day up to it has been too."""
    lowest, highest = key_range(merchant_id, currency, livemode)
    key = conn.execute(
        # The greatest key in the account's range of the unique index: one short scan.
        sa.select(sa.func.max(ledger_entries.c.source_event_id)).where(
            ledger_entries.c.source_event_id.between(lowest, highest),
            ledger_entries.c.event_type == SETTLEMENT,
        )
    ).scalar()
    return day_of_key(key) if key else None


def _payment_fee_posted(
    conn: sa.Connection, pay_no: str, payment_plan: EntryPlan | None
) -> tuple[int, datetime]:
    """The fee the payment's entry charged and when it took effect (posting that entry first
    if it is still owed: its rate may have changed since, and the refund must return part of
    the fee charged)."""
    entry_id = conn.execute(
        sa.select(ledger_entries.c.id).where(
            ledger_entries.c.pay_no == pay_no, ledger_entries.c.event_type == PAYMENT_SUCCEEDED
        )
    ).scalar()
    if entry_id is None:
        if payment_plan is None:
            raise MissingSource(f"payment {pay_no} has no payment.succeeded event")
        entry_id = write_entry(conn, payment_plan)
    fee = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(ledger_lines.c.amount_minor), 0))
        .select_from(ledger_lines.join(ledger_accounts))
        .where(
            ledger_lines.c.entry_id == entry_id,
            ledger_lines.c.role == Role.FEE.value,
            ledger_lines.c.side == Side.DEBIT.value,
            ledger_accounts.c.kind == AccountKind.CHANNEL_FEES.value,
        )
    ).scalar_one()
    effective_at = conn.execute(
        sa.select(ledger_entries.c.effective_at).where(ledger_entries.c.id == entry_id)
    ).scalar_one()
    return int(fee), effective_at


def _refunded_before(conn: sa.Connection, refund: Any, succeeded_at: datetime) -> int:
    """What the payment's other succeeded refunds, earlier ones first, added up to before
    this one: the same answer whichever of them is posted first."""
    earlier = sa.or_(
        refund_orders.c.succeeded_at < succeeded_at,
        sa.and_(
            refund_orders.c.succeeded_at == succeeded_at,
            refund_orders.c.refund_no < refund.refund_no,
        ),
    )
    total = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(refund_orders.c.amount_minor), 0)).where(
            refund_orders.c.pay_no == refund.pay_no,
            refund_orders.c.status == RefundStatus.SUCCEEDED.value,
            refund_orders.c.refund_no != refund.refund_no,
            earlier,
        )
    ).scalar_one()
    return int(total)
