"""The outbox sweeper: re-enqueue whatever the database says is owed and Redis forgot."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog

from core.metrics import OUTBOX_LAG, QUEUE_DEPTH, WEBHOOK_BACKLOG
from core.outbox import backlog, owed_work
from workers.context import WorkerContext
from workers.queue import (
    enqueue_check,
    enqueue_check_refund,
    enqueue_check_withdrawal,
    enqueue_delivery,
    enqueue_owed,
)

log = structlog.get_logger(__name__)


async def _observe_backlog(w: WorkerContext) -> None:
    lag = await backlog(w.db)
    OUTBOX_LAG.labels(w.settings.mode).set(lag.outbox_lag_s)
    WEBHOOK_BACKLOG.labels(w.settings.mode).set(lag.pending_deliveries)
    for queue in (w.queues.core, w.queues.notify):
        QUEUE_DEPTH.labels(queue).set(await w.redis.zcard(queue))


async def sweep(ctx: dict[str, Any]) -> int:
    """arq cron job. Enqueueing is deduplicated by job id, so re-enqueueing live work is a
    no-op; jobs are idempotent, so re-running work that Redis lost mid-run is safe."""
    w: WorkerContext = ctx["payfront"]
    owed = await owed_work(
        w.db,
        grace=timedelta(seconds=w.settings.sweep_grace_s),
        check_after=timedelta(seconds=w.settings.check_after_s),
        check_every=timedelta(seconds=w.settings.check_every_s),
    )
    queue = w.queues
    outbox = [await enqueue_owed(w.redis, queue, kind, ref) for kind, ref in owed.outbox]
    deliveries = [
        await enqueue_delivery(w.redis, queue, delivery_id, attempt_no)
        for delivery_id, attempt_no in owed.deliveries
    ]
    checks = [await enqueue_check(w.redis, queue, pay_no) for pay_no in owed.checks]
    checks += [
        await enqueue_check_refund(w.redis, queue, refund_no) for refund_no in owed.refund_checks
    ]
    checks += [
        await enqueue_check_withdrawal(w.redis, queue, number) for number in owed.withdrawal_checks
    ]
    count = sum(outbox) + sum(deliveries)
    if count:
        # Work Redis had lost (or never got): worth knowing about.
        log.warning("sweep.re_enqueued", outbox=sum(outbox), deliveries=sum(deliveries))
    await _observe_backlog(w)
    if any(checks):
        log.info("sweep.checks", orders=sum(checks))
    return count + sum(checks)
