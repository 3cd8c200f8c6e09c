"""The ledger on real SQLite and PostgreSQL: an event's entry is posted once however often the
job runs, refunds reverse payments (fees per channel), balances equal the lines at any time,
and the settlement view adds up. Orders and events are written directly here; the whole path
through the sandbox is in test_ledger_api.py."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from core.events import POST_ENTRY_JOB
from core.ledger import hot
from core.ledger.accounts import set_merchant_hot
from core.ledger.balances import account_balance, balance_from_lines, check_ledger
from core.ledger.posting import Posted, post_event
from core.ledger.settlement import SETTLEMENT_TZ, settlement_for_day
from core.store.db import Database
from core.store.tables import events, ledger_entries, ledger_lines, outbox
from tests.integration.ledger_books import NOON, Books


async def entries_of(db: Database, event_id: str) -> list[sa.Row[tuple[str, str, int, str]]]:
    async with db.read() as conn:
        return list(
            (
                await conn.execute(
                    sa.select(
                        ledger_lines.c.account_id,
                        ledger_lines.c.side,
                        ledger_lines.c.amount_minor,
                        ledger_lines.c.role,
                    )
                    .join(ledger_entries)
                    .where(ledger_entries.c.source_event_id == event_id)
                    .order_by(ledger_lines.c.id)
                )
            ).all()
        )


async def outbox_status(db: Database, event_id: str) -> str:
    async with db.read() as conn:
        return str(
            (
                await conn.execute(
                    sa.select(outbox.c.status).where(
                        outbox.c.kind == POST_ENTRY_JOB, outbox.c.ref == event_id
                    )
                )
            ).scalar_one()
        )


async def test_a_payment_is_posted_once_however_often_the_job_runs(db: Database) -> None:
    books = await Books.open(db)
    event_id = await books.paid(10_000)
    assert await post_event(db, event_id) is Posted.POSTED
    assert await post_event(db, event_id) is Posted.ALREADY_POSTED
    # Concurrent runs too: at most one writes, the others find it there.
    outcomes = await asyncio.gather(*(post_event(db, event_id) for _ in range(5)))
    assert set(outcomes) == {Posted.ALREADY_POSTED}
    lines = await entries_of(db, event_id)
    assert [(a, s, n, r) for a, s, n, r in lines] == [
        (books.clearing(), "debit", 9_940, "net"),
        (books.fees(), "debit", 60, "fee"),
        (books.pending(), "credit", 10_000, "gross"),
        (books.pending(), "debit", 60, "fee"),
        (books.fees(), "credit", 60, "fee"),
    ]
    assert await outbox_status(db, event_id) == "done"
    assert await account_balance(db, books.pending()) == 9_940
    assert await account_balance(db, books.clearing()) == 9_940
    assert await account_balance(db, books.fees()) == 0
    assert (await check_ledger(db)).ok


async def test_concurrent_first_runs_write_one_entry(db: Database) -> None:
    books = await Books.open(db)
    event_id = await books.paid(555)
    outcomes = await asyncio.gather(*(post_event(db, event_id) for _ in range(6)))
    assert sorted(outcomes).count(Posted.POSTED) == 1
    async with db.read() as conn:
        count = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(ledger_entries)
                .where(ledger_entries.c.source_event_id == event_id)
            )
        ).scalar_one()
    assert count == 1
    assert await outbox_status(db, event_id) == "done"


async def test_events_that_move_no_money_post_nothing(db: Database) -> None:
    books = await Books.open(db)
    paid = await books.paid(100)
    async with db.read() as conn:
        pay_no = (
            await conn.execute(sa.select(events.c.pay_no).where(events.c.id == paid))
        ).scalar()
    assert pay_no is not None
    closed = await books.event("payment.closed", pay_no=pay_no)
    assert await post_event(db, closed) is Posted.NOT_MONEY
    assert await post_event(db, "evt_missing") is Posted.NO_EVENT
    assert await entries_of(db, closed) == []
    assert await outbox_status(db, closed) == "done"


async def test_partial_refunds_reverse_the_payment_and_return_the_whole_fee(db: Database) -> None:
    books = await Books.open(db, fee_rate_bps=60)
    paid = await books.paid(1_001)  # fee: 6.006 fen → 6
    refunds = [
        await books.refunded(paid, amount, at=NOON + timedelta(minutes=i + 1))
        for i, amount in enumerate((333, 333, 335))
    ]
    # Refunds posted before the payment (its job was late): the payment is posted first.
    for event_id in reversed(refunds):
        assert await post_event(db, event_id) is Posted.POSTED
    assert await post_event(db, paid) is Posted.ALREADY_POSTED
    returned = [
        sum(n for a, s, n, r in await entries_of(db, e) if r == "fee_refund" and s == "credit") // 2
        for e in refunds
    ]
    assert sum(returned) == 6 and returned == [2, 2, 2]
    # Fully refunded with the whole fee returned: every account is back at zero.
    for account_id in (books.pending(), books.clearing(), books.fees()):
        assert await account_balance(db, account_id) == 0
    assert (await check_ledger(db)).ok


async def test_stripe_keeps_its_fee_on_a_refund(db: Database) -> None:
    books = await Books.open(db, channel="stripe", fee_rate_bps=290, fee_fixed_minor=30)
    paid = await books.paid(1_000, currency="USD")  # fee 29 + 30
    refund = await books.refunded(paid, 1_000)
    assert await post_event(db, paid) is Posted.POSTED
    assert await post_event(db, refund) is Posted.POSTED
    assert await account_balance(db, books.pending("USD")) == -59  # the merchant bore the fee
    assert await account_balance(db, books.clearing("USD")) == -59
    assert await account_balance(db, books.fees("USD")) == 0
    assert (await check_ledger(db)).ok


async def test_balances_at_any_time_are_the_sum_of_lines(db: Database) -> None:
    books = await Books.open(db)
    times = [NOON + timedelta(hours=h) for h in range(4)]
    first = await books.paid(10_000, at=times[0])
    second = await books.paid(5_000, at=times[2])
    refund = await books.refunded(first, 4_000, at=times[3])
    for event_id in (first, second, refund):
        await post_event(db, event_id)
    pending = books.pending()
    assert await balance_from_lines(db, pending, times[0] - timedelta(seconds=1)) == 0
    assert await balance_from_lines(db, pending, times[1]) == 9_940
    assert await balance_from_lines(db, pending, times[2]) == 9_940 + 4_970
    assert await balance_from_lines(db, pending, times[3]) == 9_940 + 4_970 - 4_000 + 24
    assert await balance_from_lines(db, pending) == await account_balance(db, pending)
    check = await check_ledger(db)
    assert check.ok, check


async def test_hot_merchant_postings_are_buffered_then_folded(db: Database) -> None:
    books = await Books.open(db)
    await set_merchant_hot(db, books.merchant_id, True)
    events_ = [await books.paid(1_000) for _ in range(5)]
    for event_id in events_:
        await post_event(db, event_id)
    pending = books.pending()
    # Read before the fold: stored balance (0) plus the buffer.
    assert await account_balance(db, pending) == 5 * 994
    async with db.read() as conn:
        stored = (
            await conn.execute(
                sa.text("SELECT balance_minor FROM ledger_accounts WHERE id = :i"), {"i": pending}
            )
        ).scalar_one()
    assert stored == 0
    assert (await check_ledger(db)).ok
    assert await hot.apply_hot_postings(db, batch_size=2) == 5
    assert await account_balance(db, pending) == 5 * 994
    assert await hot.apply_hot_postings(db) == 0
    assert await balance_from_lines(db, pending) == 5 * 994
    assert (await check_ledger(db)).ok


async def test_settlement_view_adds_up_one_day(db: Database) -> None:
    books = await Books.open(db)
    day = date(2026, 11, 26)
    start = datetime(2026, 11, 26, tzinfo=SETTLEMENT_TZ)
    a = await books.paid(10_000, at=start + timedelta(minutes=1))
    b = await books.paid(2_000, at=start + timedelta(hours=23, minutes=59))
    c = await books.paid(3_000, at=start - timedelta(minutes=1))  # the day before
    r = await books.refunded(a, 5_000, at=start + timedelta(hours=2))
    for event_id in (a, b, c, r):
        await post_event(db, event_id)
    view = await settlement_for_day(db, books.merchant_id, False, day, "CNY")
    assert view.collected_minor == 12_000
    assert view.refunded_minor == 5_000
    assert view.fees_minor == 60 + 12 - 30
    assert view.payable_minor == 12_000 - 5_000 - 42
    assert (view.payments, view.refunds) == (2, 1)
    before = await settlement_for_day(db, books.merchant_id, False, day - timedelta(days=1), "CNY")
    assert (before.collected_minor, before.fees_minor, before.payable_minor) == (3_000, 18, 2_982)
    other = await settlement_for_day(db, books.merchant_id, True, day, "CNY")
    assert other.collected_minor == 0 and other.payable_minor == 0
