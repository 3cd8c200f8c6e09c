"""Settlement on real SQLite and PostgreSQL: a due day's net pending funds move to available by
one balanced entry, however often and however concurrently the run goes; a day not yet due
stays pending; refunds of settled payments come out of available; late postings are carried;
hot accounts' buffered postings are settled like any other."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from core.ledger import hot
from core.ledger.accounts import set_merchant_hot
from core.ledger.balances import account_balance, balance_from_lines, check_ledger
from core.ledger.entries import SETTLEMENT
from core.ledger.posting import post_event
from core.ledger.settle import Settled, settle_due, settle_merchant_day
from core.ledger.settlement import DayStatus, settlement_for_day
from core.ledger.terms import SettlementTerms, day_bounds, settlement_key
from core.store.db import Database
from core.store.tables import ledger_accounts, ledger_entries, ledger_hot_postings, ledger_lines
from tests.integration.ledger_books import Books

DAY = date(2026, 11, 26)
START, END = day_bounds(DAY)  # 00:00 and 24:00 in Beijing
T1 = SettlementTerms()  # T+1: DAY is due at END


async def settlement_entries(db: Database, merchant_id: str) -> list[Any]:
    async with db.read() as conn:
        return list(
            (
                await conn.execute(
                    sa.select(ledger_entries.c.id, ledger_entries.c.source_event_id)
                    .where(
                        ledger_entries.c.merchant_id == merchant_id,
                        ledger_entries.c.event_type == SETTLEMENT,
                    )
                    .order_by(ledger_entries.c.id)
                )
            ).all()
        )


async def lines_of(db: Database, entry_id: int) -> list[tuple[str, str, int, str]]:
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(
                ledger_lines.c.account_id,
                ledger_lines.c.side,
                ledger_lines.c.amount_minor,
                ledger_lines.c.role,
            )
            .where(ledger_lines.c.entry_id == entry_id)
            .order_by(ledger_lines.c.id)
        )
        return [(a, s, int(n), r) for a, s, n, r in rows]


async def post(db: Database, *event_ids: str) -> None:
    for event_id in event_ids:
        await post_event(db, event_id)


async def test_a_due_day_moves_its_net_to_available_once(db: Database) -> None:
    books = await Books.open(db, fee_rate_bps=60)
    first = await books.paid(10_000, at=START + timedelta(hours=1))  # fee 60
    second = await books.paid(2_000, at=START + timedelta(hours=2))  # fee 12
    refund = await books.refunded(first, 5_000, at=START + timedelta(hours=3))  # 30 returned
    await post(db, first, second, refund)
    payable = 12_000 - 5_000 - (72 - 30)
    assert await account_balance(db, books.pending()) == payable

    before = await settlement_for_day(db, books.merchant_id, False, DAY, "CNY", now=END)
    assert before.status is DayStatus.DUE and before.entry_id is None
    assert before.available_at == END

    runs = await settle_due(db, T1, now=END + timedelta(minutes=1))
    (run,) = [r for r in runs if r.merchant_id == books.merchant_id]
    assert (run.day, run.outcome, run.amount_minor) == (DAY, Settled.SETTLED, payable)
    assert await account_balance(db, books.pending()) == 0
    assert await account_balance(db, books.available()) == payable
    assert await lines_of(db, run.entry_id or 0) == [
        (books.pending(), "debit", payable, "settlement"),
        (books.available(), "credit", payable, "settlement"),
    ]
    # Effective when the terms make the money available: pending at 23:59, available at 24:00.
    assert await balance_from_lines(db, books.available(), END - timedelta(seconds=1)) == 0
    assert await balance_from_lines(db, books.available(), END) == payable
    check = await check_ledger(db)
    assert check.ok, check

    # Again, by the periodic run and by the one-day call: nothing more is posted.
    await settle_due(db, T1, now=END + timedelta(minutes=2))
    (again,) = await settle_merchant_day(
        db, T1, books.merchant_id, DAY, now=END + timedelta(minutes=3)
    )
    assert again.outcome is Settled.ALREADY_SETTLED and again.entry_id == run.entry_id
    assert again.amount_minor == payable
    entries = await settlement_entries(db, books.merchant_id)
    assert [(e.id, e.source_event_id) for e in entries] == [
        (run.entry_id, settlement_key(books.merchant_id, "CNY", False, DAY))
    ]
    assert await account_balance(db, books.available()) == payable

    view = await settlement_for_day(db, books.merchant_id, False, DAY, "CNY", now=END)
    assert (view.collected_minor, view.refunded_minor, view.fees_minor) == (12_000, 5_000, 42)
    assert view.payable_minor == payable == view.settled_minor
    assert view.status is DayStatus.SETTLED and view.entry_id == run.entry_id
    assert view.settled_at is not None and (view.payments, view.refunds) == (2, 1)


async def test_concurrent_runs_post_one_entry(db: Database) -> None:
    books = await Books.open(db)
    await post(db, await books.paid(7_000, at=START + timedelta(hours=5)))  # fee 42
    now = END + timedelta(seconds=5)
    outcomes = await asyncio.gather(
        *(settle_due(db, T1, now=now) for _ in range(4)),
        *(settle_merchant_day(db, T1, books.merchant_id, DAY, now=now) for _ in range(4)),
    )
    mine = [r for runs in outcomes for r in runs if r.merchant_id == books.merchant_id]
    assert [r.outcome for r in mine].count(Settled.SETTLED) == 1
    assert {r.outcome for r in mine} <= {Settled.SETTLED, Settled.ALREADY_SETTLED}
    assert len(await settlement_entries(db, books.merchant_id)) == 1
    assert await account_balance(db, books.pending()) == 0
    assert await account_balance(db, books.available()) == 6_958
    check = await check_ledger(db)
    assert check.ok, check


async def test_a_day_not_yet_due_is_not_settled(db: Database) -> None:
    books = await Books.open(db)
    await post(db, await books.paid(1_000, at=START + timedelta(hours=1)))  # fee 6
    # T+1: at 23:59 of the day itself, nothing is due.
    late_that_day = END - timedelta(minutes=1)
    runs = await settle_due(db, T1, now=late_that_day)
    assert all(r.day < DAY and r.outcome is not Settled.SETTLED for r in runs)
    assert await settlement_entries(db, books.merchant_id) == []
    (refused,) = await settle_merchant_day(db, T1, books.merchant_id, DAY, now=late_that_day)
    assert refused.outcome is Settled.NOT_DUE
    view = await settlement_for_day(db, books.merchant_id, False, DAY, "CNY", now=late_that_day)
    assert view.status is DayStatus.NOT_DUE and view.available_at == END
    # The merchant's own term, T+3: not due the next day either, due at 00:00 three days on.
    t3 = SettlementTerms(1, {books.merchant_id: 3})
    await settle_due(db, t3, now=END + timedelta(days=1, hours=23))
    assert await settlement_entries(db, books.merchant_id) == []
    assert await account_balance(db, books.pending()) == 994
    assert await account_balance(db, books.available()) == 0
    runs = await settle_due(db, t3, now=END + timedelta(days=2))
    assert [(r.day, r.outcome, r.amount_minor) for r in runs] == [(DAY, Settled.SETTLED, 994)]
    view = await settlement_for_day(db, books.merchant_id, False, DAY, "CNY", terms=t3)
    assert view.available_at == END + timedelta(days=2) and view.status is DayStatus.SETTLED
    assert await account_balance(db, books.available()) == 994


async def test_a_refund_after_settlement_comes_out_of_available(db: Database) -> None:
    books = await Books.open(db)
    paid = await books.paid(10_000, at=START + timedelta(hours=1))  # fee 60
    await post(db, paid)
    await settle_due(db, T1, now=END)
    assert await account_balance(db, books.available()) == 9_940
    refund = await books.refunded(paid, 4_000, at=END + timedelta(hours=9))  # 24 returned
    await post(db, refund)
    assert await account_balance(db, books.pending()) == 0
    assert await account_balance(db, books.available()) == 9_940 - 4_000 + 24
    next_day = DAY + timedelta(days=1)
    view = await settlement_for_day(
        db, books.merchant_id, False, next_day, "CNY", now=END + timedelta(days=1)
    )
    assert (view.refunded_minor, view.fees_minor, view.payable_minor) == (4_000, -24, -3_976)
    # Nothing of that day waits in pending: its settlement moves nothing.
    assert view.status is DayStatus.NOTHING_TO_SETTLE
    runs = await settle_due(db, T1, now=END + timedelta(days=1))
    assert [(r.day, r.outcome) for r in runs] == [(next_day, Settled.NOTHING_TO_SETTLE)]
    assert len(await settlement_entries(db, books.merchant_id)) == 1
    check = await check_ledger(db)
    assert check.ok, check


async def test_stripe_refund_after_settlement_leaves_available_owing_the_fee(db: Database) -> None:
    books = await Books.open(db, channel="stripe", fee_rate_bps=290, fee_fixed_minor=30)
    paid = await books.paid(1_000, at=START + timedelta(hours=1), currency="USD")  # fee 59
    await post(db, paid)
    await settle_due(db, T1, now=END)
    await post(db, await books.refunded(paid, 1_000, at=END + timedelta(hours=1)))
    # Stripe keeps its fee: the merchant owes it, out of available (negative until netted).
    assert await account_balance(db, books.available("USD")) == -59
    assert await account_balance(db, books.pending("USD")) == 0
    await post(db, await books.paid(2_000, at=END + timedelta(hours=2), currency="USD"))  # 88
    await settle_due(db, T1, now=END + timedelta(days=1))
    assert await account_balance(db, books.available("USD")) == -59 + 1_912
    assert (await check_ledger(db)).ok


async def test_days_settle_in_order_and_a_net_negative_day_moves_back(db: Database) -> None:
    books = await Books.open(db)
    paid = await books.paid(1_000, at=START + timedelta(hours=1))  # fee 6
    other = await books.paid(500, at=START + timedelta(hours=2))  # fee 3
    # The next day, before anything is settled: a refund larger than that day's takings.
    refund = await books.refunded(paid, 1_000, at=END + timedelta(hours=1))  # fee 6 returned
    await post(db, paid, other, refund)
    # Two days due at once: each gets its own entry, the earlier one first.
    runs = await settle_due(db, T1, now=END + timedelta(days=1, minutes=1))
    assert [(r.day, r.outcome, r.amount_minor) for r in runs] == [
        (DAY, Settled.SETTLED, 994 + 497),
        (DAY + timedelta(days=1), Settled.SETTLED, -994),
    ]
    negative = runs[1].entry_id or 0
    assert await lines_of(db, negative) == [
        (books.available(), "debit", 994, "settlement"),
        (books.pending(), "credit", 994, "settlement"),
    ]
    assert await account_balance(db, books.pending()) == 0
    assert await account_balance(db, books.available()) == 497
    assert (await check_ledger(db)).ok


async def test_a_late_posting_is_carried_into_the_next_settlement(db: Database) -> None:
    books = await Books.open(db)
    await post(db, await books.paid(1_000, at=START + timedelta(hours=1)))  # fee 6
    await settle_due(db, T1, now=END)
    # A payment of that day whose entry is posted only after the day was settled.
    await post(db, await books.paid(2_000, at=START + timedelta(hours=23)))  # fee 12
    assert await account_balance(db, books.pending()) == 1_988
    view = await settlement_for_day(db, books.merchant_id, False, DAY, "CNY", now=END)
    assert view.payable_minor == 994 + 1_988 and view.settled_minor == 994
    # The next day has no movements of its own; its settlement carries the late payment.
    runs = await settle_due(db, T1, now=END + timedelta(days=1))
    assert [(r.day, r.outcome, r.amount_minor) for r in runs] == [
        (DAY + timedelta(days=1), Settled.SETTLED, 1_988)
    ]
    assert await account_balance(db, books.pending()) == 0
    assert await account_balance(db, books.available()) == 994 + 1_988
    assert (await check_ledger(db)).ok


async def test_buffered_hot_postings_are_settled_with_the_rest(db: Database) -> None:
    books = await Books.open(db)
    await set_merchant_hot(db, books.merchant_id, True)
    await post(db, *[await books.paid(1_000, at=START + timedelta(hours=h)) for h in (1, 2, 3)])
    # Nothing folded yet: the stored balance is 0, the buffer holds the three postings.
    async with db.read() as conn:
        stored = (
            await conn.execute(
                sa.select(ledger_accounts.c.balance_minor).where(
                    ledger_accounts.c.id == books.pending()
                )
            )
        ).scalar_one()
    assert stored == 0 and await account_balance(db, books.pending()) == 3 * 994
    # The settlement counts the lines, buffered or folded alike.
    (run,) = [r for r in await settle_due(db, T1, now=END) if r.merchant_id == books.merchant_id]
    assert (run.outcome, run.amount_minor) == (Settled.SETTLED, 3 * 994)
    # Its own change to the hot pending account is buffered too: the balance read is exact.
    assert await account_balance(db, books.pending()) == 0
    assert await account_balance(db, books.available()) == 3 * 994
    assert (await check_ledger(db)).ok
    async with db.read() as conn:
        buffered = (
            await conn.execute(
                sa.select(sa.func.sum(ledger_hot_postings.c.delta_minor)).where(
                    ledger_hot_postings.c.account_id == books.pending()
                )
            )
        ).scalar_one()
    assert buffered == 0  # +994 × 3, then −2982
    await hot.apply_hot_postings(db)
    assert await account_balance(db, books.pending()) == 0
    assert await balance_from_lines(db, books.pending()) == 0
    # A second run after the fold settles nothing more.
    await settle_due(db, T1, now=END + timedelta(minutes=1))
    assert len(await settlement_entries(db, books.merchant_id)) == 1
    assert (await check_ledger(db)).ok


@pytest.mark.parametrize("hot_pending", [False, True], ids=["per-row", "hot"])
async def test_settling_while_payments_are_posted_loses_nothing(
    db: Database, hot_pending: bool
) -> None:
    books = await Books.open(db)
    await set_merchant_hot(db, books.merchant_id, hot_pending)
    day_events = [await books.paid(1_000, at=START + timedelta(minutes=m)) for m in range(12)]
    next_day = [await books.paid(1_000, at=END + timedelta(minutes=m)) for m in range(12)]

    async def settle_repeatedly(now: datetime) -> None:
        for _ in range(6):
            await settle_due(db, T1, now=now)
            await asyncio.sleep(0)

    now = END + timedelta(days=1)  # both days due
    await asyncio.gather(
        *(post_event(db, e) for e in day_events + next_day),
        settle_repeatedly(now),
        settle_repeatedly(now),
        hot.apply_hot_postings(db, batch_size=3),
    )
    # Whatever the interleaving, one more run settles what was posted after the last one.
    await settle_due(db, T1, now=now)
    assert await account_balance(db, books.pending()) == 0
    assert await account_balance(db, books.available()) == 24 * 994
    entries = await settlement_entries(db, books.merchant_id)
    assert 1 <= len(entries) <= 2
    assert len({e.source_event_id for e in entries}) == len(entries)
    assert (await check_ledger(db)).ok


async def test_the_worked_example_of_the_docs(db: Database) -> None:
    """docs/ledger.md, Settlement, worked example: every figure."""
    books = await Books.open(db, fee_rate_bps=60)
    a = await books.paid(10_000, at=START + timedelta(hours=10))
    b = await books.paid(2_000, at=START + timedelta(hours=11))
    await post(db, a, b, await books.refunded(a, 5_000, at=START + timedelta(hours=15)))
    assert await account_balance(db, books.pending()) == 6_958
    (run,) = await settle_due(db, T1, now=END)
    assert run.amount_minor == 6_958
    (entry,) = await settlement_entries(db, books.merchant_id)
    assert entry.source_event_id.startswith("stl_") and entry.source_event_id.endswith("_20261126")
    await post(db, await books.refunded(a, 4_000, at=END + timedelta(hours=9)))
    assert await account_balance(db, books.pending()) == 0
    assert await account_balance(db, books.available()) == 2_982
    assert [r.outcome for r in await settle_due(db, T1, now=END + timedelta(days=1))] == [
        Settled.NOTHING_TO_SETTLE
    ]
    first = await settlement_for_day(db, books.merchant_id, False, DAY, "CNY")
    assert (first.collected_minor, first.refunded_minor, first.fees_minor) == (12_000, 5_000, 42)
    assert (first.payable_minor, first.status, first.settled_minor) == (
        6_958,
        DayStatus.SETTLED,
        6_958,
    )
    second = await settlement_for_day(
        db, books.merchant_id, False, DAY + timedelta(days=1), "CNY", now=END + timedelta(days=1)
    )
    assert (second.refunded_minor, second.fees_minor, second.payable_minor) == (4_000, -24, -3_976)
    assert second.status is DayStatus.NOTHING_TO_SETTLE and second.entry_id is None
    assert (await check_ledger(db)).ok
