"""The summary each reconciliation run leaves: counts per kind, amounts on both sides per
currency, what payfront fixed and what is still open for the day."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from core.reconcile.differences import count_open
from core.reconcile.statements import AccountInfo
from core.store.db import Database
from core.store.tables import reconciliation_runs
from core.views import iso

_T = reconciliation_runs


async def write_run(
    db: Database,
    account: AccountInfo,
    day: date,
    *,
    statement_lines: int,
    counts: dict[str, int],
    totals: dict[str, dict[str, int]],
    fixed: int,
    started_at: datetime,
    finished_at: datetime,
) -> dict[str, Any]:
    still_open = await count_open(db, account.account_id, day)
    async with db.begin() as conn:
        run_id = (
            await conn.execute(
                _T.insert()
                .values(
                    channel_account_id=account.account_id,
                    channel=account.channel,
                    merchant_id=account.merchant_id,
                    business_date=day,
                    statement_lines=statement_lines,
                    counts=counts,
                    totals=totals,
                    fixed=fixed,
                    open=still_open,
                    started_at=started_at,
                    finished_at=finished_at,
                )
                .returning(_T.c.id)
            )
        ).scalar_one()
        row = (await conn.execute(sa.select(_T).where(_T.c.id == run_id))).one()
    return run_object(row)


def run_object(row: Any) -> dict[str, Any]:
    return {
        "object": "reconciliation_run",
        "id": f"rcn_{row.id}",
        "channel_account": row.channel_account_id,
        "channel": row.channel,
        "date": row.business_date.isoformat(),
        "statement_lines": row.statement_lines,
        "counts": row.counts,
        "fixed": row.fixed,
        "open": row.open,
        "totals": row.totals,
        "started_at": iso(row.started_at),
        "finished_at": iso(row.finished_at),
    }


async def list_runs(
    db: Database,
    merchant_id: str,
    *,
    business_date: date | None = None,
    channel_account_id: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The merchant's runs, newest first."""
    query = sa.select(_T).where(_T.c.merchant_id == merchant_id)
    if business_date is not None:
        query = query.where(_T.c.business_date == business_date)
    if channel_account_id is not None:
        query = query.where(_T.c.channel_account_id == channel_account_id)
    async with db.read() as conn:
        rows = await conn.execute(query.order_by(_T.c.id.desc()).limit(limit))
        return [run_object(row) for row in rows]
