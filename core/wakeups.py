"""Wake-ups through Redis pub/sub: a pay order changed, so long-polls waiting on it answer.

One subscription per gateway process fans out to local waiters; nothing polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterator

from redis.asyncio import Redis

CHANNEL = "payfront:wakeups"
log = logging.getLogger(__name__)


async def publish(redis: Redis, pay_no: str) -> None:
    await redis.publish(CHANNEL, pay_no)


class WakeupHub:
    """Holds the process's one subscription and the events of local waiters."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self.connected = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="wakeup-hub")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), 5)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> None:
        while True:
            try:
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                async with pubsub:
                    await pubsub.subscribe(CHANNEL)
                    self.connected = True
                    self._ready.set()
                    self._wake_all()  # we may have missed messages while reconnecting
                    async for message in pubsub.listen():
                        data = message.get("data")
                        if isinstance(data, bytes):
                            self._wake(data.decode())
            except asyncio.CancelledError:
                raise
            except Exception:  # keep listening through Redis outages
                self.connected = False
                self._wake_all()  # waiters fall back to re-reading the database
                log.warning("wake-up subscription lost; reconnecting")
                await asyncio.sleep(1)

    def _wake(self, pay_no: str) -> None:
        for event in self._waiters.get(pay_no, ()):
            event.set()

    def _wake_all(self) -> None:
        for waiters in self._waiters.values():
            for event in waiters:
                event.set()

    @contextlib.contextmanager
    def waiter(self, pay_no: str) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._waiters[pay_no].add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(pay_no)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[pay_no]
