"""payfront's one-round-trip enqueue writes jobs exactly as arq's enqueue_job does."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.jobs import Job, JobStatus

from workers.queue import Queues, enqueue_delivery, enqueue_prepay


@pytest.fixture
async def pool(redis_url: str) -> AsyncIterator[ArqRedis]:
    redis = await create_pool(
        RedisSettings.from_dsn(redis_url),
        job_serializer=orjson.dumps,
        job_deserializer=orjson.loads,
    )
    yield redis
    await redis.aclose()


@pytest.fixture
def queues() -> Queues:
    prefix = f"payfront:test:{uuid.uuid4().hex[:12]}"
    return Queues(core=f"{prefix}:core", notify=f"{prefix}:notify")


async def test_a_job_reads_back_as_arq_wrote_it(pool: ArqRedis, queues: Queues) -> None:
    assert await enqueue_prepay(pool, queues, "pay123")
    job_id = f"{queues.core}:prepay:pay123"
    job = Job(job_id, pool, _queue_name=queues.core, _deserializer=orjson.loads)
    info = await job.info()
    assert info is not None
    # (JSON gives the args back as a list, as it does for jobs arq itself enqueued.)
    assert (info.function, list(info.args), info.kwargs) == ("prepay", ["pay123"], {})
    assert await job.status() is JobStatus.queued
    # Same expiry rule as arq: a day past the due time.
    ttl_ms = await pool.pttl(f"arq:job:{job_id}")
    assert 86_400_000 - 5_000 < ttl_ms <= 86_400_000
    await pool.delete(f"arq:job:{job_id}", queues.core)


async def test_queued_work_is_not_enqueued_twice(pool: ArqRedis, queues: Queues) -> None:
    assert await enqueue_prepay(pool, queues, "pay456")
    assert not await enqueue_prepay(pool, queues, "pay456")
    assert await pool.zcard(queues.core) == 1
    await pool.delete(f"arq:job:{queues.core}:prepay:pay456", queues.core)
    # Once the job is gone (done, or lost with Redis), it can be enqueued again.
    assert await enqueue_prepay(pool, queues, "pay456")
    await pool.delete(f"arq:job:{queues.core}:prepay:pay456", queues.core)


async def test_a_deferred_job_is_scored_at_its_due_time(pool: ArqRedis, queues: Queues) -> None:
    due = datetime.now(UTC) + timedelta(minutes=5)
    assert await enqueue_delivery(pool, queues, 7, 2, at=due)
    job_id = f"{queues.notify}:deliver:7:2"
    score = await pool.zscore(queues.notify, job_id)
    assert score is not None and abs(score / 1000 - due.timestamp()) < 0.01
    assert await pool.zcard(queues.core) == 0
    ttl_ms = await pool.pttl(f"arq:job:{job_id}")
    assert ttl_ms > 86_400_000 + 4 * 60_000  # expiry counts from the due time
    await pool.delete(f"arq:job:{job_id}", queues.notify)


async def test_an_orphaned_job_record_does_not_block_its_work(
    pool: ArqRedis, queues: Queues
) -> None:
    """Redis lost the queue entry but kept the job record (a partial loss): arq would refuse
    the id for a day; payfront enqueues it again. A running job is still not duplicated."""
    job_id = f"{queues.core}:prepay:pay789"
    assert await enqueue_prepay(pool, queues, "pay789")
    await pool.zrem(queues.core, job_id)  # the queue entry is gone, the record is not
    assert await pool.exists(f"arq:job:{job_id}")
    assert await enqueue_prepay(pool, queues, "pay789")
    assert await pool.zscore(queues.core, job_id) is not None
    # While a worker holds it (in progress), it is live: not enqueued twice.
    await pool.zrem(queues.core, job_id)
    await pool.psetex(f"arq:in-progress:{job_id}", 60_000, b"1")
    assert not await enqueue_prepay(pool, queues, "pay789")
    await pool.delete(f"arq:job:{job_id}", f"arq:in-progress:{job_id}", queues.core)
