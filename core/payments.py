"""The token path: create a trade order and its first pay order in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from core import context, ids
from core.errors import Conflict, InvalidRequest, NotFound
from core.idempotency import IdempotencyClaim, StoredAnswer, remember, stored_answer
from core.merchants import MerchantAuth
from core.states import PayStatus, TradeStatus
from core.store.db import Database
from core.store.tables import channel_accounts, outbox, pay_orders, trade_orders
from core.views import AsRow, payment_object, token_object
from core.wallets import wallet_for

PREPAY_JOB = "prepay"


@dataclass(frozen=True, slots=True)
class NewPayment:
    """A validated payment request (the gateway validates the wire shape)."""

    amount_minor: int
    currency: str
    merchant_order_no: str
    channel: str
    method: str
    description: str
    expires_in_s: int
    metadata: dict[str, str] = field(default_factory=dict)
    payer_id: str | None = None
    client_ip: str | None = None
    # A recharge tops up the wallet of this holder (the merchant's id for its user) when paid.
    recharge_owner: str | None = None


@dataclass(frozen=True, slots=True)
class CreatedPayment:
    status: int
    body: bytes
    replayed: bool
    pay_no: str


def _replay(
    conn: sa.Connection, merchant_id: str, claim: IdempotencyClaim
) -> CreatedPayment | None:
    answer = stored_answer(conn, merchant_id, claim)
    if answer is None:
        return None
    pay_no = orjson.loads(answer.body).get("pay_no", "")
    return CreatedPayment(answer.status, answer.body, True, pay_no)


async def find_channel_account(db: Database, merchant_id: str, channel: str) -> str:
    """The merchant's first enabled account of ``channel`` (the gateway caches the answer)."""
    async with db.read() as conn:
        return await conn.run_sync(channel_account_for, merchant_id, channel)


def channel_account_for(conn: sa.Connection, merchant_id: str, channel: str) -> str:
    account_id = conn.execute(
        sa.select(channel_accounts.c.id)
        .where(
            channel_accounts.c.merchant_id == merchant_id,
            channel_accounts.c.channel == channel,
            channel_accounts.c.enabled.is_(True),
        )
        .order_by(channel_accounts.c.created_at)
        .limit(1)
    ).scalar()
    if account_id is None:
        raise InvalidRequest(
            f"no enabled {channel} channel account is configured for this merchant",
            code="channel_not_configured",
            param="channel",
        )
    return str(account_id)


async def create_payment(
    db: Database,
    merchant: MerchantAuth,
    new: NewPayment,
    *,
    claim: IdempotencyClaim | None,
    channel_account_id: str | None = None,
    now: datetime | None = None,
) -> CreatedPayment:
    """Write trade order, pay order, outbox row (and the idempotency record) atomically.

    The caller enqueues the prepay job after this returns; if that enqueue is lost, the
    outbox row makes the sweeper enqueue it.
    """
    now = now or datetime.now(UTC)
    try:
        return await db.run_write(
            _write_payment,
            merchant,
            new,
            claim,
            channel_account_id,
            context.current_trace_id(),
            now,
        )
    except IntegrityError as exc:
        if claim is not None:
            # A request with the same key committed first (its in-flight lock had lapsed).
            async with db.read() as conn:
                replay = await conn.run_sync(_replay, merchant.merchant_id, claim)
            if replay is not None:
                return replay
        raise await _merchant_order_conflict(db, merchant, new) from exc


def _write_payment(
    conn: sa.Connection,
    merchant: MerchantAuth,
    new: NewPayment,
    claim: IdempotencyClaim | None,
    channel_account_id: str | None,
    trace_id: str | None,
    now: datetime,
) -> CreatedPayment:
    """The token path's one transaction, as plain synchronous SQLAlchemy (see run_write)."""
    if claim is not None:
        replay = _replay(conn, merchant.merchant_id, claim)
        if replay is not None:
            return replay
    account_id = channel_account_id or channel_account_for(conn, merchant.merchant_id, new.channel)
    pay_no, trade_no, token = ids.new_pay_no(), ids.new_trade_no(), ids.new_token(merchant.livemode)
    trade = {
        "trade_no": trade_no,
        "merchant_id": merchant.merchant_id,
        "merchant_order_no": new.merchant_order_no,
        "amount_minor": new.amount_minor,
        "currency": new.currency,
        "description": new.description,
        "metadata": new.metadata,
        "status": TradeStatus.OPEN,
        "version": 0,
        "created_at": now,
        "updated_at": now,
        "current_pay_no": pay_no,
        "kind": "payment",
        "wallet_id": None,
    }
    if new.recharge_owner is not None:
        trade["kind"] = "recharge"
        trade["wallet_id"] = wallet_for(conn, merchant, new.recharge_owner, new.currency, now)
    pay = {
        "pay_no": pay_no,
        "trade_no": trade_no,
        "merchant_id": merchant.merchant_id,
        "channel_account_id": account_id,
        "channel": new.channel,
        "method": new.method,
        "amount_minor": new.amount_minor,
        "currency": new.currency,
        "description": new.description,
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
        "payer_id": new.payer_id,
        "client_ip": new.client_ip,
    }
    # insert() with parameters compiles once per process; .values(**row) would build and
    # compile a new statement for every payment.
    conn.execute(trade_orders.insert(), trade)
    conn.execute(pay_orders.insert(), pay)
    conn.execute(
        outbox.insert(), {"kind": PREPAY_JOB, "ref": pay_no, "status": "pending", "created_at": now}
    )
    body = orjson.dumps(payment_object(AsRow(pay), AsRow(trade)))
    if claim is not None:
        remember(conn, merchant.merchant_id, claim, StoredAnswer(201, body), now)
    return CreatedPayment(201, body, False, pay_no)


async def _merchant_order_conflict(
    db: Database, merchant: MerchantAuth, new: NewPayment
) -> Conflict:
    async with db.read() as conn:
        taken = (
            await conn.execute(
                sa.select(trade_orders.c.trade_no).where(
                    trade_orders.c.merchant_id == merchant.merchant_id,
                    trade_orders.c.merchant_order_no == new.merchant_order_no,
                )
            )
        ).first()
    if taken is not None:
        return Conflict(
            f"merchant_order_no {new.merchant_order_no!r} is already used by {taken.trade_no}",
            code="merchant_order_no_taken",
            param="merchant_order_no",
        )
    return Conflict("the payment conflicts with one being created at the same time")


async def get_payment(db: Database, merchant_id: str, pay_no: str) -> dict[str, Any]:
    async with db.read() as conn:
        row = (
            await conn.execute(
                sa.select(pay_orders, trade_orders.c.merchant_order_no, trade_orders.c.metadata)
                .join(trade_orders, trade_orders.c.trade_no == pay_orders.c.trade_no)
                .where(pay_orders.c.pay_no == pay_no, pay_orders.c.merchant_id == merchant_id)
            )
        ).first()
    if row is None:
        raise NotFound(f"no payment {pay_no!r}", param="pay_no")
    return payment_object(row, row)


async def get_token(db: Database, token: str) -> tuple[PayStatus, dict[str, Any]]:
    async with db.read() as conn:
        row = (await conn.execute(sa.select(pay_orders).where(pay_orders.c.token == token))).first()
    if row is None:
        raise NotFound("no such token", code="token_not_found", param="token")
    return PayStatus(row.status), token_object(row)
