"""Several attempts per trade: a shopper who switches channel gets a new pay order (its own
out_trade_no) on the same trade. The new attempt's prepay job first settles every earlier
open attempt at its channel (``supersede_earlier`` in workers.prepay): a paid one pays the
trade (and the new attempt is not created), the others are closed there and here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Row

from core import context, ids
from core.errors import Conflict, NotFound
from core.idempotency import IdempotencyClaim, StoredAnswer, remember, stored_answer
from core.merchants import MerchantAuth
from core.payments import PREPAY_JOB, CreatedPayment, channel_account_for
from core.states import PayStatus, TradeEvent, TradeStatus, next_trade_status
from core.store.db import Database
from core.store.tables import outbox, pay_orders, trade_orders
from core.views import AsRow, iso, payment_object

# Attempts that may still be paid at their channel.
OPEN_ATTEMPT = (
    PayStatus.PENDING,
    PayStatus.PREPAYING,
    PayStatus.AWAITING_PAYMENT,
    PayStatus.UNKNOWN,
)


@dataclass(frozen=True, slots=True)
class NewAttempt:
    trade_no: str
    channel: str
    method: str
    expires_in_s: int


async def create_attempt(
    db: Database,
    merchant: MerchantAuth,
    new: NewAttempt,
    *,
    claim: IdempotencyClaim | None,
    channel_account_id: str | None = None,
) -> CreatedPayment:
    """Write the new pay order on the trade (open, or failed: a new attempt reopens it) and
    make it the trade's current attempt, in one transaction with its outbox row."""
    return await db.run_write(
        _write_attempt,
        merchant,
        new,
        claim,
        channel_account_id,
        context.current_trace_id(),
        datetime.now(UTC),
    )


def _write_attempt(
    conn: sa.Connection,
    merchant: MerchantAuth,
    new: NewAttempt,
    claim: IdempotencyClaim | None,
    channel_account_id: str | None,
    trace_id: str | None,
    now: datetime,
) -> CreatedPayment:
    if claim is not None:
        answer = stored_answer(conn, merchant.merchant_id, claim)
        if answer is not None:
            pay_no = orjson.loads(answer.body).get("pay_no", "")
            return CreatedPayment(answer.status, answer.body, True, pay_no)
    trade = conn.execute(
        sa.select(trade_orders).where(
            trade_orders.c.trade_no == new.trade_no,
            trade_orders.c.merchant_id == merchant.merchant_id,
        )
    ).first()
    if trade is None:
        raise NotFound(f"no trade {new.trade_no!r}", param="trade_no")
    if trade.status not in (TradeStatus.OPEN, TradeStatus.FAILED):
        raise Conflict(
            f"trade {trade.trade_no} is {trade.status}: only an open or failed trade takes "
            "a new attempt",
            code="trade_not_open",
            param="trade_no",
        )
    account_id = channel_account_id or channel_account_for(conn, merchant.merchant_id, new.channel)
    pay_no, token = ids.new_pay_no(), ids.new_token(merchant.livemode)
    moved = conn.execute(
        trade_orders.update()
        .where(
            trade_orders.c.trade_no == trade.trade_no,
            trade_orders.c.status == trade.status,
            trade_orders.c.version == trade.version,
        )
        .values(
            status=next_trade_status(TradeStatus(trade.status), TradeEvent.NEW_ATTEMPT),
            version=trade.version + 1,
            current_pay_no=pay_no,
            updated_at=now,
        )
    )
    if moved.rowcount != 1:
        raise Conflict(
            f"trade {trade.trade_no} changed while the attempt was made: try again",
            code="trade_changed",
            param="trade_no",
        )
    pay = {
        "pay_no": pay_no,
        "trade_no": trade.trade_no,
        "merchant_id": merchant.merchant_id,
        "channel_account_id": account_id,
        "channel": new.channel,
        "method": new.method,
        "amount_minor": trade.amount_minor,
        "currency": trade.currency,
        "description": trade.description,
        "token": token,
        "status": PayStatus.PENDING,
        "version": 0,
        "credential": None,
        "failure_code": None,
        "failure_message": None,
        "channel_trade_no": None,
        "livemode": merchant.livemode,
        "expires_at": now + timedelta(seconds=new.expires_in_s),
        "paid_at": None,
        "trace_id": trace_id,
        "created_at": now,
        "updated_at": now,
        "refunded_minor": 0,
        "paid_minor": None,
        # The shopper's ids stay with the shopper: the same trade, the same person.
        "payer_id": None,
        "client_ip": None,
    }
    conn.execute(pay_orders.insert(), pay)
    conn.execute(
        outbox.insert(), {"kind": PREPAY_JOB, "ref": pay_no, "status": "pending", "created_at": now}
    )
    body = orjson.dumps(payment_object(AsRow(pay), trade))
    if claim is not None:
        remember(conn, merchant.merchant_id, claim, StoredAnswer(201, body), now)
    return CreatedPayment(201, body, False, pay_no)


async def earlier_open_attempts(db: Database, pay: Row[Any]) -> list[Row[Any]]:
    """The trade's other attempts that may still be paid at their channel."""
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(pay_orders).where(
                pay_orders.c.trade_no == pay.trade_no,
                pay_orders.c.pay_no != pay.pay_no,
                pay_orders.c.status.in_(OPEN_ATTEMPT),
            )
        )
        return list(rows)


async def trade_of(db: Database, trade_no: str) -> Row[Any]:
    async with db.read() as conn:
        return (
            await conn.execute(sa.select(trade_orders).where(trade_orders.c.trade_no == trade_no))
        ).one()


async def get_trade(db: Database, merchant_id: str, trade_no: str) -> dict[str, Any]:
    """A trade with all its attempts, oldest first."""
    async with db.read() as conn:
        trade = (
            await conn.execute(
                sa.select(trade_orders).where(
                    trade_orders.c.trade_no == trade_no, trade_orders.c.merchant_id == merchant_id
                )
            )
        ).first()
        if trade is None:
            raise NotFound(f"no trade {trade_no!r}", param="trade_no")
        attempts = (
            await conn.execute(
                sa.select(pay_orders)
                .where(pay_orders.c.trade_no == trade_no)
                .order_by(pay_orders.c.created_at, pay_orders.c.pay_no)
            )
        ).all()
    return {
        "object": "trade",
        "trade_no": trade.trade_no,
        "merchant_order_no": trade.merchant_order_no,
        "status": trade.status,
        "amount": trade.amount_minor,
        "currency": trade.currency,
        "description": trade.description,
        "metadata": trade.metadata,
        "current_pay_no": trade.current_pay_no,
        "created_at": iso(trade.created_at),
        "attempts": [payment_object(pay, trade) for pay in attempts],
    }
