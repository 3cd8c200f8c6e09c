"""Daily differences as recorded: once per (account, day, kind, object, reference). Running the
day again updates a difference, reopens it if payfront had fixed it and it is back, and marks
``cleared`` an open one that is gone; a person's decision (``resolved``) stands."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from core.reconcile.matching import Finding, Fix
from core.reconcile.statements import PAYMENT, AccountInfo, again_on_conflict
from core.states import PAY_RECEIVED, RefundStatus
from core.store.db import Database
from core.store.tables import pay_orders, reconciliation_differences, refund_orders

STATUSES = frozenset({"open", "fixed", "cleared", "resolved"})
_T = reconciliation_differences


def _values(finding: Finding) -> dict[str, Any]:
    return {
        "pay_no": finding.pay_no,
        "refund_no": finding.refund_no,
        "currency": finding.currency,
        "payfront_amount_minor": finding.payfront_amount_minor,
        "channel_amount_minor": finding.channel_amount_minor,
        "payfront_status": finding.payfront_status,
        "channel_status": finding.channel_status,
        "expected_fee_minor": finding.expected_fee_minor,
        "channel_fee_minor": finding.channel_fee_minor,
        "detail": dict(finding.detail),
    }


async def record_findings(
    db: Database, account: AccountInfo, day: date, findings: Iterable[Finding], now: datetime
) -> dict[tuple[str, str, str], int]:
    """Record the day's differences (one row per key, see the module docstring); returns
    each finding's difference id."""
    found = {finding.key: finding for finding in findings}
    return await again_on_conflict(lambda: _record(db, account, day, found, now))


async def _record(
    db: Database,
    account: AccountInfo,
    day: date,
    found: dict[tuple[str, str, str], Finding],
    now: datetime,
) -> dict[tuple[str, str, str], int]:
    ids: dict[tuple[str, str, str], int] = {}
    async with db.begin() as conn:
        existing = {
            (row.kind, row.object, row.reference): row
            for row in await conn.execute(
                sa.select(_T).where(
                    _T.c.channel_account_id == account.account_id, _T.c.business_date == day
                )
            )
        }
        for key, finding in found.items():
            row = existing.get(key)
            if row is None:
                ids[key] = (
                    await conn.execute(
                        _T.insert()
                        .values(
                            merchant_id=account.merchant_id,
                            channel_account_id=account.account_id,
                            channel=account.channel,
                            business_date=day,
                            kind=finding.kind.value,
                            object=finding.object,
                            reference=finding.reference,
                            status="open",
                            created_at=now,
                            updated_at=now,
                            **_values(finding),
                        )
                        .returning(_T.c.id)
                    )
                ).scalar_one()
                continue
            ids[key] = row.id
            status = "resolved" if row.status == "resolved" else "open"
            await conn.execute(
                _T.update()
                .where(_T.c.id == row.id)
                .values(status=status, updated_at=now, **_values(finding))
            )
        gone = [
            row.id for key, row in existing.items() if key not in found and row.status == "open"
        ]
        if gone:
            await conn.execute(
                _T.update().where(_T.c.id.in_(gone)).values(status="cleared", updated_at=now)
            )
    return ids


async def confirm_fix(
    db: Database, difference_id: int, fix: Fix, outcome: str, now: datetime
) -> bool:
    async with db.begin() as conn:
        row = (await conn.execute(sa.select(_T).where(_T.c.id == difference_id))).one()
        agrees = await _order_agrees(conn, row)
        attempt = {"action": fix.value, "outcome": outcome, "at": now.isoformat()}
        values: dict[str, Any] = {"fix": attempt, "updated_at": now}
        if agrees and row.status == "open":
            values["status"] = "fixed"
        await conn.execute(_T.update().where(_T.c.id == difference_id).values(**values))
    return agrees


async def _order_agrees(conn: AsyncConnection, row: Any) -> bool:
    if row.object == PAYMENT:
        status = (
            await conn.execute(
                sa.select(pay_orders.c.status).where(pay_orders.c.pay_no == row.pay_no)
            )
        ).scalar()
        return status in PAY_RECEIVED
    status = (
        await conn.execute(
            sa.select(refund_orders.c.status).where(refund_orders.c.refund_no == row.refund_no)
        )
    ).scalar()
    return bool(status == RefundStatus.SUCCEEDED)


async def count_open(db: Database, account_id: str, day: date) -> int:
    async with db.read() as conn:
        return int(
            (
                await conn.execute(
                    sa.select(sa.func.count())
                    .select_from(_T)
                    .where(
                        _T.c.channel_account_id == account_id,
                        _T.c.business_date == day,
                        _T.c.status == "open",
                    )
                )
            ).scalar_one()
        )
