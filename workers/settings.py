"""arq worker settings for payfront's queue."""

from __future__ import annotations

from typing import Any

import orjson
from arq import cron
from arq.connections import RedisSettings
from prometheus_client import start_http_server

from core.logs import configure_logging
from core.settings import Settings
from workers.check import check_order
from workers.context import WorkerContext
from workers.instrument import instrumented
from workers.notify import deliver, notify
from workers.prepay import prepay
from workers.sweeper import sweep


def worker_settings(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``arq.Worker`` built from payfront's settings."""

    async def on_startup(ctx: dict[str, Any]) -> None:
        ctx["payfront"] = WorkerContext.build(settings, ctx["redis"])
        if settings.worker_metrics_port:
            start_http_server(settings.worker_metrics_port, addr=settings.worker_metrics_host)

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        context: WorkerContext | None = ctx.get("payfront")
        if context is not None:
            await context.close()

    interval = max(1, settings.sweep_interval_s)
    return {
        "functions": [instrumented(job) for job in (prepay, check_order, notify, deliver)],
        "cron_jobs": [
            cron(
                instrumented(sweep),
                name="sweep",
                second=set(range(0, 60, interval)),
                run_at_startup=True,
                unique=True,
            )
        ],
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "queue_name": settings.queue_name,
        "max_jobs": settings.worker_max_jobs,
        "poll_delay": settings.worker_poll_delay_s,
        "job_timeout": settings.job_timeout_s,
        # Our jobs decide when to give up; arq's own limit only backs that up.
        "max_tries": settings.prepay_max_tries + 1,
        # No results kept: the database is the record, and a finished job's id must be
        # free for the sweeper to enqueue again.
        "keep_result": 0,
        "job_serializer": orjson.dumps,
        "job_deserializer": orjson.loads,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "handle_signals": True,
    }


def run_worker(settings: Settings) -> None:
    from arq.worker import Worker

    configure_logging(level=settings.log_level, fmt=settings.log_format)
    Worker(**worker_settings(settings)).run()
