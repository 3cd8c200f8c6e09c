"""Circuit breakers per channel account, shared by every process through Redis.

A circuit opens after ``threshold`` consecutive failed channel calls (nothing answered: a
connect error, a timeout, a 5xx; a business refusal is an answer, so it counts as success),
refuses calls for ``cooldown_s``, then lets ``probes`` calls through (half-open): a success
closes it, a failure opens it again. Each check and each outcome is one Lua script, so
workers on many hosts agree without a lock. The state is only a hint: a missing key is a
closed circuit, so losing Redis loses no order, it only forgets which channel was failing.

Besides the per-account hash, every circuit that is not closed has an entry in one summary
hash, which gateways read every second into memory (``read_states``): the token path never
asks Redis about circuits.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.metrics import CIRCUIT_STATE, CIRCUIT_TRANSITIONS
from core.settings import Settings

log = structlog.get_logger(__name__)

# A closed circuit's failure count is forgotten after this long without news: failures an
# hour apart are not "consecutive" in any useful sense.
_FAILURES_TTL_MS = 3_600_000


class CircuitState(enum.StrEnum):
    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"


GAUGE_VALUE = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}

# KEYS: account hash, summary hash. ARGV: now_ms, cooldown_ms, probes, account.
# Returns {allowed, state, previous state if it changed else "", wait_ms}.
_ADMIT = """
local state = redis.call('hget', KEYS[1], 'state')
if not state or state == 'closed' then return {1, 'closed', '', 0} end
local now = tonumber(ARGV[1])
local cooldown = tonumber(ARGV[2])
local until_ms = tonumber(redis.call('hget', KEYS[1], 'until') or '0')
if state == 'open' then
  if now < until_ms then return {0, 'open', '', until_ms - now} end
  redis.call('hset', KEYS[1], 'state', 'half_open', 'probes', 1, 'until', now + cooldown)
  redis.call('hset', KEYS[2], ARGV[4], 'half_open:' .. (now + cooldown))
  return {1, 'half_open', 'open', 0}
end
local probes = tonumber(redis.call('hget', KEYS[1], 'probes') or '0')
if now >= until_ms then
  -- The probes of the last window never reported (a worker died): start a new window.
  probes = 0
  until_ms = now + cooldown
  redis.call('hset', KEYS[1], 'until', until_ms)
  redis.call('hset', KEYS[2], ARGV[4], 'half_open:' .. until_ms)
end
if probes < tonumber(ARGV[3]) then
  redis.call('hset', KEYS[1], 'probes', probes + 1)
  return {1, 'half_open', '', 0}
end
return {0, 'half_open', '', until_ms - now}
"""

# KEYS: account hash, summary hash. ARGV: now_ms, ok (1/0), threshold, cooldown_ms, account,
# failures ttl_ms. Returns {state, previous state if it changed else ""}.
_RECORD = """
local state = redis.call('hget', KEYS[1], 'state') or 'closed'
if ARGV[2] == '1' then
  if state == 'half_open' then
    redis.call('del', KEYS[1])
    redis.call('hdel', KEYS[2], ARGV[5])
    return {'closed', 'half_open'}
  end
  if state == 'closed' and redis.call('exists', KEYS[1]) == 1 then redis.call('del', KEYS[1]) end
  -- A success of a call let through before the circuit opened changes nothing.
  return {state, ''}
end
local now = tonumber(ARGV[1])
local until_ms = now + tonumber(ARGV[4])
if state == 'half_open' then
  redis.call('hset', KEYS[1], 'state', 'open', 'until', until_ms, 'probes', 0)
  redis.call('hset', KEYS[2], ARGV[5], 'open:' .. until_ms)
  return {'open', 'half_open'}
end
if state == 'open' then return {'open', ''} end
local failures = redis.call('hincrby', KEYS[1], 'failures', 1)
if failures >= tonumber(ARGV[3]) then
  redis.call('hset', KEYS[1], 'state', 'open', 'until', until_ms, 'probes', 0)
  redis.call('persist', KEYS[1])
  redis.call('hset', KEYS[2], ARGV[5], 'open:' .. until_ms)
  return {'open', 'closed'}
end
redis.call('pexpire', KEYS[1], ARGV[6])
return {'closed', ''}
"""


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    namespace: str
    threshold: int
    cooldown_s: float
    probes: int

    @classmethod
    def of(cls, settings: Settings) -> BreakerConfig:
        # Under the queue's name, like arq's keys: one deployment's circuits, not another's.
        return cls(
            namespace=f"{settings.queue_name}:circuit",
            threshold=settings.breaker_failure_threshold,
            cooldown_s=settings.breaker_cooldown_s,
            probes=settings.breaker_half_open_probes,
        )

    @property
    def summary_key(self) -> str:
        return f"{self.namespace}s"

    def account_key(self, account_id: str) -> str:
        return f"{self.namespace}:{account_id}"


@dataclass(frozen=True, slots=True)
class Admission:
    allowed: bool
    state: CircuitState
    # How long until a call may be let through again (0 when allowed).
    wait_s: float


def _now_ms() -> int:
    return int(time.time() * 1000)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _observe(account_id: str, state: CircuitState, previous: str) -> None:
    CIRCUIT_STATE.labels(account_id).set(GAUGE_VALUE[state])
    if previous:
        CIRCUIT_TRANSITIONS.labels(account_id, previous, state.value).inc()
        log.warning("circuit.changed", channel_account=account_id, previous=previous, state=state)


async def admit(redis: Redis, config: BreakerConfig, account_id: str) -> Admission:
    """May a channel call of this account go now? Without Redis: yes (closed)."""
    keys_and_args: list[Any] = [
        config.account_key(account_id),
        config.summary_key,
        _now_ms(),
        int(config.cooldown_s * 1000),
        config.probes,
        account_id,
    ]
    try:
        answer = await cast("Awaitable[list[Any]]", redis.eval(_ADMIT, 2, *keys_and_args))
    except RedisError:
        log.warning("circuit.unavailable", channel_account=account_id)
        return Admission(True, CircuitState.CLOSED, 0.0)
    allowed, state, previous, wait_ms = answer
    circuit = CircuitState(_text(state))
    _observe(account_id, circuit, _text(previous))
    return Admission(bool(allowed), circuit, int(wait_ms) / 1000)


async def record(redis: Redis, config: BreakerConfig, account_id: str, *, ok: bool) -> CircuitState:
    """Count one call's outcome: ``ok`` when the channel answered (even with a refusal)."""
    keys_and_args: list[Any] = [
        config.account_key(account_id),
        config.summary_key,
        _now_ms(),
        1 if ok else 0,
        config.threshold,
        int(config.cooldown_s * 1000),
        account_id,
        _FAILURES_TTL_MS,
    ]
    try:
        answer = await cast("Awaitable[list[Any]]", redis.eval(_RECORD, 2, *keys_and_args))
    except RedisError:
        log.warning("circuit.unavailable", channel_account=account_id)
        return CircuitState.CLOSED
    state, previous = (_text(part) for part in answer)
    circuit = CircuitState(state)
    _observe(account_id, circuit, previous)
    return circuit


@dataclass(frozen=True, slots=True)
class CircuitSnapshot:
    state: CircuitState
    # Open: when the cool-down ends; half-open: when the probe window ends (epoch ms).
    until_ms: int

    def refuses_new_work(self, now_ms: int) -> bool:
        """True while an open circuit's cool-down runs. Once it is over (or half-open), new
        payments may go to the account: their calls are the probes."""
        return self.state is CircuitState.OPEN and now_ms < self.until_ms


async def read_states(redis: Redis, config: BreakerConfig) -> Mapping[str, CircuitSnapshot]:
    """Every circuit that is not closed (one HGETALL)."""
    raw = await cast("Awaitable[dict[Any, Any]]", redis.hgetall(config.summary_key))
    states: dict[str, CircuitSnapshot] = {}
    for account, value in raw.items():
        state, _, until = _text(value).partition(":")
        try:
            states[_text(account)] = CircuitSnapshot(CircuitState(state), int(until))
        except ValueError:
            continue
    return states


async def reset(redis: Redis, config: BreakerConfig, account_id: str) -> None:
    """Close one circuit by hand (operations, tests)."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(config.account_key(account_id))
        pipe.hdel(config.summary_key, account_id)
        await pipe.execute()
