"""Job names and enqueueing with stable job ids (so a re-enqueue of queued work is a no-op)."""

from __future__ import annotations

from datetime import datetime

from arq.connections import ArqRedis

PREPAY = "prepay"
CHECK = "check_order"
NOTIFY = "notify"
DELIVER = "deliver"


# Each returns whether a job was enqueued (False: one with the same id is already queued or
# running). arq's job ids are global to a Redis database, not per queue, and delivery ids
# restart with each database, so every id carries the queue name.


async def enqueue_prepay(pool: ArqRedis, queue: str, pay_no: str) -> bool:
    job = await pool.enqueue_job(
        PREPAY, pay_no, _job_id=f"{queue}:prepay:{pay_no}", _queue_name=queue
    )
    return job is not None


async def enqueue_notify(pool: ArqRedis, queue: str, event_id: str) -> bool:
    job = await pool.enqueue_job(
        NOTIFY, event_id, _job_id=f"{queue}:notify:{event_id}", _queue_name=queue
    )
    return job is not None


async def enqueue_delivery(
    pool: ArqRedis, queue: str, delivery_id: int, attempt_no: int, *, at: datetime | None = None
) -> bool:
    job = await pool.enqueue_job(
        DELIVER,
        delivery_id,
        attempt_no,
        _job_id=f"{queue}:deliver:{delivery_id}:{attempt_no}",
        _queue_name=queue,
        _defer_until=at,
    )
    return job is not None


async def enqueue_check(pool: ArqRedis, queue: str, pay_no: str) -> bool:
    job = await pool.enqueue_job(
        CHECK, pay_no, _job_id=f"{queue}:check:{pay_no}", _queue_name=queue
    )
    return job is not None


async def enqueue_owed(pool: ArqRedis, queue: str, kind: str, ref: str) -> bool:
    """Re-enqueue one outbox row's job (the sweeper's path)."""
    if kind == PREPAY:
        return await enqueue_prepay(pool, queue, ref)
    if kind == NOTIFY:
        return await enqueue_notify(pool, queue, ref)
    raise ValueError(f"unknown outbox kind {kind!r}")
