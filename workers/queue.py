"""Job names, which queue each goes to, and enqueueing with stable job ids (so enqueueing
work that is already queued or running is a no-op).

Two queues, each with its own worker pool: the core link (prepay, order checks, the sweeper)
and the rest (merchant notifications), so a flood of webhooks never delays a payment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from arq.connections import ArqRedis

from core.settings import Settings

PREPAY = "prepay"
CHECK = "check_order"
NOTIFY = "notify"
DELIVER = "deliver"


@dataclass(frozen=True, slots=True)
class Queues:
    core: str
    notify: str

    @classmethod
    def of(cls, settings: Settings) -> Queues:
        return cls(core=settings.queue_name, notify=settings.notify_queue_name)


# Each returns whether a job was enqueued (False: one with the same id is already queued or
# running). arq's job ids are global to a Redis database, not per queue, and delivery ids
# restart with each database, so every id carries the queue name.


async def _enqueue(
    pool: ArqRedis, queue: str, function: str, *args: object, key: str, at: datetime | None = None
) -> bool:
    job = await pool.enqueue_job(
        function, *args, _job_id=f"{queue}:{key}", _queue_name=queue, _defer_until=at
    )
    return job is not None


async def enqueue_prepay(pool: ArqRedis, queues: Queues, pay_no: str) -> bool:
    return await _enqueue(pool, queues.core, PREPAY, pay_no, key=f"prepay:{pay_no}")


async def enqueue_check(pool: ArqRedis, queues: Queues, pay_no: str) -> bool:
    return await _enqueue(pool, queues.core, CHECK, pay_no, key=f"check:{pay_no}")


async def enqueue_notify(pool: ArqRedis, queues: Queues, event_id: str) -> bool:
    return await _enqueue(pool, queues.notify, NOTIFY, event_id, key=f"notify:{event_id}")


async def enqueue_delivery(
    pool: ArqRedis, queues: Queues, delivery_id: int, attempt_no: int, *, at: datetime | None = None
) -> bool:
    key = f"deliver:{delivery_id}:{attempt_no}"
    return await _enqueue(pool, queues.notify, DELIVER, delivery_id, attempt_no, key=key, at=at)


async def enqueue_owed(pool: ArqRedis, queues: Queues, kind: str, ref: str) -> bool:
    """Re-enqueue one outbox row's job (the sweeper's path)."""
    if kind == PREPAY:
        return await enqueue_prepay(pool, queues, ref)
    if kind == NOTIFY:
        return await enqueue_notify(pool, queues, ref)
    raise ValueError(f"unknown outbox kind {kind!r}")
