"""workers.arq_worker: the one-round-trip job claim keeps arq's rules (not claimed twice, not
before it is due, not while another worker holds it) on a real Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import in_progress_key_prefix

from workers.arq_worker import PayfrontWorker

RAN: list[str] = []


async def remember(ctx: dict[str, Any], name: str) -> str:
    RAN.append(name)
    await asyncio.sleep(0.2)
    return name


@pytest.fixture
async def pool(redis_url: str) -> AsyncIterator[ArqRedis]:
    redis = await create_pool(RedisSettings.from_dsn(redis_url))
    yield redis
    await redis.aclose()


def _worker(pool: ArqRedis, queue: str, max_jobs: int = 10) -> PayfrontWorker:
    return PayfrontWorker(
        functions=[remember],
        redis_pool=pool,
        queue_name=queue,
        max_jobs=max_jobs,
        keep_result=0,
        handle_signals=False,
        poll_delay=0.01,
    )


async def _queued(pool: ArqRedis, queue: str) -> list[bytes]:
    ids: list[bytes] = await pool.zrangebyscore(queue, min=float("-inf"), max=float("inf"))
    return ids


async def test_claims_due_jobs_once_and_skips_held_and_deferred_ones(pool: ArqRedis) -> None:
    queue = f"payfront:test:{uuid.uuid4().hex[:12]}"
    RAN.clear()
    for name in ("a", "b", "held"):
        await pool.enqueue_job("remember", name, _job_id=f"{queue}:{name}", _queue_name=queue)
    await pool.enqueue_job(
        "remember", "later", _job_id=f"{queue}:later", _queue_name=queue, _defer_by=60
    )
    # Another worker holds "held".
    await pool.psetex(in_progress_key_prefix + f"{queue}:held", 60_000, b"1")
    worker = _worker(pool, queue)
    try:
        job_ids = await _queued(pool, queue)
        await worker.start_jobs(job_ids)
        assert sorted(worker.tasks) == [f"{queue}:a", f"{queue}:b"]
        for name in ("a", "b"):
            assert await pool.exists(in_progress_key_prefix + f"{queue}:{name}")
        # Polled again while they run: nothing is claimed twice.
        await worker.start_jobs(job_ids)
        assert worker.job_counter == 2
        await asyncio.gather(*worker.tasks.values())
        assert sorted(RAN) == ["a", "b"]
    finally:
        await pool.delete(in_progress_key_prefix + f"{queue}:held", queue)
        await worker.close()


async def test_claims_no_more_than_the_free_job_slots(pool: ArqRedis) -> None:
    queue = f"payfront:test:{uuid.uuid4().hex[:12]}"
    for number in range(5):
        await pool.enqueue_job("remember", str(number), _queue_name=queue)
    worker = _worker(pool, queue, max_jobs=3)
    try:
        await worker.start_jobs(await _queued(pool, queue))
        assert len(worker.tasks) == 3
        assert worker.job_counter == 3
        await asyncio.gather(*worker.tasks.values())
    finally:
        await pool.delete(queue)
        await worker.close()
