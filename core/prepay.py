"""The prepay job's own moves: pending → prepaying (with the trade's snapshot), and
prepaying → awaiting_payment with the credential, each one write transaction in one hop
(``Database.run_write``). Other moves of a pay order are ``core.pay``'s."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from core.attempts import OPEN_ATTEMPT
from core.errors import StaleState
from core.outbox import MARK_DONE, done_params
from core.pay import EVENT_FOR_MOVE, PAY_CAS, Moved, now_utc
from core.payments import PREPAY_JOB
from core.states import (
    PAY_WAITING,
    TRADE_EVENT_FOR_PAY,
    IllegalTransition,
    PayEvent,
    PayStatus,
    next_pay_status,
)
from core.store.cas import again_if_stale
from core.store.db import Database
from core.store.tables import pay_orders, trade_orders


class PrepayStart(enum.Enum):
    FRESH = "fresh"  # we moved pending → prepaying: nothing was sent yet
    RESUMED = "resumed"  # it was already prepaying: an earlier try may have reached the channel
    NOTHING_TO_DO = "nothing_to_do"


@dataclass(frozen=True, slots=True)
class PrepayBegun:
    """Where a prepay job starts from, read in the transaction that started it."""

    start: PrepayStart
    pay: Row[Any] | None
    # The trade, and its other attempts that may still be paid at their channel (the job
    # settles those first; the usual case is none). None when there is nothing to do.
    trade: Row[Any] | None = None
    earlier_open: tuple[Row[Any], ...] = ()


async def begin_prepay(db: Database, pay_no: str) -> PrepayBegun:
    """pending → prepaying (or resumed, or nothing to do), with the trade's snapshot: one
    write transaction in one hop (``Database.run_write``)."""
    return await again_if_stale(lambda: db.run_write(_begin_prepay, pay_no, now_utc()))


async def start_prepay(db: Database, pay_no: str) -> tuple[PrepayStart, Row[Any] | None]:
    begun = await begin_prepay(db, pay_no)
    return begun.start, begun.pay


_SELECT_PAY = sa.select(pay_orders).where(pay_orders.c.pay_no == sa.bindparam("pay_no"))
_SELECT_TRADE = sa.select(trade_orders).where(trade_orders.c.trade_no == sa.bindparam("trade_no"))
_EARLIER_OPEN = sa.select(pay_orders).where(
    pay_orders.c.trade_no == sa.bindparam("trade_no"),
    pay_orders.c.pay_no != sa.bindparam("pay_no"),
    pay_orders.c.status.in_(OPEN_ATTEMPT),
)


def _begin_prepay(conn: sa.Connection, pay_no: str, now: datetime) -> PrepayBegun:
    pay = conn.execute(_SELECT_PAY, {"pay_no": pay_no}).first()
    if pay is None:
        return PrepayBegun(PrepayStart.NOTHING_TO_DO, None)
    if pay.status == PayStatus.PREPAYING:
        start = PrepayStart.RESUMED
    elif pay.status != PayStatus.PENDING:
        conn.execute(MARK_DONE, done_params(PREPAY_JOB, pay_no, now))
        return PrepayBegun(PrepayStart.NOTHING_TO_DO, pay)
    else:
        start, pay = PrepayStart.FRESH, _move_prepay(conn, pay, PayEvent.START_PREPAY, now)
    trade = conn.execute(_SELECT_TRADE, {"trade_no": pay.trade_no}).one()
    earlier = conn.execute(_EARLIER_OPEN, {"trade_no": pay.trade_no, "pay_no": pay_no}).all()
    return PrepayBegun(start, pay, trade, tuple(earlier))


def _move_prepay(
    conn: sa.Connection, pay: Row[Any], event: PayEvent, now: datetime, **values: Any
) -> Row[Any]:
    """``transition`` for the prepay's own moves (START_PREPAY, CREDENTIAL_READY), in plain
    synchronous SQLAlchemy: by the tables they move neither the trade nor record an event,
    so the pay order's compare-and-set (``StaleState`` when another writer was first) and,
    on leaving PAY_WAITING, the prepay's outbox row done are the whole move. Returns the row
    as updated; raises ``IllegalTransition`` before writing when the table refuses."""
    if event in TRADE_EVENT_FOR_PAY or EVENT_FOR_MOVE.get(event) is not None:
        raise ValueError(f"{event} moves the trade or records an event: use transition()")
    target = next_pay_status(PayStatus(pay.status), event)
    moved = conn.execute(
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
    if moved is None:
        raise StaleState(pay.pay_no)
    if target not in PAY_WAITING:
        conn.execute(MARK_DONE, done_params(PREPAY_JOB, pay.pay_no, now))
    return moved


async def credential_ready(
    db: Database, pay_no: str, credential: dict[str, str], channel_trade_no: str | None
) -> Moved | None:
    """prepaying → awaiting_payment with the shopper's credential; None when the order is no
    longer prepaying. One write transaction in one hop (``Database.run_write``)."""
    return await again_if_stale(
        lambda: db.run_write(_credential_ready, pay_no, credential, channel_trade_no, now_utc())
    )


def _credential_ready(
    conn: sa.Connection,
    pay_no: str,
    credential: dict[str, str],
    channel_trade_no: str | None,
    now: datetime,
) -> Moved | None:
    pay = conn.execute(_SELECT_PAY, {"pay_no": pay_no}).first()
    if pay is None:
        return None
    values = {"credential": credential, "channel_trade_no": channel_trade_no}
    try:
        moved = _move_prepay(conn, pay, PayEvent.CREDENTIAL_READY, now, **values)
    except IllegalTransition:
        return None
    return Moved(PayStatus(moved.status), None)
