"""The circuit breaker's Redis scripts (core.breaker) on a real Redis, with a fake clock."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from core import breaker
from core.breaker import BreakerConfig, CircuitState

ACCOUNT = "wx_1"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client: Redis = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def config(redis: Redis) -> AsyncIterator[BreakerConfig]:
    config = BreakerConfig(
        namespace=f"payfront:test:{uuid.uuid4().hex[:12]}:circuit",
        threshold=3,
        cooldown_s=10,
        probes=1,
    )
    yield config
    await redis.delete(config.summary_key, config.account_key(ACCOUNT))


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    now = [1_000_000]
    monkeypatch.setattr(breaker, "_now_ms", lambda: now[0])
    return now


async def fail(redis: Redis, config: BreakerConfig, times: int = 1) -> CircuitState:
    state = CircuitState.CLOSED
    for _ in range(times):
        state = await breaker.record(redis, config, ACCOUNT, ok=False)
    return state


async def test_no_state_is_closed(redis: Redis, config: BreakerConfig, clock: list[int]) -> None:
    admission = await breaker.admit(redis, config, ACCOUNT)
    assert (admission.allowed, admission.state) == (True, CircuitState.CLOSED)
    assert await breaker.read_states(redis, config) == {}


async def test_opens_after_consecutive_failures_only(
    redis: Redis, config: BreakerConfig, clock: list[int]
) -> None:
    assert await fail(redis, config, 2) is CircuitState.CLOSED
    # A success in between: the count starts again.
    assert await breaker.record(redis, config, ACCOUNT, ok=True) is CircuitState.CLOSED
    assert await fail(redis, config, 2) is CircuitState.CLOSED
    assert await fail(redis, config) is CircuitState.OPEN
    admission = await breaker.admit(redis, config, ACCOUNT)
    assert (admission.allowed, admission.state, admission.wait_s) == (
        False,
        CircuitState.OPEN,
        10.0,
    )
    states = await breaker.read_states(redis, config)
    assert states[ACCOUNT].state is CircuitState.OPEN
    assert states[ACCOUNT].refuses_new_work(clock[0])
    assert not states[ACCOUNT].refuses_new_work(clock[0] + 10_000)


async def test_half_open_lets_one_probe_through_and_success_closes(
    redis: Redis, config: BreakerConfig, clock: list[int]
) -> None:
    await fail(redis, config, 3)
    clock[0] += 10_000
    probe = await breaker.admit(redis, config, ACCOUNT)
    assert (probe.allowed, probe.state) == (True, CircuitState.HALF_OPEN)
    second = await breaker.admit(redis, config, ACCOUNT)
    assert (second.allowed, second.state) == (False, CircuitState.HALF_OPEN)
    assert (await breaker.read_states(redis, config))[ACCOUNT].state is CircuitState.HALF_OPEN
    assert await breaker.record(redis, config, ACCOUNT, ok=True) is CircuitState.CLOSED
    assert await breaker.read_states(redis, config) == {}
    assert (await breaker.admit(redis, config, ACCOUNT)).allowed


async def test_a_failed_probe_opens_again_for_a_full_cooldown(
    redis: Redis, config: BreakerConfig, clock: list[int]
) -> None:
    await fail(redis, config, 3)
    clock[0] += 10_000
    assert (await breaker.admit(redis, config, ACCOUNT)).allowed
    assert await fail(redis, config) is CircuitState.OPEN
    clock[0] += 9_999
    assert not (await breaker.admit(redis, config, ACCOUNT)).allowed
    clock[0] += 1
    assert (await breaker.admit(redis, config, ACCOUNT)).allowed


async def test_a_lost_probe_frees_its_slot_after_the_window(
    redis: Redis, config: BreakerConfig, clock: list[int]
) -> None:
    await fail(redis, config, 3)
    clock[0] += 10_000
    assert (await breaker.admit(redis, config, ACCOUNT)).allowed  # never reports
    assert not (await breaker.admit(redis, config, ACCOUNT)).allowed
    clock[0] += 10_000
    again = await breaker.admit(redis, config, ACCOUNT)
    assert (again.allowed, again.state) == (True, CircuitState.HALF_OPEN)


async def test_reset_and_redis_down_both_mean_closed(
    redis: Redis, config: BreakerConfig, clock: list[int]
) -> None:
    await fail(redis, config, 3)
    await breaker.reset(redis, config, ACCOUNT)
    assert (await breaker.admit(redis, config, ACCOUNT)).allowed
    gone: Redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        assert (await breaker.admit(gone, config, ACCOUNT)).allowed
        assert await breaker.record(gone, config, ACCOUNT, ok=False) is CircuitState.CLOSED
    finally:
        await gone.aclose()
