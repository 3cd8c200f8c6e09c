"""Writing entries: ``post_event`` turns a money-moving event into its journal entry, once,
in its own transaction (the ``post_entry`` job, owed via the outbox); ``write_entry`` writes
any balanced plan, sending hot accounts' balance changes to the buffer."""

from __future__ import annotations

import enum
from collections import defaultdict
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


async def post_event(db: Database, event_id: str) -> Posted:
    """Post the entry ``event_id`` owes (idempotent: a second run posts nothing) and mark
    its outbox row done, in one transaction."""
    try:
        return await db.run_write(_post_event, event_id)
    except IntegrityError:
        # A concurrent run wrote the same entry first; this transaction rolled back whole.
        if not await db.run_write(_has_entry, event_id):
            raise
        await db.run_write(_mark_done, event_id)
        return Posted.ALREADY_POSTED


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
    event = conn.execute(sa.select(events).where(events.c.id == event_id)).first()
    if event is None:
        _mark_done(conn, event_id)
        return Posted.NO_EVENT
    if _has_entry(conn, event_id):
        _mark_done(conn, event_id)
        return Posted.ALREADY_POSTED
    if event.type in RECEIVED_EVENTS:
        # Paid, paid in part, paid late, paid twice: money came in all the same (refunds
        # of it, automatic or not, are posted as refunds).
        plan = _payment_plan(conn, event)
    elif event.type == REFUND_SUCCEEDED:
        plan = _refund_plan(conn, event)
    elif event.type == TRANSFER_SUCCEEDED:
        plan = _transfer_plan(conn, event)
    elif event.type == WITHDRAWAL_SUCCEEDED:
        plan = _withdrawal_plan(conn, event)
    else:
        _mark_done(conn, event_id)
        return Posted.NOT_MONEY
    write_entry(conn, plan)
    _mark_done(conn, event_id)
    return Posted.POSTED


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


def _refund_plan(conn: sa.Connection, event: Any) -> EntryPlan:
    refund = conn.execute(
        sa.select(refund_orders).where(
            refund_orders.c.refund_no == event.refund_no,
            refund_orders.c.merchant_id == event.merchant_id,
        )
    ).first()
    if refund is None:
        raise MissingSource(f"event {event.id}: no refund {event.refund_no}")
    pay = conn.execute(sa.select(pay_orders).where(pay_orders.c.pay_no == refund.pay_no)).one()
    fee_minor, paid_at = _payment_fee_posted(conn, refund.pay_no)
    succeeded_at = refund.succeeded_at or event.created_at
    # Once the payment's day is settled its money is in available: the refund comes out of
    # there (docs/ledger.md, "Refunds after settlement").
    settled = settled_through(conn, refund.merchant_id, refund.currency, refund.livemode)
    return refund_entry(
        event_id=event.id,
        merchant_id=refund.merchant_id,
        pay_no=refund.pay_no,
        refund_no=refund.refund_no,
        channel_account_id=refund.channel_account_id,
        currency=refund.currency,
        livemode=refund.livemode,
        refund_minor=refund.amount_minor,
        fee_returned_minor=refund_fee_returned(
            refund.channel,
            paid_minor=_received(pay),
            fee_minor=fee_minor,
            refunded_before_minor=_refunded_before(conn, refund, succeeded_at),
            refund_minor=refund.amount_minor,
        ),
        effective_at=succeeded_at,
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


def _payment_fee_posted(conn: sa.Connection, pay_no: str) -> tuple[int, datetime]:
    """The fee the payment's entry charged and when it took effect (posting that entry first
    if it is still owed: its rate may have changed since, and the refund must return part of
    the fee charged)."""
    entry_id = conn.execute(
        sa.select(ledger_entries.c.id).where(
            ledger_entries.c.pay_no == pay_no, ledger_entries.c.event_type == PAYMENT_SUCCEEDED
        )
    ).scalar()
    if entry_id is None:
        paid_event = conn.execute(
            sa.select(events)
            .where(events.c.pay_no == pay_no, events.c.type.in_(RECEIVED_EVENTS))
            .order_by(events.c.created_at)
        ).first()
        if paid_event is None:
            raise MissingSource(f"payment {pay_no} has no payment.succeeded event")
        entry_id = write_entry(conn, _payment_plan(conn, paid_event))
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
