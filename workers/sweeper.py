"""The outbox sweeper: re-enqueue whatever the database says is owed and Redis forgot."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog

from core.outbox import owed_work
from workers.context import WorkerContext
from workers.queue import enqueue_delivery, enqueue_owed

log = structlog.get_logger(__name__)


async def sweep(ctx: dict[str, Any]) -> int:
    """arq cron job. Enqueueing is deduplicated by job id, so re-enqueueing live work is a
    no-op; jobs are idempotent, so re-running work that Redis lost mid-run is safe."""
    w: WorkerContext = ctx["payfront"]
    owed = await owed_work(w.db, grace=timedelta(seconds=w.settings.sweep_grace_s))
    for kind, ref in owed.outbox:
        await enqueue_owed(w.redis, w.settings.queue_name, kind, ref)
    for delivery_id, attempt_no in owed.deliveries:
        await enqueue_delivery(w.redis, w.settings.queue_name, delivery_id, attempt_no)
    count = len(owed.outbox) + len(owed.deliveries)
    if count:
        log.info("sweep.enqueued", outbox=len(owed.outbox), deliveries=len(owed.deliveries))
    return count
