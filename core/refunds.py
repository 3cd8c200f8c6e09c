"""Refunds: creating one within what was paid, its progress at the channel, its end.

A refund holds its amount against the pay order from the moment it is created
(``pay_orders.refunded_minor``, raised by one conditional UPDATE), so refunds asked for at
the same time can never add up to more than was paid; a failed refund gives it back. Every
move is a compare-and-set through ``core.states.REFUND_TRANSITIONS``; every function here is
safe to run twice.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from core import context, ids
from core.anomalies import record_anomaly
from core.errors import Conflict, InvalidRequest, NotFound
from core.events import record_refund_event
from core.idempotency import IdempotencyClaim, StoredAnswer, remember, stored_answer
from core.merchants import MerchantAuth
from core.outbox import mark_done
from core.states import (
    PAY_RECEIVED,
    REFUND_TERMINAL,
    IllegalTransition,
    RefundEvent,
    RefundStatus,
    next_refund_status,
)
from core.store.cas import again_if_stale, compare_and_set
from core.store.db import Database
from core.store.tables import outbox, pay_orders, refund_orders, trade_orders
from core.views import AsRow, refund_object

REFUND_JOB = "refund"

EVENT_FOR_STATUS = {
    RefundStatus.SUCCEEDED: "refund.succeeded",
    RefundStatus.FAILED: "refund.failed",
}


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class NewRefund:
    """A validated refund request; ``amount_minor`` None means all that is left."""

    pay_no: str
    amount_minor: int | None = None
    reason: str | None = None
    merchant_refund_no: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CreatedRefund:
    status: int
    body: bytes
    replayed: bool
    refund_no: str


async def create_refund(
    db: Database,
    merchant: MerchantAuth,
    new: NewRefund,
    *,
    claim: IdempotencyClaim | None,
    now: datetime | None = None,
) -> CreatedRefund:
    """Hold the amount against the pay order and write the refund and its outbox row, in
    one transaction; the caller enqueues the refund job after it returns."""
    now = now or _now()
    try:
        return await db.run_write(
            _write_refund, merchant, new, claim, context.current_trace_id(), now
        )
    except IntegrityError as exc:
        if claim is not None:
            async with db.read() as conn:
                answer = await conn.run_sync(stored_answer, merchant.merchant_id, claim)
            if answer is not None:
                return _replayed(answer)
        if new.merchant_refund_no is not None:
            raise Conflict(
                f"merchant_refund_no {new.merchant_refund_no!r} is already used",
                code="merchant_refund_no_taken",
                param="merchant_refund_no",
            ) from exc
        raise Conflict("the refund conflicts with one being created at the same time") from exc


def _replayed(answer: StoredAnswer) -> CreatedRefund:
    refund_no = orjson.loads(answer.body).get("refund_no", "")
    return CreatedRefund(answer.status, answer.body, True, refund_no)


def _write_refund(
    conn: sa.Connection,
    merchant: MerchantAuth,
    new: NewRefund,
    claim: IdempotencyClaim | None,
    trace_id: str | None,
    now: datetime,
) -> CreatedRefund:
    if claim is not None:
        answer = stored_answer(conn, merchant.merchant_id, claim)
        if answer is not None:
            return _replayed(answer)
    pay = conn.execute(
        sa.select(pay_orders).where(
            pay_orders.c.pay_no == new.pay_no, pay_orders.c.merchant_id == merchant.merchant_id
        )
    ).first()
    if pay is None:
        raise NotFound(f"no payment {new.pay_no!r}", param="pay_no")
    kind = conn.execute(
        sa.select(trade_orders.c.kind).where(trade_orders.c.trade_no == pay.trade_no)
    ).scalar_one()
    if kind == "recharge":
        # The money is in a wallet now, not the merchant's: it leaves by a withdrawal.
        raise Conflict(
            f"payment {pay.pay_no} is a wallet recharge: it is not refunded",
            code="recharge_not_refundable",
            param="pay_no",
        )
    if pay.status not in PAY_RECEIVED:
        raise Conflict(
            f"payment {pay.pay_no} is {pay.status}: only a paid payment can be refunded",
            code="payment_not_refundable",
            param="pay_no",
        )
    left = _received(pay) - pay.refunded_minor
    amount = new.amount_minor if new.amount_minor is not None else left
    if left <= 0:
        raise Conflict(
            f"payment {pay.pay_no} is refunded in full already",
            code="payment_fully_refunded",
            param="pay_no",
        )
    # Evaluated against the row as it is when the update locks it: two refunds racing for
    # the same money cannot both pass.
    held = conn.execute(_hold(pay.pay_no, amount))
    if held.rowcount != 1 and claim is not None:
        # A request with the same key may have held this money while we waited for its
        # lock (PostgreSQL): now committed, its answer is visible to this statement.
        answer = stored_answer(conn, merchant.merchant_id, claim)
        if answer is not None:
            return _replayed(answer)
    if held.rowcount != 1:
        fresh = conn.execute(sa.select(pay_orders).where(pay_orders.c.pay_no == pay.pay_no)).one()
        raise InvalidRequest(
            f"amount {amount} is more than the {_received(fresh) - fresh.refunded_minor} "
            "that can still be refunded",
            code="amount_exceeds_refundable",
            param="amount",
        )
    refund = _refund_row(
        pay, amount, new.reason, new.merchant_refund_no, new.metadata, trace_id, now
    )
    conn.execute(refund_orders.insert(), refund)
    conn.execute(outbox.insert(), _owed(str(refund["refund_no"]), now))
    body = orjson.dumps(refund_object(AsRow(refund)))
    if claim is not None:
        remember(conn, merchant.merchant_id, claim, StoredAnswer(201, body), now)
    return CreatedRefund(201, body, False, str(refund["refund_no"]))


def _received(pay: Any) -> int:
    """What the channel says was received for the pay order."""
    return int(pay.paid_minor if pay.paid_minor is not None else pay.amount_minor)


def _hold(pay_no: str, amount: int) -> sa.Update:
    # Evaluated against the row as it is when the update locks it: two refunds racing for
    # the same money cannot both pass.
    received = sa.func.coalesce(pay_orders.c.paid_minor, pay_orders.c.amount_minor)
    return (
        pay_orders.update()
        .where(
            pay_orders.c.pay_no == pay_no,
            pay_orders.c.status.in_(tuple(PAY_RECEIVED)),
            pay_orders.c.refunded_minor + amount <= received,
        )
        .values(refunded_minor=pay_orders.c.refunded_minor + amount)
    )


def _owed(refund_no: str, now: datetime) -> dict[str, Any]:
    return {"kind": REFUND_JOB, "ref": refund_no, "status": "pending", "created_at": now}


def _refund_row(
    pay: Any,
    amount: int,
    reason: str | None,
    merchant_refund_no: str | None,
    metadata: dict[str, str],
    trace_id: str | None,
    now: datetime,
) -> dict[str, Any]:
    return {
        "refund_no": ids.new_refund_no(),
        "pay_no": pay.pay_no,
        "trade_no": pay.trade_no,
        "merchant_id": pay.merchant_id,
        "channel_account_id": pay.channel_account_id,
        "channel": pay.channel,
        "merchant_refund_no": merchant_refund_no,
        "amount_minor": amount,
        "currency": pay.currency,
        "reason": reason,
        "metadata": metadata,
        "status": RefundStatus.PENDING,
        "version": 0,
        "channel_refund_no": None,
        "failure_code": None,
        "failure_message": None,
        "livemode": pay.livemode,
        "succeeded_at": None,
        "checked_at": None,
        "trace_id": trace_id or pay.trace_id,
        "created_at": now,
        "updated_at": now,
    }


async def refund_automatically(
    conn: AsyncConnection, pay_no: str, reason: str, now: datetime
) -> str:
    """Refund all that is left of a pay order, in the caller's transaction: payfront's own
    refunds of money it was not asked to keep (a duplicate, late or partial payment, per
    policy). The refund job is owed through the outbox (the sweeper enqueues it)."""
    pay = (await conn.execute(sa.select(pay_orders).where(pay_orders.c.pay_no == pay_no))).one()
    amount = _received(pay) - pay.refunded_minor
    held = await conn.execute(_hold(pay_no, amount))
    if amount <= 0 or held.rowcount != 1:
        raise Conflict(f"payment {pay_no} has nothing left to refund")
    refund = _refund_row(pay, amount, reason, None, {"automatic": "true"}, None, now)
    await conn.execute(refund_orders.insert(), refund)
    await conn.execute(outbox.insert(), _owed(str(refund["refund_no"]), now))
    return str(refund["refund_no"])


async def get_refund(db: Database, merchant_id: str, refund_no: str) -> dict[str, Any]:
    async with db.read() as conn:
        row = (
            await conn.execute(
                sa.select(refund_orders).where(
                    refund_orders.c.refund_no == refund_no,
                    refund_orders.c.merchant_id == merchant_id,
                )
            )
        ).first()
    if row is None:
        raise NotFound(f"no refund {refund_no!r}", param="refund_no")
    return refund_object(row)


async def list_refunds(db: Database, merchant_id: str, pay_no: str) -> list[dict[str, Any]]:
    """A payment's refunds, oldest first (NotFound for another merchant's payment)."""
    async with db.read() as conn:
        owner = (
            await conn.execute(
                sa.select(pay_orders.c.merchant_id).where(pay_orders.c.pay_no == pay_no)
            )
        ).scalar()
        if owner != merchant_id:
            raise NotFound(f"no payment {pay_no!r}", param="pay_no")
        rows = (
            await conn.execute(
                sa.select(refund_orders)
                .where(refund_orders.c.pay_no == pay_no)
                .order_by(refund_orders.c.created_at, refund_orders.c.refund_no)
            )
        ).all()
    return [refund_object(row) for row in rows]


async def load_refund(db: Database, refund_no: str) -> Row[Any] | None:
    async with db.read() as conn:
        return (
            await conn.execute(
                sa.select(refund_orders).where(refund_orders.c.refund_no == refund_no)
            )
        ).first()


class RefundStart(enum.Enum):
    FRESH = "fresh"  # pending → submitting: nothing was sent yet
    RESUMED = "resumed"  # already submitting: an earlier try may have reached the channel
    NOTHING_TO_DO = "nothing_to_do"


async def start_refund(db: Database, refund_no: str) -> tuple[RefundStart, Row[Any] | None]:
    return await again_if_stale(lambda: _start_refund(db, refund_no))


async def _start_refund(db: Database, refund_no: str) -> tuple[RefundStart, Row[Any] | None]:
    now = _now()
    async with db.begin() as conn:
        refund = await _select(conn, refund_no)
        if refund is None:
            return RefundStart.NOTHING_TO_DO, None
        if refund.status == RefundStatus.SUBMITTING:
            return RefundStart.RESUMED, refund
        if refund.status != RefundStatus.PENDING:
            # Accepted (the check job follows it) or finished.
            await mark_done(conn, REFUND_JOB, refund_no, now)
            return RefundStart.NOTHING_TO_DO, refund
        await _transition(conn, refund, RefundEvent.SUBMIT, now)
        fresh = await _select(conn, refund_no)
    return RefundStart.FRESH, fresh


async def _select(conn: AsyncConnection, refund_no: str) -> Row[Any] | None:
    return (
        await conn.execute(sa.select(refund_orders).where(refund_orders.c.refund_no == refund_no))
    ).first()


async def _transition(
    conn: AsyncConnection, refund: Row[Any], event: RefundEvent, now: datetime, **values: Any
) -> str | None:
    """Compare-and-set one refund; a failure gives its amount back to the pay order. Returns
    the merchant event recorded, if any."""
    target = next_refund_status(RefundStatus(refund.status), event)
    await compare_and_set(
        conn,
        refund_orders,
        refund_orders.c.refund_no,
        refund.refund_no,
        status=refund.status,
        version=refund.version,
        to=target,
        now=now,
        **values,
    )
    if target is RefundStatus.FAILED:
        await conn.execute(
            pay_orders.update()
            .where(pay_orders.c.pay_no == refund.pay_no)
            .values(refunded_minor=pay_orders.c.refunded_minor - refund.amount_minor)
        )
    if target is not RefundStatus.SUBMITTING:
        await mark_done(conn, REFUND_JOB, refund.refund_no, now)
    event_type = EVENT_FOR_STATUS.get(target)
    if event_type is None:
        return None
    return await record_refund_event(conn, event_type, refund.refund_no, now=now)


class RefundOutcome(enum.StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # the refund is already there (or further): nothing to do
    ANOMALY = "anomaly"  # recorded for review, not applied
    UNKNOWN_REFUND = "unknown_refund"


@dataclass(frozen=True, slots=True)
class RefundReport:
    """A channel's word on one refund (its refund answer, a query, or a verified callback)."""

    channel_account_id: str
    refund_no: str
    pay_no: str | None
    status: RefundStatus  # PROCESSING, SUCCEEDED or FAILED
    source_id: str  # the callback's event id, or "refund:<refund_no>" / "query:<refund_no>"
    amount_minor: int | None = None
    currency: str | None = None
    channel_refund_no: str | None = None
    succeeded_at: datetime | None = None
    failure_code: str | None = None
    failure_message: str | None = None


_EVENT_FOR_REPORT = {
    RefundStatus.PROCESSING: RefundEvent.ACCEPTED,
    RefundStatus.SUCCEEDED: RefundEvent.SUCCEEDED,
    RefundStatus.FAILED: RefundEvent.FAILED,
}


async def apply_refund(db: Database, report: RefundReport) -> tuple[RefundOutcome, str | None]:
    """Apply what the channel says about a refund, cross-checked against it; returns the
    outcome and the merchant event recorded (if any)."""
    return await again_if_stale(lambda: _apply_refund_once(db, report))


async def _apply_refund_once(
    db: Database, report: RefundReport
) -> tuple[RefundOutcome, str | None]:
    now = _now()
    async with db.begin() as conn:
        refund = (
            await conn.execute(
                sa.select(refund_orders).where(
                    refund_orders.c.refund_no == report.refund_no,
                    refund_orders.c.channel_account_id == report.channel_account_id,
                )
            )
        ).first()
        if refund is None:
            return await _unknown_refund(conn, report, now), None
        context.bind_trace(refund.trace_id)
        problems = _mismatches(refund, report)
        current = RefundStatus(refund.status)
        if not problems and current in REFUND_TERMINAL and report.status is not current:
            if report.status is RefundStatus.PROCESSING:
                return RefundOutcome.DUPLICATE, None  # older news than what we hold
            problems = [f"channel says {report.status}, refund is {current}"]
        if problems:
            await record_anomaly(
                conn,
                refund.pay_no,
                "refund_mismatch",
                report.source_id,
                {
                    "refund_no": refund.refund_no,
                    "problems": problems,
                    "reported_status": report.status,
                    "reported_amount": report.amount_minor,
                    "reported_currency": report.currency,
                    "channel_refund_no": report.channel_refund_no,
                },
                now,
            )
            return RefundOutcome.ANOMALY, None
        if current is report.status:
            return RefundOutcome.DUPLICATE, None
        values: dict[str, Any] = {
            "channel_refund_no": report.channel_refund_no or refund.channel_refund_no
        }
        if report.status is RefundStatus.SUCCEEDED:
            values["succeeded_at"] = report.succeeded_at or now
        if report.status is RefundStatus.FAILED:
            values["failure_code"] = (report.failure_code or "REFUND_FAILED")[:64]
            values["failure_message"] = (report.failure_message or "")[:512]
        try:
            event_id = await _transition(
                conn, refund, _EVENT_FOR_REPORT[report.status], now, **values
            )
        except IllegalTransition:
            # e.g. PROCESSING reported for a refund still pending here: nothing was sent yet,
            # so this cannot be about our refund's current attempt.
            return RefundOutcome.DUPLICATE, None
    return RefundOutcome.APPLIED, event_id


async def _unknown_refund(
    conn: AsyncConnection, report: RefundReport, now: datetime
) -> RefundOutcome:
    """A refund we did not make, of an order we hold (made in the channel's own merchant
    console, say): money moved, so it is recorded for review and acknowledged."""
    if report.pay_no is None:
        return RefundOutcome.UNKNOWN_REFUND
    pay = (
        await conn.execute(
            sa.select(pay_orders.c.pay_no).where(
                pay_orders.c.pay_no == report.pay_no,
                pay_orders.c.channel_account_id == report.channel_account_id,
            )
        )
    ).first()
    if pay is None:
        return RefundOutcome.UNKNOWN_REFUND
    detail = {
        "refund_no": report.refund_no,
        "problems": ["refund not made through payfront"],
        "reported_status": report.status,
        "reported_amount": report.amount_minor,
        "channel_refund_no": report.channel_refund_no,
    }
    await record_anomaly(conn, pay.pay_no, "refund_unknown", report.source_id, detail, now)
    return RefundOutcome.ANOMALY


def _mismatches(refund: Row[Any], report: RefundReport) -> list[str]:
    problems = []
    if report.amount_minor is not None and report.amount_minor != refund.amount_minor:
        problems.append(f"amount {report.amount_minor} != refund {refund.amount_minor}")
    if report.currency is not None and report.currency != refund.currency:
        problems.append(f"currency {report.currency} != refund {refund.currency}")
    return problems


async def mark_refund_checked(db: Database, refund_no: str) -> None:
    """Record that the channel was asked about this refund and had nothing new to say."""
    async with db.begin() as conn:
        await conn.execute(
            refund_orders.update()
            .where(refund_orders.c.refund_no == refund_no)
            .values(checked_at=_now())
        )
