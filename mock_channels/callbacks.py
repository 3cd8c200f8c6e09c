"""Callback delivery for the channel emulators: POST a notification to the merchant's URL,
retry on the channel's schedule until an answer acknowledges it, and record every attempt.

Channel-neutral: the emulator supplies the body, a function that signs each send afresh, the
schedule, and what counts as an acknowledgement (any 2xx for WeChat Pay and Stripe).
Deliveries run as background tasks on one shared ``aiohttp.ClientSession``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass

import aiohttp
from aiohttp import web

logger = logging.getLogger(__name__)

# The one outbound HTTP session of a sandbox app, shared by every emulator's callbacks.
HTTP_SESSION = web.AppKey("http_session", aiohttp.ClientSession)


async def http_session_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: open the shared session on startup, close it on cleanup."""
    async with aiohttp.ClientSession() as session:
        app[HTTP_SESSION] = session
        yield


# WeChat Pay's documented notification retry schedule: 15s/15s/30s/3m/10m/20m/30m/30m/30m/
# 60m/3h/3h/3h/6h/6h after the first try (24 h 4 m in all).
WECHATPAY_RETRY_DELAYS_S: tuple[float, ...] = (
    15,
    15,
    30,
    3 * 60,
    10 * 60,
    20 * 60,
    30 * 60,
    30 * 60,
    30 * 60,
    60 * 60,
    3 * 3600,
    3 * 3600,
    3 * 3600,
    6 * 3600,
    6 * 3600,
)


@dataclass(frozen=True, slots=True)
class CallbackAttempt:
    attempt: int
    at: dt.datetime
    status: int | None
    error: str | None  # None exactly when the answer acknowledged the callback
    duplicate: bool = False
    # The start of the merchant's answer, when the channel judges it (Alipay); else None.
    answer: str | None = None

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and self.error is None


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """When a channel counts a merchant's answer as acknowledging a callback."""

    # ``(status, answer)`` to None if acknowledged, else the attempt's error text.
    judge: Callable[[int, str | None], str | None]
    # Bytes of the answer read, kept and judged; None: read in full, then dropped.
    answer_bytes: int | None = None


def _any_2xx(status: int, answer: str | None) -> str | None:
    return None if 200 <= status < 300 else f"HTTP {status}"


# WeChat Pay and Stripe: any 2xx acknowledges, whatever the body says.
ANY_2XX = Acknowledgement(_any_2xx)


@dataclass(frozen=True, slots=True)
class CallbackJob:
    url: str
    # The body of one send (fixed, or built afresh per send, e.g. with that send's time).
    body_for: Callable[[], bytes]
    # Headers for one send of a body (a fresh timestamp, nonce and signature each time).
    headers_for: Callable[[bytes], Mapping[str, str]]
    record: Callable[[CallbackAttempt], None]
    retry_delays_s: Sequence[float]
    acknowledgement: Acknowledgement = ANY_2XX
    duplicate: bool = False


class CallbackSender:
    def __init__(self, *, timeout_s: float, time_scale: float, label: str = "callback") -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._time_scale = time_scale
        self._label = label
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def attach_session(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    def start(self, job: CallbackJob) -> asyncio.Task[None]:
        task = asyncio.create_task(self._deliver(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        """Cancel every pending delivery and wait until they have stopped."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _deliver(self, job: CallbackJob) -> None:
        delays = [0.0, *job.retry_delays_s]
        for number, delay in enumerate(delays, start=1):
            if delay:
                await asyncio.sleep(delay * self._time_scale)
            attempt = await self._send(job, number, duplicate=False)
            job.record(attempt)
            if attempt.acknowledged:
                if job.duplicate:
                    job.record(await self._send(job, number, duplicate=True))
                return
        logger.info("%s to %s given up after %d attempts", self._label, job.url, len(delays))

    async def _send(self, job: CallbackJob, number: int, *, duplicate: bool) -> CallbackAttempt:
        if self._session is None:
            raise RuntimeError(f"the {self._label} sender has no HTTP session (app not started)")
        at = dt.datetime.now(dt.UTC)
        ack = job.acknowledgement
        body = job.body_for()
        answer: str | None = None
        try:
            async with self._session.post(
                job.url, data=body, headers=dict(job.headers_for(body)), timeout=self._timeout
            ) as response:
                if ack.answer_bytes is None:
                    await response.read()
                else:
                    raw = await response.content.read(ack.answer_bytes)
                    answer = raw.decode("utf-8", "replace")
                status = response.status
        except TimeoutError:
            return CallbackAttempt(number, at, None, "timeout", duplicate)
        except aiohttp.ClientError as exc:
            return CallbackAttempt(number, at, None, f"{type(exc).__name__}: {exc}", duplicate)
        return CallbackAttempt(number, at, status, ack.judge(status, answer), duplicate, answer)
