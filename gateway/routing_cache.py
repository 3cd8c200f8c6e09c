"""What the token path needs to route a payment, kept in the gateway process: each merchant's
routing rules (reloaded after a TTL, at once after a change through this gateway) and the
circuits of channel accounts (read from Redis in the background every second), so routing
adds no round trip to the request."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping

import structlog
from redis.asyncio import Redis

from channels.registry import CHANNELS
from core import breaker, routing
from core.breaker import GAUGE_VALUE, BreakerConfig, CircuitSnapshot, CircuitState
from core.metrics import CIRCUIT_STATE
from core.store.db import Database

log = structlog.get_logger(__name__)


class RoutingCache:
    """merchant → its rules by priority, for ``ttl_s`` seconds (like ``AccountCache``).

    A change through ``PUT /v1/routing_rules`` reaches this process at once and the other
    gateways within ``ttl_s``.
    """

    def __init__(self, ttl_s: float, *, max_entries: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: dict[str, tuple[float, tuple[routing.Rule, ...]]] = {}

    async def rules(self, db: Database, merchant_id: str) -> tuple[routing.Rule, ...]:
        now = time.monotonic()
        hit = self._entries.get(merchant_id)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        rules = await routing.load_rules(db, merchant_id, capabilities=CHANNELS)
        self.put(merchant_id, rules, now=now)
        return rules

    def put(
        self, merchant_id: str, rules: tuple[routing.Rule, ...], *, now: float | None = None
    ) -> None:
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[merchant_id] = (now if now is not None else time.monotonic(), rules)


class CircuitView:
    """The circuits that are not closed, as of the last background read (``refresh_s``).

    Without Redis the last view is kept; a circuit never seen is closed. The view lags the
    truth by up to ``refresh_s``: a payment routed in that window to an account that just
    opened fails fast in its worker (``CHANNEL_UNAVAILABLE``) without calling the channel.
    """

    def __init__(self, redis: Redis, config: BreakerConfig, refresh_s: float) -> None:
        self._redis = redis
        self._config = config
        self._refresh_s = refresh_s
        self._states: Mapping[str, CircuitSnapshot] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._run(), name="circuit-view")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def is_open(self, account_id: str) -> bool:
        """True while the account's cool-down runs: route around it, or refuse fast."""
        snapshot = self._states.get(account_id)
        return snapshot is not None and snapshot.refuses_new_work(int(time.time() * 1000))

    def wait_s(self, account_id: str) -> float:
        snapshot = self._states.get(account_id)
        if snapshot is None:
            return 0.0
        return max(0.0, snapshot.until_ms / 1000 - time.time())

    async def refresh(self) -> None:
        try:
            states = await breaker.read_states(self._redis, self._config)
        except Exception as exc:  # keep the last view through a Redis outage
            log.warning("circuits.refresh_failed", error=type(exc).__name__)
            return
        for account in set(self._states) - set(states):
            CIRCUIT_STATE.labels(account).set(GAUGE_VALUE[CircuitState.CLOSED])
        for account, snapshot in states.items():
            CIRCUIT_STATE.labels(account).set(GAUGE_VALUE[snapshot.state])
        self._states = states

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            await self.refresh()
