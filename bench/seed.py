"""Orders written in bulk, straight into the tables (not through the API): the rows the token
path writes (trade order, pay order, outbox row), in batches of one executemany each, for the
scenarios that need many orders stored before the load starts (callbacks, growth)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from core import ids
from core.states import PayStatus, TradeStatus
from core.store.tables import idempotency_keys, outbox, pay_orders, trade_orders

BATCH = 5_000
AMOUNT_MINOR = 100
PREPAY_JOB = "prepay"


@dataclass(frozen=True, slots=True)
class SeedSpec:
    merchant_id: str
    channel_account_id: str
    # merchant_order_no = f"{prefix}-{i}": unique per merchant across seeding calls.
    prefix: str
    status: PayStatus = PayStatus.AWAITING_PAYMENT
    # Also an idempotency record per order (key = merchant_order_no), as the SDK's requests
    # leave: the token path looks its key up in that table.
    idempotency: bool = False


# About the size of a stored 201 answer of POST /v1/payments.
_ANSWER = '{"object":"payment","pay_no":"PAY_NO","status":"pending",' + '"x":"' + "x" * 500 + '"}'

Rows = list[dict[str, Any]]


def _rows(spec: SeedSpec, start: int, count: int, now: datetime) -> tuple[Rows, Rows, Rows, Rows]:
    trades, pays, jobs, keys = [], [], [], []
    expires = now + timedelta(hours=2)
    done = spec.status is not PayStatus.PENDING
    for i in range(start, start + count):
        pay_no, trade_no = ids.new_pay_no(), ids.new_trade_no()
        trades.append(
            {
                "trade_no": trade_no,
                "merchant_id": spec.merchant_id,
                "merchant_order_no": f"{spec.prefix}-{i}",
                "amount_minor": AMOUNT_MINOR,
                "currency": "CNY",
                "description": "A cup of tea",
                "metadata": {},
                "status": TradeStatus.OPEN,
                "version": 0,
                "created_at": now,
                "updated_at": now,
                "current_pay_no": pay_no,
                "kind": "payment",
                "wallet_id": None,
            }
        )
        pays.append(
            {
                "pay_no": pay_no,
                "trade_no": trade_no,
                "merchant_id": spec.merchant_id,
                "channel_account_id": spec.channel_account_id,
                "channel": "wechatpay",
                "method": "native",
                "amount_minor": AMOUNT_MINOR,
                "currency": "CNY",
                "description": "A cup of tea",
                "token": "tok_" + secrets.token_urlsafe(32),
                "status": spec.status,
                "version": 1 if done else 0,
                "credential": {"code_url": f"weixin://wxpay/bizpayurl?pr={i}"} if done else None,
                "failure_code": None,
                "failure_message": None,
                "channel_trade_no": None,
                "livemode": False,
                "expires_at": expires,
                "paid_at": None,
                "checked_at": None,
                "trace_id": None,
                "created_at": now,
                "updated_at": now,
                "refunded_minor": 0,
                "paid_minor": None,
                "payer_id": None,
                "client_ip": None,
            }
        )
        jobs.append(
            {
                "kind": PREPAY_JOB,
                "ref": pay_no,
                "status": "done" if done else "pending",
                "created_at": now,
                "done_at": now if done else None,
            }
        )
        if spec.idempotency:
            keys.append(
                {
                    "merchant_id": spec.merchant_id,
                    "key": f"{spec.prefix}-{i}",
                    "request_hash": secrets.token_hex(32),
                    "response_status": 201,
                    "response_body": _ANSWER.replace("PAY_NO", pay_no),
                    "created_at": now,
                }
            )
    return trades, pays, jobs, keys


def _pg_value(value: Any) -> Any:
    """What the tables' types would bind (COPY skips them): naive UTC, JSON as text."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    if isinstance(value, str):
        return str(value)  # StrEnum members as plain text
    return value


async def _insert(conn: AsyncConnection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """One executemany on SQLite; COPY (asyncpg's binary copy) on PostgreSQL."""
    if conn.dialect.name != "postgresql":
        await conn.execute(table.insert(), rows)
        return
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    columns = list(rows[0])
    records = [tuple(_pg_value(row[column]) for column in columns) for row in rows]
    await driver.copy_records_to_table(table.name, records=records, columns=columns)


async def seed_orders(
    database_url: str,
    spec: SeedSpec,
    count: int,
    *,
    start: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> list[str]:
    """Insert ``count`` orders (numbered from ``start``) in batches of ``BATCH``, one
    transaction per batch; returns their pay numbers (the channel's out_trade_no)."""
    engine = create_async_engine(database_url)
    pay_nos: list[str] = []
    began = time.monotonic()
    try:
        done = 0
        while done < count:
            size = min(BATCH, count - done)
            trades, pays, jobs, keys = _rows(spec, start + done, size, datetime.now(UTC))
            async with engine.begin() as conn:
                await _insert(conn, trade_orders, trades)
                await _insert(conn, pay_orders, pays)
                await _insert(conn, outbox, jobs)
                if keys:
                    await _insert(conn, idempotency_keys, keys)
            pay_nos.extend(row["pay_no"] for row in pays)
            done += size
            if progress is not None:
                progress(done, time.monotonic() - began)
    finally:
        await engine.dispose()
    return pay_nos


async def count_orders(database_url: str) -> dict[str, int]:
    """Pay orders by status."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.select(pay_orders.c.status, sa.func.count()).group_by(pay_orders.c.status)
            )
            return {str(status): int(n) for status, n in rows}
    finally:
        await engine.dispose()


async def analyze(database_url: str) -> None:
    """Fresh planner statistics after a bulk load (as autovacuum / a periodic ANALYZE would
    have by the time a real table holds that many rows)."""
    engine = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text("ANALYZE"))
    finally:
        await engine.dispose()
