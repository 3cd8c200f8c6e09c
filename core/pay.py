"""The pay core for one attempt: prepay progress, channel results and payments applied.

Every move is a compare-and-set through the tables in ``core.states``; every function here
is safe to run twice (jobs and callbacks are delivered at least once).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from core import context
from core.anomalies import record_anomaly
from core.events import record_payment_event
from core.payments import PREPAY_JOB
from core.states import (
    PAY_WAITING,
    TRADE_EVENT_FOR_PAY,
    IllegalTransition,
    PayEvent,
    PayStatus,
    TradeStatus,
    next_pay_status,
    next_trade_status,
)
from core.store.cas import again_if_stale, compare_and_set
from core.store.db import Database
from core.store.tables import outbox, pay_orders, trade_orders

EVENT_FOR_STATUS = {
    PayStatus.PAID: "payment.succeeded",
    PayStatus.PREPAY_FAILED: "payment.failed",
    PayStatus.CLOSED: "payment.closed",
}


def _now() -> datetime:
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


async def _transition(
    conn: AsyncConnection, pay: Row[Any], event: PayEvent, now: datetime, **values: Any
) -> Moved:
    """Compare-and-set one pay order (and its trade, and the event it owes)."""
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
    trade_event = TRADE_EVENT_FOR_PAY.get(target)
    if trade_event is not None:
        trade = (
            await conn.execute(
                sa.select(trade_orders.c.status, trade_orders.c.version).where(
                    trade_orders.c.trade_no == pay.trade_no
                )
            )
        ).one()
        await compare_and_set(
            conn,
            trade_orders,
            trade_orders.c.trade_no,
            pay.trade_no,
            status=trade.status,
            version=trade.version,
            to=next_trade_status(TradeStatus(trade.status), trade_event),
            now=now,
        )
    if target not in PAY_WAITING:
        # The prepay job's work is done (credential stored, or the order settled otherwise).
        await _settle_outbox(conn, pay.pay_no, now)
    event_type = EVENT_FOR_STATUS.get(target)
    event_id = None
    if event_type is not None:
        event_id = await record_payment_event(conn, event_type, pay.pay_no, now=now)
    return Moved(target, event_id)


async def _settle_outbox(conn: AsyncConnection, pay_no: str, now: datetime) -> None:
    await conn.execute(
        outbox.update()
        .where(outbox.c.kind == PREPAY_JOB, outbox.c.ref == pay_no, outbox.c.status == "pending")
        .values(status="done", done_at=now)
    )


class PrepayStart(enum.Enum):
    FRESH = "fresh"  # we moved pending → prepaying: nothing was sent yet
    RESUMED = "resumed"  # it was already prepaying: an earlier try may have reached the channel
    NOTHING_TO_DO = "nothing_to_do"


async def start_prepay(db: Database, pay_no: str) -> tuple[PrepayStart, Row[Any] | None]:
    return await again_if_stale(lambda: _start_prepay(db, pay_no))


async def _start_prepay(db: Database, pay_no: str) -> tuple[PrepayStart, Row[Any] | None]:
    now = _now()
    async with db.begin() as conn:
        pay = (
            await conn.execute(sa.select(pay_orders).where(pay_orders.c.pay_no == pay_no))
        ).first()
        if pay is None:
            return PrepayStart.NOTHING_TO_DO, None
        if pay.status == PayStatus.PREPAYING:
            return PrepayStart.RESUMED, pay
        if pay.status != PayStatus.PENDING:
            await _settle_outbox(conn, pay_no, now)
            return PrepayStart.NOTHING_TO_DO, pay
        await _transition(conn, pay, PayEvent.START_PREPAY, now)
        fresh = (
            await conn.execute(sa.select(pay_orders).where(pay_orders.c.pay_no == pay_no))
        ).one()
    return PrepayStart.FRESH, fresh


async def _apply(db: Database, pay_no: str, event: PayEvent, **values: Any) -> Moved | None:
    return await again_if_stale(lambda: _apply_once(db, pay_no, event, **values))


async def _apply_once(db: Database, pay_no: str, event: PayEvent, **values: Any) -> Moved | None:
    """Apply ``event`` if the table allows it from the current state; None if it does not."""
    now = _now()
    async with db.begin() as conn:
        pay = (
            await conn.execute(sa.select(pay_orders).where(pay_orders.c.pay_no == pay_no))
        ).first()
        if pay is None:
            return None
        try:
            return await _transition(conn, pay, event, now, **values)
        except IllegalTransition:
            return None


async def credential_ready(
    db: Database, pay_no: str, credential: dict[str, str], channel_trade_no: str | None
) -> Moved | None:
    return await _apply(
        db,
        pay_no,
        PayEvent.CREDENTIAL_READY,
        credential=credential,
        channel_trade_no=channel_trade_no,
    )


async def prepay_failed(db: Database, pay_no: str, code: str, message: str) -> Moved | None:
    return await _apply(
        db, pay_no, PayEvent.PREPAY_REJECTED, failure_code=code[:64], failure_message=message[:512]
    )


async def close(db: Database, pay_no: str) -> Moved | None:
    """The order is closed at the channel (expired, or closed there): close it here."""
    return await _apply(db, pay_no, PayEvent.CLOSED)


async def mark_checked(db: Database, pay_no: str) -> None:
    """Record that the channel was asked about this order and had nothing new to say."""
    async with db.begin() as conn:
        await conn.execute(
            pay_orders.update().where(pay_orders.c.pay_no == pay_no).values(checked_at=_now())
        )


@dataclass(frozen=True, slots=True)
class PaymentReport:
    """A channel's word that an order was paid (from a verified callback or a query)."""

    channel_account_id: str
    out_trade_no: str
    amount_minor: int | None
    currency: str | None
    channel_trade_no: str | None
    paid_at: datetime | None
    source_id: str  # the callback's event id, or "query:<pay_no>"
    # Set when the channel's merchant/app ids differ from the account's.
    account_mismatch: str | None = None


class ApplyOutcome(enum.StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # already paid: nothing to do
    ANOMALY = "anomaly"  # recorded, not applied
    UNKNOWN_ORDER = "unknown_order"
    NOT_APPLICABLE = "not_applicable"  # e.g. closed here: needs a human or a refund


async def apply_payment(db: Database, report: PaymentReport) -> tuple[ApplyOutcome, str | None]:
    """Mark the order paid after cross-checking the report against it (see
    ``_apply_payment_once``); a concurrent change (a duplicate callback, a query) makes it
    decide again on the new state, so duplicates end as DUPLICATE, not as an error."""
    return await again_if_stale(lambda: _apply_payment_once(db, report))


async def _apply_payment_once(
    db: Database, report: PaymentReport
) -> tuple[ApplyOutcome, str | None]:
    """Mark the order paid after cross-checking the report against it.

    A mismatch (amount, currency, merchant/app id) does NOT mark the order paid: it records
    an anomaly for review, and the caller still acknowledges the channel, because the
    channel would otherwise retry the same wrong data for a day without changing anything.
    """
    now = _now()
    async with db.begin() as conn:
        pay = (
            await conn.execute(
                sa.select(pay_orders).where(
                    pay_orders.c.pay_no == report.out_trade_no,
                    pay_orders.c.channel_account_id == report.channel_account_id,
                )
            )
        ).first()
        if pay is None:
            return ApplyOutcome.UNKNOWN_ORDER, None
        context.bind_trace(pay.trace_id)
        problems = _mismatches(pay, report)
        if problems:
            await _record_anomaly(conn, pay.pay_no, "payment_mismatch", report, problems, now)
            return ApplyOutcome.ANOMALY, None
        if pay.status == PayStatus.PAID:
            return ApplyOutcome.DUPLICATE, None
        try:
            moved = await _transition(
                conn,
                pay,
                PayEvent.PAYMENT_SUCCEEDED,
                now,
                paid_at=report.paid_at or now,
                channel_trade_no=report.channel_trade_no or pay.channel_trade_no,
            )
        except IllegalTransition:
            await _record_anomaly(
                conn, pay.pay_no, "paid_in_state", report, [f"order is {pay.status}"], now
            )
            return ApplyOutcome.NOT_APPLICABLE, None
    return ApplyOutcome.APPLIED, moved.event_id


def _mismatches(pay: Row[Any], report: PaymentReport) -> list[str]:
    problems = []
    if report.account_mismatch:
        problems.append(report.account_mismatch)
    if report.amount_minor != pay.amount_minor:
        problems.append(f"amount {report.amount_minor} != ordered {pay.amount_minor}")
    if report.currency != pay.currency:
        problems.append(f"currency {report.currency} != ordered {pay.currency}")
    return problems


async def _record_anomaly(
    conn: AsyncConnection,
    pay_no: str,
    kind: str,
    report: PaymentReport,
    problems: list[str],
    now: datetime,
) -> None:
    detail = {
        "problems": problems,
        "reported_amount": report.amount_minor,
        "reported_currency": report.currency,
        "channel_trade_no": report.channel_trade_no,
    }
    await record_anomaly(conn, pay_no, kind, report.source_id, detail, now)
