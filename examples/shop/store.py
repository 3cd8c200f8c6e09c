"""The shop's own database: its orders, the webhook events it has applied, its webhook secret.

Plain ``sqlite3`` from the standard library, called through ``asyncio.to_thread`` so the event
loop never waits on the disk. A real shop would use its existing database the same way: the
point is that an event id is recorded in the same transaction as the change it causes.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

ResultT = TypeVar("ResultT")

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    order_no    TEXT PRIMARY KEY,
    product     TEXT NOT NULL,
    amount      INTEGER NOT NULL,
    currency    TEXT NOT NULL,
    status      TEXT NOT NULL,
    pay_no      TEXT,
    token       TEXT,
    paid_at     TEXT,
    created_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_events (
    event_id    TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    order_no    TEXT,
    received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_secrets (
    gateway_url TEXT NOT NULL,
    webhook_url TEXT NOT NULL,
    secret      TEXT NOT NULL,
    PRIMARY KEY (gateway_url, webhook_url)
);
"""

# The shop's order statuses, and what each payfront event moves an order to.
AWAITING_PAYMENT = "awaiting_payment"
PAID = "paid"
PAYMENT_FAILED = "payment_failed"
EXPIRED = "expired"
EVENT_STATUS = {
    "payment.succeeded": PAID,
    "payment.failed": PAYMENT_FAILED,
    "payment.closed": EXPIRED,
}


@dataclass(frozen=True, slots=True)
class Order:
    order_no: str
    product: str
    amount: int
    currency: str
    status: str
    pay_no: str | None
    token: str | None
    paid_at: str | None
    created_at: str

    def as_json(self) -> dict[str, object]:
        return {
            "order_no": self.order_no,
            "product": self.product,
            "amount": self.amount,
            "currency": self.currency,
            "status": self.status,
            "pay_no": self.pay_no,
            "token": self.token,
            "paid_at": self.paid_at,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class EventPayment:
    """What the shop needs from a verified event's payment object."""

    merchant_order_no: str
    pay_no: str
    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class Applied:
    """What applying one webhook event did."""

    duplicate: bool
    order_no: str | None
    status: str | None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_order_no() -> str:
    # The shop's own order number doubles as payfront's merchant_order_no ([A-Za-z0-9_.:-]).
    return "shop-" + uuid.uuid4().hex[:16]


class ShopStore:
    def __init__(self, path: Path) -> None:
        self._path = path

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._path, timeout=10, isolation_level=None)
        connection.row_factory = sqlite3.Row
        return connection

    def _run(self, work: Callable[[sqlite3.Connection], ResultT]) -> ResultT:
        connection = self._connect()
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                result = work(connection)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
            return result
        finally:
            connection.close()

    async def open(self) -> None:
        def create() -> None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            connection = self._connect()
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.executescript(SCHEMA)
            finally:
                connection.close()

        await asyncio.to_thread(create)

    async def webhook_secret(self, gateway_url: str, webhook_url: str) -> str | None:
        def read(connection: sqlite3.Connection) -> str | None:
            row = connection.execute(
                "SELECT secret FROM webhook_secrets WHERE gateway_url = ? AND webhook_url = ?",
                (gateway_url, webhook_url),
            ).fetchone()
            return None if row is None else str(row["secret"])

        return await asyncio.to_thread(self._run, read)

    async def save_webhook_secret(self, gateway_url: str, webhook_url: str, secret: str) -> None:
        def write(connection: sqlite3.Connection) -> None:
            connection.execute(
                "INSERT OR REPLACE INTO webhook_secrets VALUES (?, ?, ?)",
                (gateway_url, webhook_url, secret),
            )

        await asyncio.to_thread(self._run, write)

    async def create_order(self, product: str, amount: int, currency: str) -> Order:
        order = Order(
            order_no=new_order_no(),
            product=product,
            amount=amount,
            currency=currency,
            status=AWAITING_PAYMENT,
            pay_no=None,
            token=None,
            paid_at=None,
            created_at=_now(),
        )

        def write(connection: sqlite3.Connection) -> None:
            connection.execute(
                "INSERT INTO orders (order_no, product, amount, currency, status, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (order.order_no, product, amount, currency, order.status, order.created_at),
            )

        await asyncio.to_thread(self._run, write)
        return order

    async def attach_payment(self, order_no: str, pay_no: str, token: str) -> None:
        def write(connection: sqlite3.Connection) -> None:
            connection.execute(
                "UPDATE orders SET pay_no = ?, token = ? WHERE order_no = ?",
                (pay_no, token, order_no),
            )

        await asyncio.to_thread(self._run, write)

    async def order(self, order_no: str) -> Order | None:
        def read(connection: sqlite3.Connection) -> Order | None:
            row = connection.execute(
                "SELECT * FROM orders WHERE order_no = ?", (order_no,)
            ).fetchone()
            return None if row is None else Order(**dict(row))

        return await asyncio.to_thread(self._run, read)

    async def event_ids(self) -> list[str]:
        def read(connection: sqlite3.Connection) -> list[str]:
            rows = connection.execute("SELECT event_id FROM webhook_events ORDER BY rowid")
            return [str(row["event_id"]) for row in rows]

        return await asyncio.to_thread(self._run, read)

    async def apply_event(
        self, event_id: str, event_type: str, payment: EventPayment | None
    ) -> Applied:
        """Record the event id and apply it, in one transaction: a redelivered event (payfront
        delivers at least once) finds its id recorded and changes nothing."""

        def apply(connection: sqlite3.Connection) -> Applied:
            order_no = payment.merchant_order_no if payment is not None else None
            inserted = connection.execute(
                "INSERT OR IGNORE INTO webhook_events VALUES (?, ?, ?, ?)",
                (event_id, event_type, order_no, _now()),
            ).rowcount
            if not inserted:
                return Applied(duplicate=True, order_no=order_no, status=None)
            target = EVENT_STATUS.get(event_type)
            if payment is None or target is None:
                return Applied(duplicate=False, order_no=order_no, status=None)
            row = connection.execute(
                "SELECT amount, currency, status FROM orders WHERE order_no = ?", (order_no,)
            ).fetchone()
            if row is None:
                return Applied(duplicate=False, order_no=None, status=None)  # not this shop's
            if (row["amount"], row["currency"]) != (payment.amount, payment.currency):
                # Never mark paid what was not paid in full; a person should look at it.
                return Applied(duplicate=False, order_no=order_no, status=row["status"])
            if row["status"] == PAID:
                return Applied(duplicate=False, order_no=order_no, status=PAID)  # final
            connection.execute(
                "UPDATE orders SET status = ?, pay_no = ?, paid_at = ? WHERE order_no = ?",
                (target, payment.pay_no, _now() if target == PAID else None, order_no),
            )
            return Applied(duplicate=False, order_no=order_no, status=target)

        return await asyncio.to_thread(self._run, apply)
