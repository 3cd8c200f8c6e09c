"""What the store holds for one merchant, read in one go: the rows the property tests'
invariants are checked against (trades, pay orders, refunds, events, outbox, anomalies)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from core.store.db import Database
from core.store.tables import anomalies, events, outbox, pay_orders, refund_orders, trade_orders


@dataclass(frozen=True, slots=True)
class TradeRow:
    trade_no: str
    status: str
    version: int


@dataclass(frozen=True, slots=True)
class PayRow:
    pay_no: str
    trade_no: str
    status: str
    version: int
    amount_minor: int
    currency: str
    refunded_minor: int
    paid_minor: int | None


@dataclass(frozen=True, slots=True)
class RefundRow:
    refund_no: str
    pay_no: str
    status: str
    version: int
    amount_minor: int
    currency: str
    automatic: bool  # made by payfront itself (a duplicate, late or partial payment)


@dataclass(frozen=True, slots=True)
class EventRow:
    event_id: str
    type: str
    pay_no: str | None
    refund_no: str | None


@dataclass(frozen=True, slots=True)
class StoreView:
    trades: dict[str, TradeRow]
    pays: dict[str, PayRow]
    refunds: dict[str, RefundRow]
    events: list[EventRow]
    # (kind, ref) → status ("pending" or "done"); refs are pay_no, refund_no or event id.
    outbox: dict[tuple[str, str], str]
    # (pay_no, kind, source_id)
    anomalies: set[tuple[str, str, str]]


async def read_view(db: Database, merchant_id: str) -> StoreView:
    """One merchant's rows (every query is scoped by merchant, so examples sharing one
    PostgreSQL database never see each other's)."""
    async with db.read() as conn:
        trades = {
            row.trade_no: TradeRow(row.trade_no, row.status, int(row.version))
            for row in await conn.execute(
                sa.select(
                    trade_orders.c.trade_no, trade_orders.c.status, trade_orders.c.version
                ).where(trade_orders.c.merchant_id == merchant_id)
            )
        }
        pays = {
            row.pay_no: PayRow(
                row.pay_no,
                row.trade_no,
                row.status,
                int(row.version),
                int(row.amount_minor),
                row.currency,
                int(row.refunded_minor),
                None if row.paid_minor is None else int(row.paid_minor),
            )
            for row in await conn.execute(
                sa.select(
                    pay_orders.c.pay_no,
                    pay_orders.c.trade_no,
                    pay_orders.c.status,
                    pay_orders.c.version,
                    pay_orders.c.amount_minor,
                    pay_orders.c.currency,
                    pay_orders.c.refunded_minor,
                    pay_orders.c.paid_minor,
                ).where(pay_orders.c.merchant_id == merchant_id)
            )
        }
        refunds = {
            row.refund_no: RefundRow(
                row.refund_no,
                row.pay_no,
                row.status,
                int(row.version),
                int(row.amount_minor),
                row.currency,
                (row.metadata or {}).get("automatic") == "true",
            )
            for row in await conn.execute(
                sa.select(
                    refund_orders.c.refund_no,
                    refund_orders.c.pay_no,
                    refund_orders.c.status,
                    refund_orders.c.version,
                    refund_orders.c.amount_minor,
                    refund_orders.c.currency,
                    refund_orders.c.metadata,
                ).where(refund_orders.c.merchant_id == merchant_id)
            )
        }
        event_rows = [
            EventRow(row.id, row.type, row.pay_no, row.refund_no)
            for row in await conn.execute(
                sa.select(events.c.id, events.c.type, events.c.pay_no, events.c.refund_no)
                .where(events.c.merchant_id == merchant_id)
                .order_by(events.c.id)
            )
        ]
        refs = [*pays, *refunds, *(event.event_id for event in event_rows)]
        owed: dict[tuple[str, str], str] = {}
        if refs:
            for row in await conn.execute(
                sa.select(outbox.c.kind, outbox.c.ref, outbox.c.status).where(
                    outbox.c.ref.in_(refs)
                )
            ):
                owed[(row.kind, row.ref)] = row.status
        found: set[tuple[str, str, str]] = set()
        if pays:
            for row in await conn.execute(
                sa.select(anomalies.c.pay_no, anomalies.c.kind, anomalies.c.source_id).where(
                    anomalies.c.pay_no.in_(list(pays))
                )
            ):
                found.add((row.pay_no, row.kind, row.source_id))
    return StoreView(trades, pays, refunds, event_rows, owed, found)
