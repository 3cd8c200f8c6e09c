"""Merchant-facing events: recorded with the state change that causes them, owed via outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from core import ids
from core.store.tables import events, outbox, pay_orders, trade_orders
from core.views import iso, payment_object

NOTIFY_JOB = "notify"


async def record_payment_event(
    conn: AsyncConnection, event_type: str, pay_no: str, *, now: datetime
) -> str:
    """Insert the event and its outbox row in the caller's transaction; return the event id."""
    row = (
        await conn.execute(
            sa.select(pay_orders, trade_orders.c.merchant_order_no, trade_orders.c.metadata)
            .join(trade_orders, trade_orders.c.trade_no == pay_orders.c.trade_no)
            .where(pay_orders.c.pay_no == pay_no)
        )
    ).one()
    event_id = ids.new_event_id()
    payload: dict[str, Any] = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created_at": iso(now),
        "livemode": row.livemode,
        "data": {"object": payment_object(row, row)},
    }
    await conn.execute(
        events.insert().values(
            id=event_id,
            merchant_id=row.merchant_id,
            type=event_type,
            pay_no=pay_no,
            payload=payload,
            created_at=now,
        )
    )
    await conn.execute(
        outbox.insert().values(kind=NOTIFY_JOB, ref=event_id, status="pending", created_at=now)
    )
    return event_id
