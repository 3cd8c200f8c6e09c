"""Daily reconciliation of one channel account's stored statement day: load payfront's side,
match (``core.reconcile.matching``), record the differences once per key, confirm the fixes
the worker made, and write the run's summary.

Fixes themselves (asking the channel) are the worker's: core calls no channel."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from core.errors import NotFound
from core.ledger.fees import FeeRate, payment_fee, refund_fee_returned
from core.reconcile import differences, runs
from core.reconcile.matching import (
    DayMatch,
    Finding,
    Fix,
    OurDay,
    PaymentRecord,
    RefundRecord,
    match_day,
)
from core.reconcile.statements import (
    PAYMENT,
    REFUND,
    AccountInfo,
    LineRecord,
    day_bounds,
    load_account,
    load_lines,
    numbers_on_other_days,
)
from core.states import PAY_RECEIVED, RefundStatus
from core.store.db import Database
from core.store.tables import pay_orders, refund_orders

_CHUNK = 500


@dataclass
class DayFindings:
    account: AccountInfo
    day: date
    lines: int
    match: DayMatch
    # (difference id, finding) of the differences payfront may fix by asking the channel.
    fixable: list[tuple[int, Finding]]
    started_at: datetime


def _now() -> datetime:
    return datetime.now(UTC)


async def match_stored_day(
    db: Database,
    account_id: str,
    day: date,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> DayFindings:
    """Match the stored statement of the day and record what differs (NotFound when the day
    was never downloaded). ``progress(done, total)`` follows the lines."""
    started_at = _now()
    account = await load_account(db, account_id)
    lines = await load_lines(db, account_id, day)
    if lines is None:
        raise NotFound(f"no statement of {day} stored for {account_id!r}", param="date")
    ours = await _our_day(db, account, day, lines)
    total = len(lines)
    found = match_day(
        account.channel,
        lines,
        ours,
        None if progress is None else (lambda done: progress(done, total)),
    )
    ids = await differences.record_findings(db, account, day, found.findings.values(), _now())
    fixable = [(ids[f.key], f) for f in found.findings.values() if f.fix is not None]
    return DayFindings(account, day, total, found, fixable, started_at)


async def confirm_fix(db: Database, difference_id: int, fix: Fix, outcome: str) -> bool:
    """After the worker asked the channel and applied its answer: the difference is fixed if
    the order now agrees with the statement; else it stays open with the attempt noted."""
    return await differences.confirm_fix(db, difference_id, fix, outcome, _now())


async def finish_run(db: Database, findings: DayFindings, fixed: int) -> dict[str, Any]:
    return await runs.write_run(
        db,
        findings.account,
        findings.day,
        statement_lines=findings.lines,
        counts=findings.match.counts(),
        totals=findings.match.totals,
        fixed=fixed,
        started_at=findings.started_at,
        finished_at=_now(),
    )


def _chunks(values: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), _CHUNK):
        yield list(values[start : start + _CHUNK])


async def _by_number(
    conn: AsyncConnection,
    table: sa.Table,
    number: sa.Column[Any],
    account: AccountInfo,
    numbers: Sequence[str],
) -> list[Any]:
    """The account's rows of ``table`` whose ``number`` is one of ``numbers``."""
    rows: list[Any] = []
    for chunk in _chunks(numbers):
        query = sa.select(table).where(
            table.c.channel_account_id == account.account_id, number.in_(chunk)
        )
        rows += (await conn.execute(query)).all()
    return rows


async def _our_day(
    db: Database, account: AccountInfo, day: date, lines: Sequence[LineRecord]
) -> OurDay:
    start, end = day_bounds(account.channel, day)
    rate = FeeRate(bps=account.fee_rate_bps, fixed_minor=account.fee_fixed_minor)
    pay_numbers = sorted({line.out_trade_no for line in lines if line.kind == PAYMENT})
    refund_numbers = sorted(
        {line.out_refund_no for line in lines if line.kind == REFUND and line.out_refund_no}
    )
    async with db.read() as conn:
        pay_rows = await _by_number(conn, pay_orders, pay_orders.c.pay_no, account, pay_numbers)
        expected_pay_rows = (
            await conn.execute(
                sa.select(pay_orders).where(
                    pay_orders.c.channel_account_id == account.account_id,
                    pay_orders.c.status.in_([status.value for status in PAY_RECEIVED]),
                    pay_orders.c.paid_at >= start,
                    pay_orders.c.paid_at < end,
                )
            )
        ).all()
        refund_rows = await _by_number(
            conn, refund_orders, refund_orders.c.refund_no, account, refund_numbers
        )
        expected_refund_rows = (
            await conn.execute(
                sa.select(refund_orders).where(
                    refund_orders.c.channel_account_id == account.account_id,
                    refund_orders.c.status == RefundStatus.SUCCEEDED.value,
                    refund_orders.c.succeeded_at >= start,
                    refund_orders.c.succeeded_at < end,
                )
            )
        ).all()
        refund_fee = await _refund_fees(conn, account, rate, [*refund_rows, *expected_refund_rows])
        billed_elsewhere = {
            (PAYMENT, number)
            for number in await numbers_on_other_days(
                conn,
                account.account_id,
                day,
                PAYMENT,
                [row.pay_no for row in expected_pay_rows if row.pay_no not in pay_numbers],
            )
        } | {
            (REFUND, number)
            for number in await numbers_on_other_days(
                conn,
                account.account_id,
                day,
                REFUND,
                [
                    row.refund_no
                    for row in expected_refund_rows
                    if row.refund_no not in refund_numbers
                ],
            )
        }

    def payment(row: Any) -> PaymentRecord:
        received = row.paid_minor if row.paid_minor is not None else row.amount_minor
        return PaymentRecord(
            pay_no=row.pay_no,
            status=row.status,
            amount_minor=row.amount_minor,
            paid_minor=row.paid_minor,
            currency=row.currency,
            paid_at=row.paid_at,
            expected_fee_minor=payment_fee(received, rate),
        )

    def refund(row: Any) -> RefundRecord:
        return RefundRecord(
            refund_no=row.refund_no,
            pay_no=row.pay_no,
            status=row.status,
            amount_minor=row.amount_minor,
            currency=row.currency,
            succeeded_at=row.succeeded_at,
            expected_fee_minor=refund_fee.get(row.refund_no, 0),
        )

    return OurDay(
        payments={row.pay_no: payment(row) for row in pay_rows},
        refunds={row.refund_no: refund(row) for row in refund_rows},
        expected_payments=[payment(row) for row in expected_pay_rows],
        expected_refunds=[refund(row) for row in expected_refund_rows],
        billed_elsewhere=frozenset(billed_elsewhere),
    )


async def _refund_fees(
    conn: AsyncConnection, account: AccountInfo, rate: FeeRate, refunds: Sequence[Any]
) -> dict[str, int]:
    """The fee each refund should give back, as the ledger computes it: a share of the
    payment's fee (at the account's rate) on the running total of the payment's succeeded
    refunds, earlier ones first (core.ledger.fees.refund_fee_returned)."""
    pay_nos = sorted({row.pay_no for row in refunds})
    if not pay_nos:
        return {}
    pays: dict[str, Any] = {}
    siblings: dict[str, list[Any]] = {}
    for chunk in _chunks(pay_nos):
        for row in await conn.execute(sa.select(pay_orders).where(pay_orders.c.pay_no.in_(chunk))):
            pays[row.pay_no] = row
        for row in await conn.execute(
            sa.select(refund_orders).where(
                refund_orders.c.pay_no.in_(chunk),
                refund_orders.c.status == RefundStatus.SUCCEEDED.value,
            )
        ):
            siblings.setdefault(row.pay_no, []).append(row)
    expected: dict[str, int] = {}
    for row in refunds:
        pay = pays.get(row.pay_no)
        if pay is None:
            continue
        received = pay.paid_minor if pay.paid_minor is not None else pay.amount_minor
        mine = (row.succeeded_at or datetime.max.replace(tzinfo=UTC), row.refund_no)
        before = sum(
            other.amount_minor
            for other in siblings.get(row.pay_no, [])
            if other.refund_no != row.refund_no and (other.succeeded_at, other.refund_no) < mine
        )
        try:
            expected[row.refund_no] = refund_fee_returned(
                account.channel,
                paid_minor=received,
                fee_minor=payment_fee(received, rate),
                refunded_before_minor=before,
                refund_minor=row.amount_minor,
            )
        except ValueError:
            # Refunds adding up past the payment: the amount difference says so already.
            expected[row.refund_no] = 0
    return expected
