"""Alipay's asynchronous notifications: a signed form POSTed to ``notify_url``, sent again on
Alipay's schedule until the answer is the seven characters ``success``.

Alipay's docs (opendocs "异步通知说明"): anything but ``success`` is retried, 8 tries in about
25 hours at 4m, 10m, 10m, 1h, 2h, 6h, 15h. An HTTP 2xx alone is not an acknowledgement (unlike
WeChat Pay's, which is why ``mock_channels.callbacks.CallbackSender`` does not fit here).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

logger = logging.getLogger(__name__)

ALIPAY_NOTIFY_DELAYS_S: tuple[float, ...] = (
    4 * 60,
    10 * 60,
    10 * 60,
    60 * 60,
    2 * 3600,
    6 * 3600,
    15 * 3600,
)
ACK = "success"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"


@dataclass(frozen=True, slots=True)
class NotifyAttempt:
    attempt: int
    at: dt.datetime
    status: int | None
    # The start of the merchant's answer, as received (Alipay compares it with "success").
    answer: str | None
    error: str | None
    duplicate: bool = False

    @property
    def acknowledged(self) -> bool:
        # Surrounding whitespace is tolerated (a println'd "success" is acknowledged).
        return self.status == 200 and self.answer is not None and self.answer.strip() == ACK

    def as_record(self) -> dict[str, Any]:
        return {
            "attempt": self.attempt,
            "at": self.at.isoformat(timespec="milliseconds"),
            "status": self.status,
            "answer": self.answer,
            "error": self.error,
            "acknowledged": self.acknowledged,
            "duplicate": self.duplicate,
        }


@dataclass(frozen=True, slots=True)
class NotifyJob:
    url: str
    # The form body of one send (signed afresh, with that send's notify_time).
    body_for: Callable[[], bytes]
    record: Callable[[NotifyAttempt], None]
    retry_delays_s: Sequence[float] = ALIPAY_NOTIFY_DELAYS_S
    duplicate: bool = False


class NotifySender:
    def __init__(self, *, timeout_s: float, time_scale: float) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._time_scale = time_scale
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def attach_session(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    def start(self, job: NotifyJob) -> asyncio.Task[None]:
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

    async def _deliver(self, job: NotifyJob) -> None:
        for number, delay in enumerate([0.0, *job.retry_delays_s], start=1):
            if delay:
                await asyncio.sleep(delay * self._time_scale)
            attempt = await self._send(job, number, duplicate=False)
            job.record(attempt)
            if attempt.acknowledged:
                if job.duplicate:
                    job.record(await self._send(job, number, duplicate=True))
                return
        logger.info("alipay notify to %s given up after %d tries", job.url, number)

    async def _send(self, job: NotifyJob, number: int, *, duplicate: bool) -> NotifyAttempt:
        if self._session is None:
            raise RuntimeError("the notify sender has no HTTP session (app not started)")
        at = dt.datetime.now(dt.UTC)
        try:
            async with self._session.post(
                job.url,
                data=job.body_for(),
                headers={"Content-Type": FORM_CONTENT_TYPE},
                timeout=self._timeout,
            ) as response:
                answer = (await response.content.read(256)).decode("utf-8", "replace")
                status = response.status
        except TimeoutError:
            return NotifyAttempt(number, at, None, None, "timeout", duplicate)
        except aiohttp.ClientError as exc:
            return NotifyAttempt(number, at, None, None, f"{type(exc).__name__}: {exc}", duplicate)
        attempt = NotifyAttempt(number, at, status, answer, None, duplicate)
        if not attempt.acknowledged:
            attempt = NotifyAttempt(number, at, status, answer, "not acknowledged", duplicate)
        return attempt
