"""Channel statements as payfront stores them: one row per (channel account, statement day)
and its lines, replaced whole when the day is downloaded again (so downloading twice is the
same as once)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from core.errors import NotFound
from core.store.db import Database
from core.store.tables import channel_accounts, statement_lines, statements

# Each channel's statement day: WeChat Pay's and Alipay's bills count Beijing days, Stripe's
# balance transactions are asked for by UTC day (channels/stripe_statements.py).
CHINA_TZ = ZoneInfo("Asia/Shanghai")
STATEMENT_TZ: dict[str, Any] = {"wechatpay": CHINA_TZ, "alipay": CHINA_TZ, "stripe": UTC}

PAYMENT, REFUND = "payment", "refund"
T = TypeVar("T")


async def again_on_conflict(work: Callable[[], Awaitable[T]], attempts: int = 3) -> T:
    """Run ``work`` (one transaction) again when it failed on a unique constraint: a
    concurrent run of the same day inserted the same row first, and the next attempt finds
    it and updates it instead."""
    for attempt in range(1, attempts + 1):
        try:
            return await work()
        except sa.exc.IntegrityError:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


@dataclass(frozen=True, slots=True)
class LineRecord:
    """One statement line, channel-neutral (workers convert the channel's ``StatementLine``).
    Amounts are positive minor units; ``kind`` is "payment" or "refund"."""

    kind: str
    out_trade_no: str
    amount_minor: int
    currency: str
    fee_minor: int
    occurred_at: datetime
    channel_state: str
    channel_trade_no: str | None = None
    out_refund_no: str | None = None
    channel_refund_no: str | None = None
    line_no: int = 0


@dataclass(frozen=True, slots=True)
class AccountInfo:
    account_id: str
    channel: str
    merchant_id: str
    fee_rate_bps: int
    fee_fixed_minor: int


def day_bounds(channel: str, day: date) -> tuple[datetime, datetime]:
    """``[start, end)`` of ``day`` in the channel's statement calendar, as aware datetimes."""
    zone = STATEMENT_TZ.get(channel, CHINA_TZ)
    start = datetime.combine(day, time(), tzinfo=zone)
    return start, datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)


async def load_account(db: Database, account_id: str) -> AccountInfo:
    async with db.read() as conn:
        row = (
            await conn.execute(
                sa.select(
                    channel_accounts.c.id,
                    channel_accounts.c.channel,
                    channel_accounts.c.merchant_id,
                    channel_accounts.c.fee_rate_bps,
                    channel_accounts.c.fee_fixed_minor,
                ).where(channel_accounts.c.id == account_id)
            )
        ).first()
    if row is None:
        raise NotFound(f"no channel account {account_id!r}", param="channel_account")
    return AccountInfo(row.id, row.channel, row.merchant_id, row.fee_rate_bps, row.fee_fixed_minor)


async def enabled_accounts(db: Database) -> list[tuple[str, str]]:
    """``(account id, channel)`` of every enabled channel account, in id order."""
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(channel_accounts.c.id, channel_accounts.c.channel)
            .where(channel_accounts.c.enabled.is_(True))
            .order_by(channel_accounts.c.id)
        )
        return [(row.id, row.channel) for row in rows]


def previous_day(channel: str, now: datetime) -> date:
    """The last whole statement day of the channel's calendar at ``now``."""
    return now.astimezone(STATEMENT_TZ.get(channel, CHINA_TZ)).date() - timedelta(days=1)


async def accounts_of_channel(db: Database, channel: str) -> list[str]:
    """The enabled accounts of one channel, in id order."""
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(channel_accounts.c.id)
            .where(channel_accounts.c.channel == channel, channel_accounts.c.enabled.is_(True))
            .order_by(channel_accounts.c.id)
        )
        return [row.id for row in rows]


async def store_statement(
    db: Database, account: AccountInfo, day: date, lines: Iterable[LineRecord], now: datetime
) -> int:
    """Keep the day's statement as downloaded, replacing an earlier download of the same day
    in one transaction. Returns the number of lines stored."""
    records = list(lines)
    return await again_on_conflict(lambda: _store(db, account, day, records, now))


async def _store(
    db: Database, account: AccountInfo, day: date, records: list[LineRecord], now: datetime
) -> int:
    async with db.begin() as conn:
        existing = (
            await conn.execute(
                sa.select(statements.c.id).where(
                    statements.c.channel_account_id == account.account_id,
                    statements.c.business_date == day,
                )
            )
        ).scalar()
        if existing is None:
            existing = (
                await conn.execute(
                    statements.insert()
                    .values(
                        channel_account_id=account.account_id,
                        channel=account.channel,
                        merchant_id=account.merchant_id,
                        business_date=day,
                        line_count=len(records),
                        downloaded_at=now,
                    )
                    .returning(statements.c.id)
                )
            ).scalar_one()
        else:
            await conn.execute(
                statement_lines.delete().where(statement_lines.c.statement_id == existing)
            )
            await conn.execute(
                statements.update()
                .where(statements.c.id == existing)
                .values(line_count=len(records), downloaded_at=now)
            )
        if records:
            await conn.execute(
                statement_lines.insert(),
                [
                    {
                        "statement_id": existing,
                        "channel_account_id": account.account_id,
                        "line_no": number,
                        "kind": line.kind,
                        "out_trade_no": line.out_trade_no[:64],
                        "out_refund_no": line.out_refund_no,
                        "channel_trade_no": line.channel_trade_no,
                        "channel_refund_no": line.channel_refund_no,
                        "amount_minor": line.amount_minor,
                        "currency": line.currency,
                        "fee_minor": line.fee_minor,
                        "channel_state": line.channel_state[:32],
                        "occurred_at": line.occurred_at,
                    }
                    for number, line in enumerate(records, start=1)
                ],
            )
    return len(records)


async def load_lines(db: Database, account_id: str, day: date) -> list[LineRecord] | None:
    """The stored statement of the day, in line order; None when it was never downloaded."""
    async with db.read() as conn:
        statement_id = (
            await conn.execute(
                sa.select(statements.c.id).where(
                    statements.c.channel_account_id == account_id,
                    statements.c.business_date == day,
                )
            )
        ).scalar()
        if statement_id is None:
            return None
        rows = await conn.execute(
            sa.select(statement_lines)
            .where(statement_lines.c.statement_id == statement_id)
            .order_by(statement_lines.c.line_no)
        )
        return [
            LineRecord(
                kind=row.kind,
                out_trade_no=row.out_trade_no,
                amount_minor=row.amount_minor,
                currency=row.currency,
                fee_minor=row.fee_minor,
                occurred_at=row.occurred_at,
                channel_state=row.channel_state,
                channel_trade_no=row.channel_trade_no,
                out_refund_no=row.out_refund_no,
                channel_refund_no=row.channel_refund_no,
                line_no=row.line_no,
            )
            for row in rows
        ]


async def numbers_on_other_days(
    conn: AsyncConnection, account_id: str, day: date, kind: str, numbers: Sequence[str]
) -> set[str]:
    """Which of ``numbers`` (pay_no for payments, refund_no for refunds) are on a stored
    statement of the account for another day: the channel has them, on its own calendar (a
    WeChat refund is billed on the day it was made, not the day it succeeded)."""
    if not numbers:
        return set()
    column = statement_lines.c.out_trade_no if kind == PAYMENT else statement_lines.c.out_refund_no
    rows = await conn.execute(
        sa.select(column)
        .select_from(statement_lines.join(statements))
        .where(
            statement_lines.c.channel_account_id == account_id,
            statement_lines.c.kind == kind,
            statements.c.business_date != day,
            column.in_(list(numbers)),
        )
    )
    return {row[0] for row in rows}
