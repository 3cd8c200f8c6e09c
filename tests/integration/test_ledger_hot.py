"""Hot accounts under concurrency, on real SQLite and PostgreSQL: many writers posting to one
merchant account while folds run end with the exact balance, and concurrent folds never apply
a buffered posting twice."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from core.ledger import hot
from core.ledger.accounts import (
    channel_clearing,
    merchant_pending,
    set_account_hot,
    set_merchant_hot,
)
from core.ledger.balances import account_balance, balance_from_lines, check_ledger
from core.ledger.entries import payment_entry
from core.ledger.posting import write_entry
from core.merchants import create_merchant
from core.store.db import Database
from core.store.tables import ledger_hot_postings

WRITERS = 16
POSTINGS_PER_WRITER = 25
AMOUNT = 100


async def _post_many(db: Database, merchant_id: str) -> None:
    async def writer(n: int) -> None:
        for i in range(POSTINGS_PER_WRITER):
            plan = payment_entry(
                event_id=f"evt_{n}_{i}_{uuid.uuid4().hex[:8]}",
                merchant_id=merchant_id,
                pay_no=f"pay_{n}_{i}",
                channel_account_id="wx_hot",
                currency="CNY",
                livemode=False,
                amount_minor=AMOUNT,
                fee_minor=1,
                effective_at=datetime.now(UTC),
            )
            await db.run_write(write_entry, plan)

    await asyncio.gather(*(writer(n) for n in range(WRITERS)))


async def _buffered(db: Database) -> int:
    async with db.read() as conn:
        return int(
            (
                await conn.execute(sa.select(sa.func.count()).select_from(ledger_hot_postings))
            ).scalar_one()
        )


@pytest.mark.parametrize("hot_accounts", [False, True], ids=["per-row", "hot"])
async def test_concurrent_postings_end_with_the_exact_balance(
    db: Database, hot_accounts: bool
) -> None:
    merchant_id = await create_merchant(db, "Busy shop")
    pending = merchant_pending(merchant_id, "CNY", False)
    clearing = channel_clearing("wx_hot", "CNY", False)
    if hot_accounts:
        await set_merchant_hot(db, merchant_id, True)
        await set_account_hot(db, clearing, True)
    stop = asyncio.Event()

    async def fold_meanwhile() -> int:
        folded = 0
        while not stop.is_set():
            folded += await hot.apply_hot_postings(db, batch_size=50)
            await asyncio.sleep(0.005)
        return folded

    folders = [asyncio.create_task(fold_meanwhile()) for _ in range(2)]
    await _post_many(db, merchant_id)
    stop.set()
    folded_meanwhile = sum(await asyncio.gather(*folders))
    total = WRITERS * POSTINGS_PER_WRITER
    expected = total * (AMOUNT - 1)
    # Read with whatever is still buffered, then after the last fold: the same.
    assert await account_balance(db, pending.id) == expected
    assert await account_balance(db, clearing.id) == expected
    remaining = await _buffered(db)
    if hot_accounts:
        assert folded_meanwhile + remaining == 2 * total  # two hot accounts per posting
    else:
        assert folded_meanwhile == 0 and remaining == 0
    await hot.apply_hot_postings(db)
    assert await _buffered(db) == 0
    assert await account_balance(db, pending.id) == expected
    assert await balance_from_lines(db, pending.id) == expected
    check = await check_ledger(db)
    assert check.ok, check


async def test_concurrent_folds_apply_each_buffered_posting_once(db: Database) -> None:
    merchant_id = await create_merchant(db, "Busy shop")
    await set_merchant_hot(db, merchant_id, True)
    await set_account_hot(db, channel_clearing("wx_hot", "CNY", False), True)
    await _post_many(db, merchant_id)
    total = WRITERS * POSTINGS_PER_WRITER
    assert await _buffered(db) == 2 * total
    folded = await asyncio.gather(*(hot.apply_hot_postings(db, batch_size=7) for _ in range(6)))
    assert sum(folded) == 2 * total
    pending = merchant_pending(merchant_id, "CNY", False).id
    assert await account_balance(db, pending) == total * (AMOUNT - 1)
    assert await balance_from_lines(db, pending) == total * (AMOUNT - 1)
    assert (await check_ledger(db)).ok


async def test_turning_hot_off_keeps_the_buffer_counted(db: Database) -> None:
    merchant_id = await create_merchant(db, "Shop")
    await set_merchant_hot(db, merchant_id, True)
    await _post_many(db, merchant_id)
    await set_merchant_hot(db, merchant_id, False)
    await _post_many(db, merchant_id)
    pending = merchant_pending(merchant_id, "CNY", False).id
    expected = 2 * WRITERS * POSTINGS_PER_WRITER * (AMOUNT - 1)
    assert await account_balance(db, pending) == expected
    await hot.apply_hot_postings(db)
    assert await account_balance(db, pending) == expected
    assert (await check_ledger(db)).ok
