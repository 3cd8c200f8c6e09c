"""The pay core for one attempt: prepay progress, channel results and payments applied.

Every move is a compare-and-set through the tables in ``core.states``; every function here
is safe to run twice (jobs and callbacks are delivered at least once).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from core import resolutions
from core.errors import Conflict, NotFound, StaleState
from core.events import INSERT_EVENT, INSERT_OWED, event_rows, record_payment_event
from core.idempotency import IdempotencyClaim, StoredAnswer, remember, stored_answer
from core.merchants import MerchantAuth
from core.outbox import MARK_DONE, done_params, mark_done
from core.payments import PREPAY_JOB
from core.states import (
    PAY_WAITING,
    TRADE_EVENT_FOR_PAY,
    IllegalTransition,
    PayEvent,
    PayStatus,
    TradeEvent,
    TradeStatus,
    next_pay_status,
    next_trade_status,
)
from core.store.cas import again_if_stale, compare_and_set
from core.store.db import Database
from core.store.tables import pay_orders, trade_orders
from core.views import payment_object

# The merchant event each move records (core.receipts names its own for payments that were
# not simply paid: duplicate, late, partial).
EVENT_FOR_MOVE = {
    PayEvent.PAYMENT_SUCCEEDED: "payment.succeeded",
    PayEvent.PREPAY_REJECTED: "payment.failed",
    PayEvent.CLOSED: "payment.closed",
    PayEvent.SUPERSEDED: "payment.closed",
    PayEvent.PARTIAL_PAYMENT: "payment.partially_paid",
    PayEvent.LATE_PAYMENT: "payment.late_succeeded",
}


def now_utc() -> datetime:
    return datetime.now(UTC)


async def load_pay_order(db: Database, pay_no: str) -> Row[Any] | None:
    async with db.read() as conn:
        return (
            await conn.execute(sa.select(pay_orders).where(pay_orders.c.pay_no == pay_no))
        ).first()


@dataclass(frozen=True, slots=True)
class Moved:
    """A transition made: the new status and the merchant event it recorded, if any."""

    status: PayStatus
    event_id: str | None


class _Default(enum.Enum):
    TABLE = "table"


_BY_TABLE = _Default.TABLE


async def transition(
    conn: AsyncConnection,
    pay: Row[Any],
    event: PayEvent,
    now: datetime,
    *,
    trade_event: TradeEvent | _Default | None = _BY_TABLE,
    event_type: str | _Default | None = _BY_TABLE,
    **values: Any,
) -> Moved:
    """Compare-and-set one pay order, its trade, and the merchant event it owes.

    The trade moves by ``TRADE_EVENT_FOR_PAY`` unless ``trade_event`` says otherwise; only
    the trade's current attempt moves it to failed or closed (an older attempt superseded or
    expiring says nothing about the trade), and a move the trade table does not allow from
    where the trade is is skipped (the trade was settled by another attempt). A payment's
    trade move is decided by the caller (core.receipts) before it gets here.
    """
    target = next_pay_status(PayStatus(pay.status), event)
    await compare_and_set(
        conn,
        pay_orders,
        pay_orders.c.pay_no,
        pay.pay_no,
        status=pay.status,
        version=pay.version,
        to=target,
        now=now,
        **values,
    )
    move = TRADE_EVENT_FOR_PAY.get(event) if trade_event is _BY_TABLE else trade_event
    if move is not None:
        await _move_trade(conn, pay, move, now)
    if target not in PAY_WAITING:
        # The prepay job's work is done (credential stored, or the order settled otherwise).
        await mark_done(conn, PREPAY_JOB, pay.pay_no, now)
    kind = EVENT_FOR_MOVE.get(event) if event_type is _BY_TABLE else event_type
    event_id = None
    if kind is not None:
        event_id = await record_payment_event(conn, kind, pay.pay_no, now=now)
    return Moved(target, event_id)


async def _move_trade(
    conn: AsyncConnection, pay: Row[Any], move: TradeEvent, now: datetime
) -> None:
    trade = (
        await conn.execute(
            sa.select(
                trade_orders.c.status, trade_orders.c.version, trade_orders.c.current_pay_no
            ).where(trade_orders.c.trade_no == pay.trade_no)
        )
    ).one()
    current = trade.current_pay_no in (None, pay.pay_no)
    if not current and move is not TradeEvent.PAID:
        return
    try:
        to = next_trade_status(TradeStatus(trade.status), move)
    except IllegalTransition:
        if move is TradeEvent.PAID:
            raise
        return
    await compare_and_set(
        conn,
        trade_orders,
        trade_orders.c.trade_no,
        pay.trade_no,
        status=trade.status,
        version=trade.version,
        to=to,
        now=now,
    )


# Built once (see core.outbox.MARK_DONE): the compare-and-sets of a payment applied in one go.
# An UPDATE given parameters named like columns sets those columns.
PAY_CAS = (
    pay_orders.update()
    .where(
        pay_orders.c.pay_no == sa.bindparam("cas_key"),
        pay_orders.c.status == sa.bindparam("cas_status"),
        pay_orders.c.version == sa.bindparam("cas_version"),
    )
    .returning(*pay_orders.c)
)
_TRADE_CAS = trade_orders.update().where(
    trade_orders.c.trade_no == sa.bindparam("cas_key"),
    trade_orders.c.status == sa.bindparam("cas_status"),
    trade_orders.c.version == sa.bindparam("cas_version"),
)


def record_paid(conn: sa.Connection, pay: Row[Any], now: datetime, **values: Any) -> Moved:
    """``transition(PAYMENT_SUCCEEDED)`` in plain synchronous SQLAlchemy (``Database.run_write``)
    for a caller that read the pay order together with its trade's ``trade_status``,
    ``trade_version``, ``merchant_order_no`` and ``metadata``: the same writes (the pay order
    and its trade compare-and-set, raising ``StaleState`` when another writer was first; the
    prepay's outbox row done; the ``payment.succeeded`` event with its outbox rows) in four or
    five statements, nothing read again: the UPDATE returns the row the event shows. Raises
    ``IllegalTransition``, before writing anything, when either table refuses the move."""
    target = next_pay_status(PayStatus(pay.status), PayEvent.PAYMENT_SUCCEEDED)
    trade_to = next_trade_status(TradeStatus(pay.trade_status), TradeEvent.PAID)
    paid = conn.execute(
        PAY_CAS,
        {
            "cas_key": pay.pay_no,
            "cas_status": pay.status,
            "cas_version": pay.version,
            "status": target,
            "version": pay.version + 1,
            "updated_at": now,
            **values,
        },
    ).first()
    if paid is None:
        raise StaleState(pay.pay_no)
    moved_trade = conn.execute(
        _TRADE_CAS,
        {
            "cas_key": pay.trade_no,
            "cas_status": pay.trade_status,
            "cas_version": pay.trade_version,
            "status": trade_to,
            "version": pay.trade_version + 1,
            "updated_at": now,
        },
    )
    if moved_trade.rowcount != 1:
        raise StaleState(pay.trade_no)
    if pay.status in PAY_WAITING:
        # The prepay's work is done. (An order that left PAY_WAITING before had its row
        # marked done by that move: ``transition`` does it on every move out.)
        conn.execute(MARK_DONE, done_params(PREPAY_JOB, pay.pay_no, now))
    event, owed = event_rows(
        EVENT_FOR_MOVE[PayEvent.PAYMENT_SUCCEEDED],
        merchant_id=paid.merchant_id,
        livemode=paid.livemode,
        data=payment_object(paid, pay),
        pay_no=pay.pay_no,
        now=now,
    )
    conn.execute(INSERT_EVENT, event)
    conn.execute(INSERT_OWED, owed)
    return Moved(target, event["id"])


async def _apply(db: Database, pay_no: str, event: PayEvent, **values: Any) -> Moved | None:
    return await again_if_stale(lambda: _apply_once(db, pay_no, event, **values))


async def _apply_once(db: Database, pay_no: str, event: PayEvent, **values: Any) -> Moved | None:
    """Apply ``event`` if the table allows it from the current state; None if it does not."""
    now = now_utc()
    async with db.begin() as conn:
        pay = (
            await conn.execute(sa.select(pay_orders).where(pay_orders.c.pay_no == pay_no))
        ).first()
        if pay is None:
            return None
        try:
            return await transition(conn, pay, event, now, **values)
        except IllegalTransition:
            return None


async def prepay_failed(db: Database, pay_no: str, code: str, message: str) -> Moved | None:
    return await _apply(
        db, pay_no, PayEvent.PREPAY_REJECTED, failure_code=code[:64], failure_message=message[:512]
    )


async def outcome_lost(db: Database, pay_no: str, code: str, message: str) -> Moved | None:
    """Retries ran out while the channel's answer was unknown: the order may exist there."""
    return await _apply(
        db, pay_no, PayEvent.OUTCOME_LOST, failure_code=code[:64], failure_message=message[:512]
    )


# What a person may decide about a payment in ``unknown``, and the move each makes.
RESOLUTION_EVENTS = {"paid": PayEvent.PAYMENT_SUCCEEDED, "failed": PayEvent.PREPAY_REJECTED}


async def resolve_unknown(
    db: Database,
    merchant: MerchantAuth,
    pay_no: str,
    decision: resolutions.Decision,
    claim: IdempotencyClaim | None = None,
) -> tuple[bytes, str | None, bool]:
    """Settle a payment in ``unknown`` by hand (the person checked the channel's console),
    recording who, why and the evidence with the move. Returns the payment's JSON, the
    merchant event recorded and whether it is a replay (same Idempotency-Key and request)."""
    now = now_utc()
    async with db.begin() as conn:
        if claim is not None:
            answer = await conn.run_sync(stored_answer, merchant.merchant_id, claim)
            if answer is not None:
                return answer.body, None, True
        pay = (
            await conn.execute(
                sa.select(pay_orders).where(
                    pay_orders.c.pay_no == pay_no, pay_orders.c.merchant_id == merchant.merchant_id
                )
            )
        ).first()
        if pay is None:
            raise NotFound(f"no payment {pay_no!r}", param="pay_no")
        if pay.status != PayStatus.UNKNOWN:
            raise Conflict(
                f"payment {pay_no} is {pay.status}: only a payment in 'unknown' is settled by hand",
                code="payment_not_unknown",
                param="pay_no",
            )
        values: dict[str, Any]
        if decision.action == "paid":
            values = {
                "paid_at": now,
                "paid_minor": pay.amount_minor,
                "channel_trade_no": decision.evidence.get("channel_trade_no")
                or pay.channel_trade_no,
                "failure_code": None,
                "failure_message": None,
            }
        else:
            values = {"failure_code": "RESOLVED_FAILED", "failure_message": decision.reason[:512]}
        moved = await transition(conn, pay, RESOLUTION_EVENTS[decision.action], now, **values)
        await resolutions.record(conn, merchant, "payment", pay_no, decision, now)
        row = (
            await conn.execute(
                sa.select(pay_orders, trade_orders.c.merchant_order_no, trade_orders.c.metadata)
                .join(trade_orders, trade_orders.c.trade_no == pay_orders.c.trade_no)
                .where(pay_orders.c.pay_no == pay_no)
            )
        ).one()
        body = orjson.dumps(payment_object(row, row))
        if claim is not None:
            await conn.run_sync(remember, merchant.merchant_id, claim, StoredAnswer(200, body), now)
    return body, moved.event_id, False


async def supersede(db: Database, pay_no: str) -> Moved | None:
    """A newer attempt replaces this one (closed at its channel first, when it was there)."""
    return await _apply(db, pay_no, PayEvent.SUPERSEDED)


async def close(db: Database, pay_no: str) -> Moved | None:
    """The order is closed at the channel (expired, or closed there): close it here."""
    return await _apply(db, pay_no, PayEvent.CLOSED)


async def mark_checked(db: Database, pay_no: str) -> None:
    """Record that the channel was asked about this order and had nothing new to say."""
    async with db.begin() as conn:
        await conn.execute(
            pay_orders.update().where(pay_orders.c.pay_no == pay_no).values(checked_at=now_utc())
        )
