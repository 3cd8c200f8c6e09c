"""Job names, which queue each goes to, and enqueueing with stable job ids (so enqueueing
work that is already queued or running is a no-op).

Two queues, each with its own worker pool: the core link (prepay, order checks, the sweeper)
and the rest (merchant notifications), so a flood of webhooks never delays a payment.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms, to_unix_ms

from core import wakeups
from core.settings import Settings

PREPAY = "prepay"
CHECK = "check_order"
NOTIFY = "notify"
DELIVER = "deliver"
REFUND = "refund"
CHECK_REFUND = "check_refund"
POST_ENTRY = "post_entry"
WITHDRAW = "withdraw"
CHECK_WITHDRAWAL = "check_withdrawal"


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


# arq's enqueue_job takes three round trips (WATCH, EXISTS, MULTI/EXEC); this script does
# the check-and-write atomically in one, writing the job exactly as arq does. One difference,
# on purpose: arq refuses any id whose job record exists, but a record that is neither queued
# nor in progress is an orphan (Redis lost part of its keys): the job would never run, and
# the record lives for a day. Such a job is enqueued again; a live one is not.
_ENQUEUE = """
if redis.call('exists', KEYS[2]) == 1 then return 0 end
if redis.call('exists', KEYS[1]) == 1 then
  if redis.call('zscore', KEYS[3], ARGV[4]) or redis.call('exists', KEYS[4]) == 1 then
    return 0
  end
end
redis.call('psetex', KEYS[1], ARGV[1], ARGV[2])
redis.call('zadd', KEYS[3], ARGV[3], ARGV[4])
return 1
"""


async def _enqueue(
    pool: ArqRedis, queue: str, function: str, *args: object, key: str, at: datetime | None = None
) -> bool:
    keys_and_args = _enqueue_keys_and_args(pool, queue, function, *args, key=key, at=at)
    written = await cast("Awaitable[int]", pool.eval(_ENQUEUE, 4, *keys_and_args))
    return bool(written)


def _enqueue_keys_and_args(
    pool: ArqRedis, queue: str, function: str, *args: object, key: str, at: datetime | None = None
) -> list[Any]:
    job_id = f"{queue}:{key}"
    enqueued_ms = timestamp_ms()
    score = to_unix_ms(at) if at is not None else enqueued_ms
    payload = serialize_job(function, args, {}, None, enqueued_ms, serializer=pool.job_serializer)
    keys_and_args: list[Any] = [
        job_key_prefix + job_id,
        result_key_prefix + job_id,
        queue,
        in_progress_key_prefix + job_id,
        score - enqueued_ms + pool.expires_extra_ms,
        payload,
        score,
        job_id,
    ]
    return keys_and_args


async def enqueue_prepay(pool: ArqRedis, queues: Queues, pay_no: str) -> bool:
    return await _enqueue(pool, queues.core, PREPAY, pay_no, key=f"prepay:{pay_no}")


async def enqueue_check(pool: ArqRedis, queues: Queues, pay_no: str) -> bool:
    return await _enqueue(pool, queues.core, CHECK, pay_no, key=f"check:{pay_no}")


async def enqueue_notify(pool: ArqRedis, queues: Queues, event_id: str) -> bool:
    return await _enqueue(pool, queues.notify, NOTIFY, event_id, key=f"notify:{event_id}")


async def enqueue_notify_and_wake(
    pool: ArqRedis, queues: Queues, event_id: str, pay_no: str
) -> bool:
    """``core.wakeups.publish(pay_no)`` then ``enqueue_notify(event_id)``, in one round trip
    (a pipeline, not a transaction): what follows a payment applied from a callback."""
    keys_and_args = _enqueue_keys_and_args(
        pool, queues.notify, NOTIFY, event_id, key=f"notify:{event_id}"
    )
    async with pool.pipeline(transaction=False) as pipe:
        pipe.publish(wakeups.CHANNEL, pay_no)
        pipe.eval(_ENQUEUE, 4, *keys_and_args)
        _, written = await pipe.execute()
    return bool(written)


async def enqueue_delivery(
    pool: ArqRedis, queues: Queues, delivery_id: int, attempt_no: int, *, at: datetime | None = None
) -> bool:
    key = f"deliver:{delivery_id}:{attempt_no}"
    return await _enqueue(pool, queues.notify, DELIVER, delivery_id, attempt_no, key=key, at=at)


async def enqueue_refund(pool: ArqRedis, queues: Queues, refund_no: str) -> bool:
    return await _enqueue(pool, queues.core, REFUND, refund_no, key=f"refund:{refund_no}")


async def enqueue_check_refund(pool: ArqRedis, queues: Queues, refund_no: str) -> bool:
    key = f"check_refund:{refund_no}"
    return await _enqueue(pool, queues.core, CHECK_REFUND, refund_no, key=key)


async def enqueue_withdraw(pool: ArqRedis, queues: Queues, withdrawal_no: str) -> bool:
    key = f"withdraw:{withdrawal_no}"
    return await _enqueue(pool, queues.core, WITHDRAW, withdrawal_no, key=key)


async def enqueue_check_withdrawal(pool: ArqRedis, queues: Queues, withdrawal_no: str) -> bool:
    key = f"check_withdrawal:{withdrawal_no}"
    return await _enqueue(pool, queues.core, CHECK_WITHDRAWAL, withdrawal_no, key=key)


async def enqueue_post_entry(pool: ArqRedis, queues: Queues, event_id: str) -> bool:
    """Accounting is not on the core link: it goes to the notify pool's queue."""
    key = f"post_entry:{event_id}"
    return await _enqueue(pool, queues.notify, POST_ENTRY, event_id, key=key)


async def enqueue_owed(pool: ArqRedis, queues: Queues, kind: str, ref: str) -> bool:
    """Re-enqueue one outbox row's job (the sweeper's path)."""
    if kind == PREPAY:
        return await enqueue_prepay(pool, queues, ref)
    if kind == NOTIFY:
        return await enqueue_notify(pool, queues, ref)
    if kind == REFUND:
        return await enqueue_refund(pool, queues, ref)
    if kind == POST_ENTRY:
        return await enqueue_post_entry(pool, queues, ref)
    if kind == WITHDRAW:
        return await enqueue_withdraw(pool, queues, ref)
    raise ValueError(f"unknown outbox kind {kind!r}")
