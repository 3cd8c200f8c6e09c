"""What work is owed, read from the database: the sweeper's view after a Redis loss."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from core.states import PayStatus, RefundStatus, WithdrawalStatus
from core.store.db import Database
from core.store.tables import (
    outbox,
    pay_orders,
    refund_orders,
    webhook_deliveries,
    withdrawals,
)

# Built once: a statement built per call costs more to make and cache-key than to run.
MARK_DONE = (
    outbox.update()
    .where(
        outbox.c.kind == sa.bindparam("done_kind"),
        outbox.c.ref == sa.bindparam("done_ref"),
        outbox.c.status == "pending",
    )
    .values(status="done", done_at=sa.bindparam("done_at", type_=outbox.c.done_at.type))
)


def done_params(kind: str, ref: str, now: datetime) -> dict[str, Any]:
    """``MARK_DONE``'s parameters (for a synchronous caller: ``conn.execute(MARK_DONE, …)``)."""
    return {"done_kind": kind, "done_ref": ref, "done_at": now}


async def mark_done(conn: AsyncConnection, kind: str, ref: str, now: datetime) -> None:
    """The work of an outbox row is done (in the caller's transaction: the change that did it)."""
    await conn.execute(MARK_DONE, done_params(kind, ref, now))


@dataclass(frozen=True, slots=True)
class OwedWork:
    outbox: list[tuple[str, str]]  # (kind, ref)
    deliveries: list[tuple[int, int]]  # (delivery id, attempt number due)
    checks: list[str]  # pay_no of orders to ask the channel about
    refund_checks: list[str]  # refund_no of refunds to ask the channel about
    withdrawal_checks: list[str]  # withdrawal_no of payouts to ask the channel about


async def owed_work(
    db: Database,
    *,
    grace: timedelta,
    check_after: timedelta,
    check_every: timedelta,
    limit: int = 1000,
) -> OwedWork:
    """Outbox rows still pending after ``grace``, webhook deliveries that are due, orders
    awaiting payment to ask the channel about (expired ones, and ones with no news for
    ``check_after`` — a lost callback — not asked in the last ``check_every``), and refunds
    sent but not finished, on the same clock."""
    now = datetime.now(UTC)
    async with db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(outbox.c.kind, outbox.c.ref)
                .where(outbox.c.status == "pending", outbox.c.created_at <= now - grace)
                .order_by(outbox.c.created_at)
                .limit(limit)
            )
        ).all()
        due = (
            await conn.execute(
                sa.select(webhook_deliveries.c.id, webhook_deliveries.c.attempts)
                .where(
                    webhook_deliveries.c.status == "pending",
                    webhook_deliveries.c.next_attempt_at <= now,
                )
                .order_by(webhook_deliveries.c.next_attempt_at)
                .limit(limit)
            )
        ).all()
        checks = (
            await conn.execute(
                sa.select(pay_orders.c.pay_no)
                .where(
                    pay_orders.c.status.in_((PayStatus.AWAITING_PAYMENT, PayStatus.UNKNOWN)),
                    sa.or_(
                        # Unknown: ask at once, then every check_every.
                        sa.and_(
                            pay_orders.c.status == PayStatus.UNKNOWN,
                            sa.or_(
                                pay_orders.c.checked_at.is_(None),
                                pay_orders.c.checked_at <= now - check_every,
                            ),
                        ),
                        pay_orders.c.expires_at <= now,
                        sa.and_(
                            pay_orders.c.updated_at <= now - check_after,
                            sa.or_(
                                pay_orders.c.checked_at.is_(None),
                                pay_orders.c.checked_at <= now - check_every,
                            ),
                        ),
                    ),
                )
                .order_by(pay_orders.c.updated_at)
                .limit(limit)
            )
        ).scalars()
        checked = list(checks)
        refund_checks = (
            await conn.execute(
                sa.select(refund_orders.c.refund_no)
                .where(
                    refund_orders.c.status.in_((RefundStatus.SUBMITTING, RefundStatus.PROCESSING)),
                    refund_orders.c.updated_at <= now - check_after,
                    sa.or_(
                        refund_orders.c.checked_at.is_(None),
                        refund_orders.c.checked_at <= now - check_every,
                    ),
                )
                .order_by(refund_orders.c.updated_at)
                .limit(limit)
            )
        ).scalars()
        refunds = list(refund_checks)
        withdrawal_checks = (
            await conn.execute(
                sa.select(withdrawals.c.withdrawal_no)
                .where(
                    withdrawals.c.status.in_(
                        (WithdrawalStatus.SUBMITTING, WithdrawalStatus.PROCESSING)
                    ),
                    withdrawals.c.updated_at <= now - check_after,
                    sa.or_(
                        withdrawals.c.checked_at.is_(None),
                        withdrawals.c.checked_at <= now - check_every,
                    ),
                )
                .order_by(withdrawals.c.updated_at)
                .limit(limit)
            )
        ).scalars()
        payouts = list(withdrawal_checks)
    return OwedWork(
        outbox=[(row.kind, row.ref) for row in rows],
        deliveries=[(row.id, row.attempts + 1) for row in due],
        checks=checked,
        refund_checks=refunds,
        withdrawal_checks=payouts,
    )


@dataclass(frozen=True, slots=True)
class Backlog:
    outbox_lag_s: float  # age of the oldest pending outbox row, 0 when none
    pending_deliveries: int


async def backlog(db: Database) -> Backlog:
    """How far behind the owed work is (for metrics)."""
    now = datetime.now(UTC)
    async with db.read() as conn:
        oldest = (
            await conn.execute(
                sa.select(sa.func.min(outbox.c.created_at)).where(outbox.c.status == "pending")
            )
        ).scalar()
        pending = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(webhook_deliveries)
                .where(webhook_deliveries.c.status == "pending")
            )
        ).scalar_one()
    if isinstance(oldest, str):  # SQLite hands back aggregates of datetimes as text
        oldest = datetime.fromisoformat(oldest)
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    lag = (now - oldest).total_seconds() if oldest is not None else 0.0
    return Backlog(outbox_lag_s=max(lag, 0.0), pending_deliveries=int(pending))
