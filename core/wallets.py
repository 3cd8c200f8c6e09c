"""Wallets: stored value payfront holds for a merchant's users, topped up by recharges (a
payment whose trade credits a wallet when paid) and moved between wallets by transfers.

A balance changes only through ``_move``: one conditional UPDATE that keeps it >= 0 (also
checked by the database), and a movement row unique per (wallet, kind, ref), in the same
transaction, so a credit applied twice (a duplicate callback) is applied once and no
transfer can overdraw a wallet, however many run at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from core import ids
from core.errors import Conflict, InvalidRequest, NotFound
from core.events import record_event
from core.idempotency import IdempotencyClaim, StoredAnswer, remember, stored_answer
from core.merchants import MerchantAuth
from core.store.db import Database
from core.store.tables import wallet_movements, wallet_transfers, wallets
from core.views import AsRow, iso

RECHARGE = "recharge"
TRANSFER_IN = "transfer_in"
TRANSFER_OUT = "transfer_out"


def _now() -> datetime:
    return datetime.now(UTC)


def wallet_object(row: Any) -> dict[str, Any]:
    return {
        "object": "wallet",
        "wallet_id": row.wallet_id,
        "owner": row.owner_ref,
        "currency": row.currency,
        "balance": row.balance_minor,
        "livemode": row.livemode,
        "created_at": iso(row.created_at),
    }


def transfer_object(row: Any) -> dict[str, Any]:
    return {
        "object": "transfer",
        "transfer_no": row.transfer_no,
        "from_wallet": row.from_wallet_id,
        "to_wallet": row.to_wallet_id,
        "amount": row.amount_minor,
        "currency": row.currency,
        "status": row.status,
        "merchant_transfer_no": row.merchant_transfer_no,
        "description": row.description,
        "livemode": row.livemode,
        "created_at": iso(row.created_at),
    }


def wallet_for(
    conn: sa.Connection, merchant: MerchantAuth, owner_ref: str, currency: str, now: datetime
) -> str:
    """The wallet of ``owner_ref`` in ``currency``, created empty on first use."""
    found = conn.execute(
        sa.select(wallets.c.wallet_id).where(
            wallets.c.merchant_id == merchant.merchant_id,
            wallets.c.owner_ref == owner_ref,
            wallets.c.currency == currency,
        )
    ).scalar()
    if found is not None:
        return str(found)
    wallet_id = ids.new_wallet_id()
    conn.execute(
        wallets.insert(),
        {
            "wallet_id": wallet_id,
            "merchant_id": merchant.merchant_id,
            "owner_ref": owner_ref,
            "currency": currency,
            "balance_minor": 0,
            "livemode": merchant.livemode,
            "created_at": now,
            "updated_at": now,
        },
    )
    return wallet_id


async def credit_recharge(
    conn: AsyncConnection, wallet_id: str, amount: int, pay_no: str, now: datetime
) -> str | None:
    """Credit a paid recharge to its wallet, once per pay order, in the caller's transaction;
    returns the ``recharge.succeeded`` event recorded (None if it was credited before)."""
    exists = (
        await conn.execute(
            sa.select(wallet_movements.c.id).where(
                wallet_movements.c.wallet_id == wallet_id,
                wallet_movements.c.kind == RECHARGE,
                wallet_movements.c.ref == pay_no,
            )
        )
    ).first()
    if exists is not None:
        return None
    await move(conn, wallet_id, RECHARGE, pay_no, amount, now)
    row = (await conn.execute(sa.select(wallets).where(wallets.c.wallet_id == wallet_id))).one()
    data = wallet_object(row) | {"recharged": amount, "pay_no": pay_no}
    return await record_event(
        conn,
        "recharge.succeeded",
        merchant_id=row.merchant_id,
        livemode=row.livemode,
        data=data,
        pay_no=pay_no,
        now=now,
    )


class InsufficientFunds(Conflict):
    code = "insufficient_funds"


async def move(
    conn: AsyncConnection, wallet_id: str, kind: str, ref: str, amount: int, now: datetime
) -> int:
    """Change one wallet's balance by ``amount`` (negative: a debit) unless that would take
    it below zero; record the movement. Returns the balance after."""
    moved = (
        await conn.execute(
            wallets.update()
            .where(wallets.c.wallet_id == wallet_id, wallets.c.balance_minor + amount >= 0)
            .values(balance_minor=wallets.c.balance_minor + amount, updated_at=now)
            .returning(wallets.c.balance_minor)
        )
    ).first()
    if moved is None:
        raise InsufficientFunds(f"wallet {wallet_id} has less than {-amount}", param="amount")
    await conn.execute(
        wallet_movements.insert().values(
            wallet_id=wallet_id,
            kind=kind,
            ref=ref,
            amount_minor=amount,
            balance_after_minor=moved.balance_minor,
            created_at=now,
        )
    )
    return int(moved.balance_minor)


@dataclass(frozen=True, slots=True)
class NewTransfer:
    from_wallet_id: str
    to_wallet_id: str
    amount_minor: int
    merchant_transfer_no: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class CreatedTransfer:
    status: int
    body: bytes
    replayed: bool
    event_id: str | None = None


async def transfer(
    db: Database, merchant: MerchantAuth, new: NewTransfer, *, claim: IdempotencyClaim | None
) -> CreatedTransfer:
    """Move money between two of the merchant's wallets of one currency, at once and
    atomically: it happens whole (``succeeded``, with ``transfer.succeeded``) or not at all
    (``409 insufficient_funds``, nothing written)."""
    try:
        async with db.begin() as conn:
            return await _write_transfer(conn, merchant, new, claim, _now())
    except IntegrityError as exc:
        if claim is not None:
            async with db.read() as conn:
                answer = await conn.run_sync(stored_answer, merchant.merchant_id, claim)
            if answer is not None:
                return CreatedTransfer(answer.status, answer.body, True)
        raise Conflict(
            f"merchant_transfer_no {new.merchant_transfer_no!r} is already used",
            code="merchant_transfer_no_taken",
            param="merchant_transfer_no",
        ) from exc


async def _write_transfer(
    conn: AsyncConnection,
    merchant: MerchantAuth,
    new: NewTransfer,
    claim: IdempotencyClaim | None,
    now: datetime,
) -> CreatedTransfer:
    if claim is not None:
        answer = await conn.run_sync(stored_answer, merchant.merchant_id, claim)
        if answer is not None:
            return CreatedTransfer(answer.status, answer.body, True)
    if new.from_wallet_id == new.to_wallet_id:
        raise InvalidRequest("a transfer needs two different wallets", param="to_wallet")
    found = {
        row.wallet_id: row
        for row in await conn.execute(
            sa.select(wallets).where(
                wallets.c.wallet_id.in_((new.from_wallet_id, new.to_wallet_id)),
                wallets.c.merchant_id == merchant.merchant_id,
            )
        )
    }
    for wallet_id, param in ((new.from_wallet_id, "from_wallet"), (new.to_wallet_id, "to_wallet")):
        if wallet_id not in found:
            raise NotFound(f"no wallet {wallet_id!r}", param=param)
    currency = found[new.from_wallet_id].currency
    if found[new.to_wallet_id].currency != currency:
        raise InvalidRequest("both wallets must hold the same currency", param="to_wallet")
    transfer_no = ids.new_transfer_no()
    # Wallets are updated in id order, so two opposite transfers at once cannot deadlock on
    # PostgreSQL; a refused debit raises, and the transaction writes nothing.
    moves = [
        (new.from_wallet_id, TRANSFER_OUT, -new.amount_minor),
        (new.to_wallet_id, TRANSFER_IN, new.amount_minor),
    ]
    for wallet_id, kind, amount in sorted(moves):
        await move(conn, wallet_id, kind, transfer_no, amount, now)
    row = {
        "transfer_no": transfer_no,
        "merchant_id": merchant.merchant_id,
        "from_wallet_id": new.from_wallet_id,
        "to_wallet_id": new.to_wallet_id,
        "amount_minor": new.amount_minor,
        "currency": currency,
        "status": "succeeded",
        "merchant_transfer_no": new.merchant_transfer_no,
        "description": new.description,
        "livemode": merchant.livemode,
        "created_at": now,
    }
    await conn.execute(wallet_transfers.insert().values(**row))
    data = transfer_object(AsRow(row))
    event_id = await record_event(
        conn,
        "transfer.succeeded",
        merchant_id=merchant.merchant_id,
        livemode=merchant.livemode,
        data=data,
        transfer_no=transfer_no,
        now=now,
    )
    body = orjson.dumps(data)
    if claim is not None:
        await conn.run_sync(remember, merchant.merchant_id, claim, StoredAnswer(201, body), now)
    return CreatedTransfer(201, body, False, event_id)


async def get_wallet(db: Database, merchant_id: str, wallet_id: str) -> dict[str, Any]:
    """A wallet with its latest movements (newest first)."""
    async with db.read() as conn:
        row = (
            await conn.execute(
                sa.select(wallets).where(
                    wallets.c.wallet_id == wallet_id, wallets.c.merchant_id == merchant_id
                )
            )
        ).first()
        if row is None:
            raise NotFound(f"no wallet {wallet_id!r}", param="wallet_id")
        moves = await conn.execute(
            sa.select(wallet_movements)
            .where(wallet_movements.c.wallet_id == wallet_id)
            .order_by(wallet_movements.c.id.desc())
            .limit(100)
        )
        movements = [
            {
                "kind": move.kind,
                "ref": move.ref,
                "amount": move.amount_minor,
                "balance_after": move.balance_after_minor,
                "created_at": iso(move.created_at),
            }
            for move in moves
        ]
    return wallet_object(row) | {"movements": movements}


async def find_wallets(db: Database, merchant_id: str, owner_ref: str) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(wallets)
            .where(wallets.c.merchant_id == merchant_id, wallets.c.owner_ref == owner_ref)
            .order_by(wallets.c.currency)
        )
        return [wallet_object(row) for row in rows]


async def get_transfer(db: Database, merchant_id: str, transfer_no: str) -> dict[str, Any]:
    async with db.read() as conn:
        row = (
            await conn.execute(
                sa.select(wallet_transfers).where(
                    wallet_transfers.c.transfer_no == transfer_no,
                    wallet_transfers.c.merchant_id == merchant_id,
                )
            )
        ).first()
    if row is None:
        raise NotFound(f"no transfer {transfer_no!r}", param="transfer_no")
    return transfer_object(row)
