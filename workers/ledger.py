"""Accounting jobs (notify pool: accounting is not on the core link): post the entry an
event owes, and fold hot accounts' buffered postings into their balances."""

from __future__ import annotations

from typing import Any

import structlog

from core.ledger import hot, posting
from workers.context import WorkerContext

log = structlog.get_logger(__name__)


async def post_entry(ctx: dict[str, Any], event_id: str) -> str:
    """arq job: the event's journal entry, once; marks its outbox row done."""
    w: WorkerContext = ctx["payfront"]
    outcome = await posting.post_event(w.db, event_id)
    log.info("ledger.post_entry", event_id=event_id, outcome=outcome.value)
    return outcome.value


async def apply_hot_postings(ctx: dict[str, Any]) -> int:
    """arq cron: fold the hot-account buffer into the stored balances, in batches."""
    w: WorkerContext = ctx["payfront"]
    return await hot.apply_hot_postings(w.db)
