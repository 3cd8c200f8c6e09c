"""Group commit (``Database.run_write_grouped``) on the real databases: units queued together
share a transaction, and still each get their own outcome; and callbacks for one order
delivered at once through it apply the payment exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from core import receipts
from core.receipts import ApplyOutcome, PaymentReport
from core.store.db import Database
from core.store.tables import events, outbox, pay_orders
from core.vault import Vault
from tests import factories


def _owe(conn: sa.Connection, ref: str) -> str:
    conn.execute(
        outbox.insert(),
        {"kind": "test", "ref": ref, "status": "pending", "created_at": datetime.now(UTC)},
    )
    return ref


def _fail_after_writing(conn: sa.Connection, ref: str) -> str:
    _owe(conn, ref)
    raise LookupError(ref)


async def _refs(db: Database) -> list[str]:
    async with db.read() as conn:
        rows = await conn.execute(sa.select(outbox.c.ref).where(outbox.c.kind == "test"))
        return sorted(rows.scalars())


async def test_units_queued_together_each_get_their_result(db: Database) -> None:
    refs = [f"unit-{i:02}" for i in range(40)]
    results = await asyncio.gather(*(db.run_write_grouped(_owe, ref) for ref in refs))
    assert results == refs
    assert await _refs(db) == refs


async def test_a_failing_unit_fails_alone(db: Database) -> None:
    """One unit raises after writing, another breaks a constraint: both fail with their own
    error and leave nothing; the units around them in the same group commit."""
    calls = [db.run_write_grouped(_owe, f"ok-{i}") for i in range(5)]
    calls.append(db.run_write_grouped(_fail_after_writing, "raises"))
    calls.append(db.run_write_grouped(_owe, "ok-1"))  # the same (kind, ref) as an earlier unit
    calls += [db.run_write_grouped(_owe, f"ok-{i}") for i in range(5, 10)]
    results = await asyncio.gather(*calls, return_exceptions=True)

    assert results[:5] == [f"ok-{i}" for i in range(5)]
    assert isinstance(results[5], LookupError)
    assert isinstance(results[6], IntegrityError)
    assert results[7:] == [f"ok-{i}" for i in range(5, 10)]
    assert await _refs(db) == [f"ok-{i}" for i in range(10)]


async def test_run_write_after_dispose(db: Database) -> None:
    assert await db.run_write_grouped(_owe, "before") == "before"
    await db.dispose()
    assert await db.run_write(_owe, "after") == "after"
    assert await _refs(db) == ["after", "before"]


@pytest.mark.parametrize("deliveries", [2, 12])
async def test_one_payment_delivered_at_once_is_applied_once(
    db: Database, vault: Vault, deliveries: int
) -> None:
    merchant, account_id = await factories.merchant_with_account(db, vault)
    pay_no = await factories.payment(db, merchant, account_id, amount_minor=500)
    report = PaymentReport(
        channel_account_id=account_id,
        out_trade_no=pay_no,
        amount_minor=500,
        currency="CNY",
        channel_trade_no="4200000009",
        paid_at=None,
        source_id="cb-same",
    )
    outcomes = await asyncio.gather(
        *(receipts.apply_payment(db, report) for _ in range(deliveries))
    )

    applied = [event_id for outcome, event_id in outcomes if outcome is ApplyOutcome.APPLIED]
    assert len(applied) == 1 and applied[0] is not None
    assert sorted(outcome for outcome, _ in outcomes) == sorted(
        [ApplyOutcome.APPLIED] + [ApplyOutcome.DUPLICATE] * (deliveries - 1)
    )
    async with db.read() as conn:
        pay = (await conn.execute(sa.select(pay_orders).where(pay_orders.c.pay_no == pay_no))).one()
        recorded = (
            await conn.execute(
                sa.select(events.c.id, events.c.type).where(events.c.pay_no == pay_no)
            )
        ).all()
        owed = (
            await conn.execute(
                sa.select(outbox.c.kind, outbox.c.status).where(outbox.c.ref == applied[0])
            )
        ).all()
    assert (pay.status, pay.paid_minor, pay.channel_trade_no) == ("paid", 500, "4200000009")
    assert [(row.id, row.type) for row in recorded] == [(applied[0], "payment.succeeded")]
    assert sorted(owed) == [("notify", "pending"), ("post_entry", "pending")]
