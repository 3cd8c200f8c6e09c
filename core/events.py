"""Merchant-facing events: recorded with the state change that causes them, owed via outbox.

Each event owes a merchant notification (``notify``); an event that moves money also owes
one ledger posting (``post_entry``), made later in its own transaction (core.ledger).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from core import ids
from core.store.tables import events, outbox, pay_orders, refund_orders, trade_orders
from core.views import iso, payment_object, refund_object

NOTIFY_JOB = "notify"
POST_ENTRY_JOB = "post_entry"
# The events after which money came in for a pay order (core.receipts names the exceptions).
RECEIVED_EVENTS = frozenset(
    {"payment.succeeded", "payment.partially_paid", "payment.late_succeeded", "payment.duplicate"}
)
# The event types after which money has moved, each posted to the ledger exactly once.
MONEY_EVENTS = RECEIVED_EVENTS | {
    "refund.succeeded",
    "transfer.succeeded",
    "withdrawal.succeeded",
}

# Built once and given rows as parameters: ``.values(...)`` would build (and cache-key) a new
# statement for every event.
INSERT_EVENT = events.insert()
INSERT_OWED = outbox.insert()


async def record_payment_event(
    conn: AsyncConnection, event_type: str, pay_no: str, *, now: datetime
) -> str:
    """Insert the event and its outbox rows in the caller's transaction; return the event id."""
    row = (
        await conn.execute(
            sa.select(pay_orders, trade_orders.c.merchant_order_no, trade_orders.c.metadata)
            .join(trade_orders, trade_orders.c.trade_no == pay_orders.c.trade_no)
            .where(pay_orders.c.pay_no == pay_no)
        )
    ).one()
    return await record_event(
        conn,
        event_type,
        merchant_id=row.merchant_id,
        livemode=row.livemode,
        data=payment_object(row, row),
        pay_no=pay_no,
        refund_no=None,
        now=now,
    )


async def record_refund_event(
    conn: AsyncConnection, event_type: str, refund_no: str, *, now: datetime
) -> str:
    """The same for a refund (``refund.succeeded``, ``refund.failed``)."""
    row = (
        await conn.execute(sa.select(refund_orders).where(refund_orders.c.refund_no == refund_no))
    ).one()
    return await record_event(
        conn,
        event_type,
        merchant_id=row.merchant_id,
        livemode=row.livemode,
        data=refund_object(row),
        pay_no=row.pay_no,
        refund_no=refund_no,
        now=now,
    )


async def record_event(
    conn: AsyncConnection,
    event_type: str,
    *,
    merchant_id: str,
    livemode: bool,
    data: dict[str, Any],
    now: datetime,
    pay_no: str | None = None,
    refund_no: str | None = None,
    transfer_no: str | None = None,
    withdrawal_no: str | None = None,
) -> str:
    """Insert an event and the work it owes (its notification; its ledger posting when it
    moves money) in the caller's transaction; return its id."""
    row, owed = event_rows(
        event_type,
        merchant_id=merchant_id,
        livemode=livemode,
        data=data,
        now=now,
        pay_no=pay_no,
        refund_no=refund_no,
        transfer_no=transfer_no,
        withdrawal_no=withdrawal_no,
    )
    await conn.execute(INSERT_EVENT, row)
    await conn.execute(INSERT_OWED, owed)
    return str(row["id"])


def event_rows(
    event_type: str,
    *,
    merchant_id: str,
    livemode: bool,
    data: dict[str, Any],
    now: datetime,
    pay_no: str | None = None,
    refund_no: str | None = None,
    transfer_no: str | None = None,
    withdrawal_no: str | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The event's row and the outbox rows it owes, for ``record_event`` or a synchronous
    caller (core.pay) to insert in its transaction with ``INSERT_EVENT`` and ``INSERT_OWED``."""
    event_id = ids.new_event_id()
    payload: dict[str, Any] = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created_at": iso(now),
        "livemode": livemode,
        "data": {"object": data},
    }
    row = {
        "id": event_id,
        "merchant_id": merchant_id,
        "type": event_type,
        "pay_no": pay_no,
        "refund_no": refund_no,
        "transfer_no": transfer_no,
        "withdrawal_no": withdrawal_no,
        "payload": payload,
        "created_at": now,
    }
    owed = [NOTIFY_JOB]
    if event_type in MONEY_EVENTS:
        owed.append(POST_ENTRY_JOB)
    jobs = [
        {"kind": kind, "ref": event_id, "status": "pending", "created_at": now} for kind in owed
    ]
    return row, jobs
