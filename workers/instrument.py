"""Job metrics: run time, outcome and pick-up delay for every arq job function."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from arq import Retry
from arq.typing import WorkerCoroutine

from core.metrics import JOB_LATENCY, JOB_PICKUP, JOBS

Job = Callable[..., Awaitable[Any]]


def instrumented(job: Job) -> WorkerCoroutine:
    """Wrap a job so its runs are counted by outcome (ok, retry, error) and timed."""
    name = job.__name__

    @functools.wraps(job)
    async def run(ctx: dict[str, Any], *args: Any) -> Any:
        due_ms = ctx.get("score")  # arq's due time for this run, in ms (later for retries)
        if isinstance(due_ms, int | float):
            JOB_PICKUP.labels(name).observe(max(0.0, time.time() - due_ms / 1000))
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await job(ctx, *args)
            outcome = "ok"
            return result
        except Retry:
            outcome = "retry"
            raise
        finally:
            JOB_LATENCY.labels(name).observe(time.perf_counter() - started)
            JOBS.labels(name, outcome).inc()

    return cast(WorkerCoroutine, run)
