"""workers.limits: the circuit, the per-account concurrency slots and timeouts around a call."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import cast

import httpx
import pytest
from redis.asyncio import Redis

from channels.errors import ChannelFatal, ChannelRetryable, ChannelUnknownOutcome
from core import breaker
from core.breaker import BreakerConfig, CircuitState
from core.settings import Settings
from workers.context import WorkerContext
from workers.limits import ChannelBusy, CircuitOpen, guarded


class FakeDirectory:
    def __init__(self) -> None:
        self.credentials: dict[str, dict[str, str]] = {}

    async def get(self, account_id: str) -> tuple[None, dict[str, str]]:
        return None, self.credentials.get(account_id, {})


class FakeWorker:
    def __init__(self, settings: Settings, redis: Redis, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.redis = redis
        self.http = http
        self.channels = FakeDirectory()


@pytest.fixture
async def worker(redis_url: str) -> AsyncIterator[FakeWorker]:
    settings = Settings(
        queue_name=f"payfront:test:{uuid.uuid4().hex[:12]}:core",
        breaker_failure_threshold=2,
        breaker_cooldown_s=60,
        channel_max_in_flight=2,
        channel_slot_wait_s=0.05,
    )
    redis: Redis = Redis.from_url(redis_url)
    http = httpx.AsyncClient()
    yield FakeWorker(settings, redis, http)
    config = BreakerConfig.of(settings)
    for account in ("acc", "slow"):
        await breaker.reset(redis, config, account)
    await http.aclose()
    await redis.aclose()


def ctx(worker: FakeWorker) -> WorkerContext:
    return cast(WorkerContext, worker)


async def call(worker: FakeWorker, account: str, raise_: Exception | None = None) -> None:
    async with guarded(ctx(worker), account):
        if raise_ is not None:
            raise raise_


async def test_failures_open_the_circuit_and_then_nothing_is_sent(worker: FakeWorker) -> None:
    with pytest.raises(ChannelRetryable):
        await call(worker, "acc", ChannelRetryable("CONNECT_FAILED", "x"))
    with pytest.raises(ChannelUnknownOutcome):
        await call(worker, "acc", ChannelUnknownOutcome("NO_ANSWER", "x"))
    sent = []
    with pytest.raises(CircuitOpen) as refused:
        async with guarded(ctx(worker), "acc"):
            sent.append(1)
    assert sent == []
    assert refused.value.code == "CHANNEL_UNAVAILABLE"
    assert not refused.value.probing and refused.value.wait_s > 50
    assert isinstance(refused.value, ChannelRetryable)  # every job retries it safely


async def test_a_refusal_is_an_answer_and_resets_the_count(worker: FakeWorker) -> None:
    for _ in range(3):
        with pytest.raises(ChannelRetryable):
            await call(worker, "acc", ChannelRetryable("CONNECT_FAILED", "x"))
        with pytest.raises(ChannelFatal):
            await call(worker, "acc", ChannelFatal("PARAM_ERROR", "x"))
    config = BreakerConfig.of(worker.settings)
    assert (await breaker.admit(worker.redis, config, "acc")).state is CircuitState.CLOSED


async def test_at_most_k_calls_in_flight_then_a_bounded_wait(worker: FakeWorker) -> None:
    release = asyncio.Event()
    entered = 0

    async def held() -> None:
        nonlocal entered
        async with guarded(ctx(worker), "acc"):
            entered += 1
            await release.wait()

    holders = [asyncio.create_task(held()) for _ in range(2)]
    await asyncio.sleep(0.01)
    assert entered == 2
    with pytest.raises(ChannelBusy) as busy:
        await call(worker, "acc")
    assert busy.value.code == "CHANNEL_BUSY"
    release.set()
    await asyncio.gather(*holders)
    await call(worker, "acc")  # a slot is free again
    # Busy is our own congestion, not the channel's failure: the circuit is still closed.
    config = BreakerConfig.of(worker.settings)
    assert (await breaker.admit(worker.redis, config, "acc")).state is CircuitState.CLOSED


async def test_the_accounts_own_limit_and_timeout(worker: FakeWorker) -> None:
    worker.channels.credentials["slow"] = {"timeout_s": "0.2", "max_in_flight": "1"}
    with pytest.raises(ChannelUnknownOutcome) as timed_out:
        async with guarded(ctx(worker), "slow"):
            await asyncio.sleep(1)
    assert timed_out.value.code == "TIMEOUT"
    release = asyncio.Event()

    async def held() -> None:
        async with guarded(ctx(worker), "slow"):
            await release.wait()

    holder = asyncio.create_task(held())
    await asyncio.sleep(0.01)
    with pytest.raises(ChannelBusy):  # one slot only, and it is taken
        await call(worker, "slow")
    release.set()
    await holder
    # A TimeoutError of the call itself is not taken for the account's timeout.
    with pytest.raises(TimeoutError):
        await call(worker, "slow", TimeoutError())
    # Two timeouts in a row count as failures: the circuit opens.
    for _ in range(2):
        with pytest.raises(ChannelUnknownOutcome):
            async with guarded(ctx(worker), "slow"):
                await asyncio.sleep(1)
    with pytest.raises(CircuitOpen):
        await call(worker, "slow")
