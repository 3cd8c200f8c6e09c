"""Accounting jobs (notify pool: accounting is not on the core link): post the entry an
event owes, fold hot accounts' buffered postings into their balances, and settle due days
(pending → available)."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

import structlog
from arq import cron
from arq.cron import CronJob

from core.ledger import hot, posting
from core.ledger.settle import SettlementRun, settle_due, settle_merchant_day
from core.ledger.terms import SettlementTerms
from core.settings import Settings
from workers.context import WorkerContext
from workers.instrument import instrumented

log = structlog.get_logger(__name__)


async def post_entry(ctx: dict[str, Any], event_id: str) -> str:
    """arq job: the event's journal entry, once; marks its outbox row done."""
    w: WorkerContext = ctx["payfront"]
    outcome = await posting.post_event(w.db, event_id, ledger_db=w.ledger_db)
    log.info("ledger.post_entry", event_id=event_id, outcome=outcome.value)
    return outcome.value


async def apply_hot_postings(ctx: dict[str, Any]) -> int:
    """arq cron: fold the hot-account buffer into the stored balances, in batches."""
    w: WorkerContext = ctx["payfront"]
    return await hot.apply_hot_postings(w.ledger_db)


async def settle_due_days(ctx: dict[str, Any]) -> dict[str, int]:
    """arq cron: settle every merchant's due days (each once, however often this runs)."""
    w: WorkerContext = ctx["payfront"]
    return _summary(await settle_due(w.ledger_db, SettlementTerms.from_settings(w.settings)))


async def settle_day(ctx: dict[str, Any], merchant_id: str, day: str) -> dict[str, int]:
    """arq job: settle one merchant's day (ISO date), earlier unsettled days first; a day
    not yet due is refused (``not_due``)."""
    w: WorkerContext = ctx["payfront"]
    terms = SettlementTerms.from_settings(w.settings)
    runs = await settle_merchant_day(w.ledger_db, terms, merchant_id, date.fromisoformat(day))
    return _summary(runs)


def _summary(runs: list[SettlementRun]) -> dict[str, int]:
    outcomes = Counter(run.outcome.value for run in runs)
    for run in runs:
        if run.entry_id is not None and run.outcome == "settled":
            log.info(
                "ledger.settled",
                merchant_id=run.merchant_id,
                currency=run.currency,
                livemode=run.livemode,
                day=run.day.isoformat(),
                amount_minor=run.amount_minor,
                entry_id=run.entry_id,
            )
    return dict(outcomes)


def settlement_cron(settings: Settings) -> CronJob:
    """The ``settle_due_days`` cron of the notify pool, every ``settlement_interval_s``
    (rounded to a divisor of the minute or the hour), and once at start-up."""
    interval = settings.settlement_interval_s
    if interval < 60:
        minute, second = None, set(range(0, 60, interval))
    else:
        minute, second = set(range(0, 60, max(1, interval // 60))), {0}
    return cron(
        instrumented(settle_due_days),
        name=f"{settings.notify_queue_name}:settle_due_days",
        minute=minute,
        second=second,
        run_at_startup=True,
        unique=True,
    )
