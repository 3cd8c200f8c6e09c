"""Money a channel says it received for a pay order (a verified callback, or a query), and
what payfront does with it: the plain case marks the order paid; the exceptions are decided
here, each leaving an anomaly as its trail.

- **Mismatch** (currency, merchant/app id, more than asked): recorded, nothing applied.
- **Partial payment** (less than asked): ``partially_paid``; per the merchant's
  ``partial_payment_policy``, refunded automatically (``refund``, the default; the trade
  counts the attempt as failed and a new attempt may follow) or kept (``accept``: the trade
  is ``partially_paid``).
- **Late payment** (the order was closed here, or its trade was): ``paid``, the trade stays
  closed; per ``late_payment_policy``, refunded automatically (``refund``, the default) or
  held for a person to decide (``hold``: the anomaly stays open).
- **Duplicate payment** (another attempt of the trade was paid first): ``paid`` and always
  refunded automatically; the merchant is told with ``payment.duplicate``.

A recharge (a trade that tops up a wallet) credits its wallet when paid in full, in the same
transaction; a partial recharge is always refunded, whatever the policy.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from core import context, refunds, resolutions, wallets
from core.anomalies import record_anomaly
from core.merchants import MerchantAuth
from core.pay import record_paid, transition
from core.states import (
    PAY_RECEIVED,
    IllegalTransition,
    PayEvent,
    PayStatus,
    TradeEvent,
    TradeStatus,
)
from core.store.cas import again_if_stale
from core.store.db import Database
from core.store.tables import anomalies, merchants, pay_orders, trade_orders

PARTIAL_POLICIES = frozenset({"refund", "accept"})
LATE_POLICIES = frozenset({"refund", "hold"})


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
    DUPLICATE = "duplicate"  # the same news again: nothing to do
    ANOMALY = "anomaly"  # recorded, not applied
    UNKNOWN_ORDER = "unknown_order"
    PARTIAL = "partial_payment"
    LATE = "late_payment"
    DUPLICATE_PAYMENT = "duplicate_payment"  # a second attempt of a paid trade was paid


def _now() -> datetime:
    return datetime.now(UTC)


async def apply_payment(db: Database, report: PaymentReport) -> tuple[ApplyOutcome, str | None]:
    """Apply what the channel reports (see the module docstring); a concurrent change (a
    duplicate callback, a query) makes it decide again on the new state. Returns the outcome
    and the merchant event recorded, if any."""
    plain = await again_if_stale(lambda: db.run_write_grouped(_apply_plain, report))
    if plain is None:
        return await again_if_stale(lambda: _apply_once(db, report))
    outcome, event_id, trace_id = plain
    if outcome is not ApplyOutcome.UNKNOWN_ORDER:
        context.bind_trace(trace_id)
    return outcome, event_id


# The pay order with what deciding and applying a payment needs of its trade, in one SELECT.
_PAY_WITH_TRADE = (
    sa.select(
        pay_orders,
        trade_orders.c.status.label("trade_status"),
        trade_orders.c.version.label("trade_version"),
        trade_orders.c.kind.label("trade_kind"),
        trade_orders.c.merchant_order_no,
        trade_orders.c.metadata,
    )
    .join(trade_orders, trade_orders.c.trade_no == pay_orders.c.trade_no)
    .where(
        pay_orders.c.pay_no == sa.bindparam("pay_no"),
        pay_orders.c.channel_account_id == sa.bindparam("account_id"),
    )
)


def _apply_plain(
    conn: sa.Connection, report: PaymentReport
) -> tuple[ApplyOutcome, str | None, str | None] | None:
    """The common cases — the order is unknown, the news is a duplicate, or it is a payment in
    full of a goods order awaiting it — decided and applied as one transaction of plain
    synchronous SQLAlchemy (``Database.run_write``: on SQLite one thread hop instead of one per
    statement) with one SELECT and ``core.pay.record_paid``'s five writes. Returns the outcome,
    the event recorded and the order's trace id; None, having written nothing, for anything
    else (a mismatch, a late, partial or duplicate payment, a recharge, a move a table
    refuses), which ``_apply_once`` decides by the same rules, reading again."""
    pay = conn.execute(
        _PAY_WITH_TRADE,
        {"pay_no": report.out_trade_no, "account_id": report.channel_account_id},
    ).first()
    if pay is None:
        return ApplyOutcome.UNKNOWN_ORDER, None, None
    problems = _mismatches(pay, report)
    if pay.status in PAY_RECEIVED and not problems:
        received = pay.paid_minor if pay.paid_minor is not None else pay.amount_minor
        if report.amount_minor in (None, received):
            return ApplyOutcome.DUPLICATE, None, pay.trace_id
        return None
    closed = pay.status == PayStatus.CLOSED or pay.trade_status == TradeStatus.CLOSED
    received_before = pay.trade_status in (TradeStatus.PAID, TradeStatus.PARTIALLY_PAID)
    if problems or closed or received_before or pay.trade_kind == "recharge":
        return None
    now = _now()
    values = _paid_values(pay, report, now)
    if values["paid_minor"] < pay.amount_minor:
        return None
    try:
        moved = record_paid(conn, pay, now, **values)
    except IllegalTransition:
        return None
    return ApplyOutcome.APPLIED, moved.event_id, pay.trace_id


def _paid_values(pay: Row[Any], report: PaymentReport, now: datetime) -> dict[str, Any]:
    """What a payment writes on its pay order, whatever the case."""
    return {
        "paid_at": report.paid_at or now,
        "paid_minor": report.amount_minor if report.amount_minor is not None else pay.amount_minor,
        "channel_trade_no": report.channel_trade_no or pay.channel_trade_no,
    }


async def _apply_once(db: Database, report: PaymentReport) -> tuple[ApplyOutcome, str | None]:
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
        if pay.status in PAY_RECEIVED and not problems:
            received = pay.paid_minor if pay.paid_minor is not None else pay.amount_minor
            if report.amount_minor in (None, received):
                return ApplyOutcome.DUPLICATE, None
            problems = [f"amount {report.amount_minor} != received {received}"]
        if problems:
            await _anomaly(conn, pay, "payment_mismatch", report, problems, now)
            return ApplyOutcome.ANOMALY, None
        trade = (
            await conn.execute(
                sa.select(
                    trade_orders.c.status, trade_orders.c.kind, trade_orders.c.wallet_id
                ).where(trade_orders.c.trade_no == pay.trade_no)
            )
        ).one()
        values = _paid_values(pay, report, now)
        try:
            if trade.status in (TradeStatus.PAID, TradeStatus.PARTIALLY_PAID):
                return await _duplicate(conn, pay, report, values, now)
            if pay.status == PayStatus.CLOSED or trade.status == TradeStatus.CLOSED:
                policy = await _policy(conn, pay.merchant_id)
                return await _late(conn, pay, report, values, policy.late_payment_policy, now)
            if values["paid_minor"] < pay.amount_minor:
                # A wallet is credited with what was asked or nothing: a partial recharge
                # is always refunded.
                policy = await _policy(conn, pay.merchant_id)
                keep = policy.partial_payment_policy == "accept" and trade.kind != "recharge"
                return await _partial(conn, pay, report, values, keep, now)
            moved = await transition(conn, pay, PayEvent.PAYMENT_SUCCEEDED, now, **values)
            if trade.kind == "recharge":
                await wallets.credit_recharge(
                    conn, trade.wallet_id, values["paid_minor"], pay.pay_no, now
                )
        except IllegalTransition:
            await _anomaly(conn, pay, "paid_in_state", report, [f"order is {pay.status}"], now)
            return ApplyOutcome.ANOMALY, None
    return ApplyOutcome.APPLIED, moved.event_id


async def _policy(conn: AsyncConnection, merchant_id: str) -> Any:
    """The merchant's policies, read only on the exceptional paths that need them (not for
    every payment applied)."""
    return (
        await conn.execute(
            sa.select(merchants.c.partial_payment_policy, merchants.c.late_payment_policy).where(
                merchants.c.id == merchant_id
            )
        )
    ).one()


async def _late(
    conn: AsyncConnection,
    pay: Row[Any],
    report: PaymentReport,
    values: dict[str, Any],
    policy: str,
    now: datetime,
) -> tuple[ApplyOutcome, str | None]:
    event = PayEvent.LATE_PAYMENT if pay.status == PayStatus.CLOSED else PayEvent.PAYMENT_SUCCEEDED
    moved = await transition(
        conn,
        pay,
        event,
        now,
        trade_event=None,  # the trade stays closed
        event_type="payment.late_succeeded",
        **values,
    )
    anomaly_id = await _anomaly(
        conn, pay, "late_payment", report, [f"paid after the order was closed ({policy})"], now
    )
    if policy == "refund":
        await _refund_now(conn, pay, anomaly_id, "late payment after close", now)
    return ApplyOutcome.LATE, moved.event_id


async def _partial(
    conn: AsyncConnection,
    pay: Row[Any],
    report: PaymentReport,
    values: dict[str, Any],
    keep: bool,
    now: datetime,
) -> tuple[ApplyOutcome, str | None]:
    moved = await transition(
        conn,
        pay,
        PayEvent.PARTIAL_PAYMENT,
        now,
        trade_event=TradeEvent.PARTIALLY_PAID if keep else TradeEvent.ATTEMPT_FAILED,
        **values,
    )
    problems = [f"paid {values['paid_minor']} of {pay.amount_minor}"]
    anomaly_id = await _anomaly(conn, pay, "partial_payment", report, problems, now)
    if keep:
        await _resolve_by_policy(
            conn, pay, anomaly_id, "accepted", "partial payment: kept by policy", {}, now
        )
    else:
        await _refund_now(conn, pay, anomaly_id, "partial payment", now)
    return ApplyOutcome.PARTIAL, moved.event_id


async def _duplicate(
    conn: AsyncConnection,
    pay: Row[Any],
    report: PaymentReport,
    values: dict[str, Any],
    now: datetime,
) -> tuple[ApplyOutcome, str | None]:
    # Closed here when the newer attempt superseded it, or still open in a race.
    event = PayEvent.LATE_PAYMENT if pay.status == PayStatus.CLOSED else PayEvent.PAYMENT_SUCCEEDED
    moved = await transition(
        conn,
        pay,
        event,
        now,
        trade_event=None,  # paid once already, by another attempt
        event_type="payment.duplicate",
        **values,
    )
    problems = ["another attempt of the trade was paid first"]
    anomaly_id = await _anomaly(conn, pay, "duplicate_payment", report, problems, now)
    await _refund_now(conn, pay, anomaly_id, "duplicate payment", now)
    return ApplyOutcome.DUPLICATE_PAYMENT, moved.event_id


async def _refund_now(
    conn: AsyncConnection, pay: Row[Any], anomaly_id: int | None, reason: str, now: datetime
) -> None:
    """Refund it all, and close the anomaly with payfront's own decision on the trail."""
    refund_no = await refunds.refund_automatically(conn, pay.pay_no, reason, now)
    await _resolve_by_policy(
        conn,
        pay,
        anomaly_id,
        "refunded",
        f"{reason}: refunded automatically by policy",
        {"refund_no": refund_no},
        now,
    )


async def _resolve_by_policy(
    conn: AsyncConnection,
    pay: Row[Any],
    anomaly_id: int | None,
    action: str,
    reason: str,
    evidence: dict[str, str],
    now: datetime,
) -> None:
    """Close the anomaly with payfront's own decision on the trail (actor ``payfront``)."""
    if anomaly_id is None:
        return
    await conn.execute(
        anomalies.update()
        .where(anomalies.c.id == anomaly_id)
        .values(status="resolved", resolved_at=now)
    )
    system = MerchantAuth(merchant_id=pay.merchant_id, livemode=pay.livemode, key_prefix="")
    decision = resolutions.Decision(
        action=action, actor="payfront", reason=reason, evidence=evidence
    )
    await resolutions.record(conn, system, "anomaly", str(anomaly_id), decision, now)


def _mismatches(pay: Row[Any], report: PaymentReport) -> list[str]:
    problems = []
    if report.account_mismatch:
        problems.append(report.account_mismatch)
    if report.amount_minor is not None and report.amount_minor > pay.amount_minor:
        problems.append(f"amount {report.amount_minor} > ordered {pay.amount_minor}")
    if report.amount_minor is not None and report.amount_minor <= 0:
        problems.append(f"amount {report.amount_minor} is not positive")
    if report.currency != pay.currency:
        problems.append(f"currency {report.currency} != ordered {pay.currency}")
    return problems


async def _anomaly(
    conn: AsyncConnection,
    pay: Row[Any],
    kind: str,
    report: PaymentReport,
    problems: list[str],
    now: datetime,
) -> int | None:
    detail = {
        "problems": problems,
        "reported_amount": report.amount_minor,
        "reported_currency": report.currency,
        "channel_trade_no": report.channel_trade_no,
    }
    return await record_anomaly(conn, pay.pay_no, kind, report.source_id, detail, now)


async def set_policies(
    db: Database, merchant_id: str, *, partial_payment: str, late_payment: str
) -> None:
    if partial_payment not in PARTIAL_POLICIES or late_payment not in LATE_POLICIES:
        raise ValueError("unknown policy")
    async with db.begin() as conn:
        await conn.execute(
            merchants.update()
            .where(merchants.c.id == merchant_id)
            .values(partial_payment_policy=partial_payment, late_payment_policy=late_payment)
        )


async def get_policies(db: Database, merchant_id: str) -> dict[str, str]:
    async with db.read() as conn:
        row = (
            await conn.execute(
                sa.select(
                    merchants.c.partial_payment_policy, merchants.c.late_payment_policy
                ).where(merchants.c.id == merchant_id)
            )
        ).one()
    return {
        "object": "policies",
        "partial_payment": row.partial_payment_policy,
        "late_payment": row.late_payment_policy,
    }
