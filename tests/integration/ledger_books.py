"""The ledger tests' books: a merchant with one channel account, and paid orders, refunds and
their events written straight into the database (each event with the post_entry outbox row
it owes), so that tests drive posting and settlement themselves; and, on the real stack, a
payment paid through the sandbox, its entries, and validation against the OpenAPI spec."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema_rs
import sqlalchemy as sa

from core import ids
from core.events import POST_ENTRY_JOB
from core.ledger.accounts import (
    channel_clearing,
    channel_fees,
    merchant_available,
    merchant_pending,
)
from core.merchants import create_merchant
from core.provision import set_channel_fee_rate
from core.store.db import Database
from core.store.tables import (
    channel_accounts,
    events,
    ledger_entries,
    outbox,
    pay_orders,
    refund_orders,
    trade_orders,
)
from tests.conftest import Stack

NOON = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)  # 12:00 in Beijing


@dataclass
class Books:
    """A merchant with one channel account, and orders and events written straight in."""

    db: Database
    merchant_id: str
    account_id: str
    channel: str

    @classmethod
    async def open(
        cls,
        db: Database,
        *,
        channel: str = "wechatpay",
        fee_rate_bps: int = 60,
        fee_fixed_minor: int = 0,
    ) -> Books:
        merchant_id = await create_merchant(db, "Ledger shop")
        account_id = f"{channel[:2]}_{merchant_id[-6:]}"
        async with db.begin() as conn:
            await conn.execute(
                channel_accounts.insert().values(
                    id=account_id,
                    merchant_id=merchant_id,
                    channel=channel,
                    credentials_enc="unused",
                    enabled=True,
                    created_at=NOON,
                )
            )
        await set_channel_fee_rate(
            db, account_id, fee_rate_bps=fee_rate_bps, fee_fixed_minor=fee_fixed_minor
        )
        return cls(db, merchant_id, account_id, channel)

    async def paid(self, amount: int, *, at: datetime = NOON, currency: str = "CNY") -> str:
        """A paid order and its payment.succeeded event (with the outbox row it owes)."""
        pay_no, trade_no = ids.new_pay_no(), ids.new_trade_no()
        async with self.db.begin() as conn:
            await conn.execute(
                trade_orders.insert().values(
                    trade_no=trade_no,
                    merchant_id=self.merchant_id,
                    merchant_order_no=trade_no,
                    amount_minor=amount,
                    currency=currency,
                    description="tea",
                    metadata={},
                    status="paid",
                    version=1,
                    created_at=at,
                    updated_at=at,
                )
            )
            await conn.execute(
                pay_orders.insert().values(
                    pay_no=pay_no,
                    trade_no=trade_no,
                    merchant_id=self.merchant_id,
                    channel_account_id=self.account_id,
                    channel=self.channel,
                    method="native",
                    amount_minor=amount,
                    currency=currency,
                    description="tea",
                    token=ids.new_token(livemode=False),
                    status="paid",
                    version=3,
                    livemode=False,
                    expires_at=at + timedelta(hours=2),
                    paid_at=at,
                    created_at=at,
                    updated_at=at,
                )
            )
        return await self.event("payment.succeeded", pay_no=pay_no, at=at)

    async def refunded(self, event_id: str, amount: int, *, at: datetime = NOON) -> str:
        """A succeeded refund of the payment of ``event_id``, and its refund.succeeded event."""
        async with self.db.read() as conn:
            pay = (
                await conn.execute(
                    sa.select(pay_orders)
                    .join(events, events.c.pay_no == pay_orders.c.pay_no)
                    .where(events.c.id == event_id)
                )
            ).one()
        refund_no = ids.new_refund_no()
        async with self.db.begin() as conn:
            await conn.execute(
                refund_orders.insert().values(
                    refund_no=refund_no,
                    pay_no=pay.pay_no,
                    trade_no=pay.trade_no,
                    merchant_id=self.merchant_id,
                    channel_account_id=self.account_id,
                    channel=self.channel,
                    amount_minor=amount,
                    currency=pay.currency,
                    metadata={},
                    status="succeeded",
                    version=4,
                    livemode=False,
                    succeeded_at=at,
                    created_at=at,
                    updated_at=at,
                )
            )
        return await self.event("refund.succeeded", pay_no=pay.pay_no, refund_no=refund_no, at=at)

    async def event(
        self, event_type: str, *, pay_no: str, refund_no: str | None = None, at: datetime = NOON
    ) -> str:
        event_id = ids.new_event_id()
        async with self.db.begin() as conn:
            await conn.execute(
                events.insert().values(
                    id=event_id,
                    merchant_id=self.merchant_id,
                    type=event_type,
                    pay_no=pay_no,
                    refund_no=refund_no,
                    payload={},
                    created_at=at,
                )
            )
            await conn.execute(
                outbox.insert().values(
                    kind=POST_ENTRY_JOB, ref=event_id, status="pending", created_at=at
                )
            )
        return event_id

    def pending(self, currency: str = "CNY") -> str:
        return merchant_pending(self.merchant_id, currency, False).id

    def available(self, currency: str = "CNY") -> str:
        return merchant_available(self.merchant_id, currency, False).id

    def clearing(self, currency: str = "CNY") -> str:
        return channel_clearing(self.account_id, currency, False).id

    def fees(self, currency: str = "CNY") -> str:
        return channel_fees(self.account_id, currency, False).id


# --- on the real stack ---


async def entries_for(stack: Stack, pay_no: str) -> list[Any]:
    async with stack.db.read() as conn:
        return list(
            (
                await conn.execute(
                    sa.select(
                        ledger_entries.c.source_event_id,
                        ledger_entries.c.debits_minor,
                        ledger_entries.c.credits_minor,
                    ).where(ledger_entries.c.pay_no == pay_no)
                )
            ).all()
        )


async def paid(stack: Stack, amount: int) -> str:
    created = await stack.create_payment(amount=amount)
    assert created.status_code == 201, created.text
    pay_no = str(created.json()["pay_no"])
    await stack.token(created.json()["token"], wait=5)
    answer = await stack.shopper_pays(pay_no)
    assert answer.status_code == 200, answer.text
    await stack.wait_status(pay_no, "paid")
    return pay_no


async def wait_entry(stack: Stack, pay_no: str, timeout: float = 5) -> list[Any]:
    async with asyncio.timeout(timeout):
        while not (found := await entries_for(stack, pay_no)):
            await asyncio.sleep(0.05)
    return found


def validate(spec: dict[str, object], path: str, status: int, body: object) -> None:
    operation = spec["paths"][path]["get"]  # type: ignore[index]
    schema = {
        **operation["responses"][str(status)]["content"]["application/json"]["schema"],
        "components": {"schemas": spec["components"]["schemas"]},  # type: ignore[index]
    }
    errors = [e.message for e in jsonschema_rs.Draft202012Validator(schema).iter_errors(body)]
    assert not errors, (path, status, body, errors)
