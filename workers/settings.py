"""arq worker pools: the core link (prepay, order checks, the sweeper) and notifications,
each on its own queue with its own job slots, run together or as separate processes."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import orjson
from arq import cron
from arq.connections import RedisSettings
from arq.worker import Worker
from prometheus_client import start_http_server

from core.logs import configure_logging
from core.settings import Mode, Settings
from workers.arq_worker import PayfrontWorker
from workers.check import check_order
from workers.context import WorkerContext
from workers.instrument import instrumented
from workers.ledger import apply_hot_postings, post_entry, settle_day, settlement_cron
from workers.notify import deliver, notify
from workers.prepay import prepay
from workers.reconcile import reconcile_crons, reconcile_statement, store_statement
from workers.refund import check_refund, refund
from workers.sweeper import sweep
from workers.withdraw import check_withdrawal, withdraw

POOLS = ("core", "notify")


def worker_settings(settings: Settings, pool: str) -> dict[str, Any]:
    """Keyword arguments for one ``arq.Worker`` of ``pool`` ("core" or "notify")."""

    async def on_startup(ctx: dict[str, Any]) -> None:
        ctx["payfront"] = WorkerContext.build(settings, ctx["redis"])

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        context: WorkerContext | None = ctx.get("payfront")
        if context is not None:
            await context.close()

    common: dict[str, Any] = {
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "poll_delay": settings.worker_poll_delay_s,
        "job_timeout": settings.job_timeout_s,
        # No results kept: the database is the record, and a finished job's id must be
        # free for the sweeper to enqueue again.
        "keep_result": 0,
        "job_serializer": orjson.dumps,
        "job_deserializer": orjson.loads,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "handle_signals": False,
    }
    if pool == "core":
        interval = max(1, settings.sweep_interval_s)
        return common | {
            "functions": [
                instrumented(prepay),
                instrumented(check_order),
                instrumented(refund),
                instrumented(check_refund),
                instrumented(withdraw),
                instrumented(check_withdrawal),
            ],
            "cron_jobs": [
                cron(
                    instrumented(sweep),
                    # cron job ids are global to the Redis database, like all arq job ids.
                    name=f"{settings.queue_name}:sweep",
                    second=set(range(0, 60, interval)),
                    run_at_startup=True,
                    unique=True,
                )
            ],
            "queue_name": settings.queue_name,
            "max_jobs": settings.worker_max_jobs,
            # Our jobs decide when to give up; arq's own limit only backs that up.
            "max_tries": settings.prepay_max_tries + 1,
        }
    if pool == "notify":
        return common | {
            "functions": [
                instrumented(notify),
                instrumented(deliver),
                instrumented(post_entry),
                instrumented(settle_day),
                instrumented(store_statement),
                instrumented(reconcile_statement),
            ],
            "cron_jobs": [
                cron(
                    instrumented(apply_hot_postings),
                    name=f"{settings.notify_queue_name}:apply_hot_postings",
                    second=set(range(60)),
                    run_at_startup=True,
                    unique=True,
                ),
                settlement_cron(settings),
                *reconcile_crons(settings),
            ],
            "queue_name": settings.notify_queue_name,
            "max_jobs": settings.notify_max_jobs,
            "max_tries": 3,
        }
    raise ValueError(f"unknown worker pool {pool!r}; pools are {', '.join(POOLS)}")


class WorkerPools:
    """Several arq workers in one event loop, started and stopped together: each pool once
    per mode served (``worker_modes``). A mode's pools have their own queues and their own
    database (``Settings.for_mode``): test-mode work never takes a live job slot, and a
    test-mode job can only reach the shadow database."""

    def __init__(
        self,
        settings: Settings,
        pools: tuple[str, ...] = POOLS,
        modes: tuple[Mode, ...] | None = None,
    ) -> None:
        self._settings = settings
        self._pools = pools
        self._modes = modes if modes is not None else settings.worker_mode_list
        self.workers: list[Worker] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for mode in self._modes:
            for pool in self._pools:
                worker = PayfrontWorker(**worker_settings(self._settings.for_mode(mode), pool))
                self.workers.append(worker)
                name = f"arq-{mode}-{pool}"
                self._tasks.append(asyncio.create_task(worker.async_run(), name=name))

    async def stop(self, grace_s: float) -> None:
        """Stop taking jobs, give running ones ``grace_s`` to finish, then close.

        (arq's own shutdown cancels running jobs at once; a cancelled job re-runs from its
        start later, which is safe but slower.)
        """
        for worker in self.workers:
            worker.allow_pick_jobs = False
        # Let a poll iteration that was already picking jobs finish (it holds a Redis
        # pipeline); afterwards the poll loop only sleeps, where cancelling it is clean.
        await asyncio.sleep(self._settings.worker_poll_delay_s * 2 + 0.05)
        running = [task for worker in self.workers for task in worker.tasks.values()]
        if running:
            await asyncio.wait(running, timeout=grace_s)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for worker in self.workers:
            for task in worker.tasks.values():
                task.cancel()
            await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
            worker.tasks.clear()
            await worker.close()
        self.workers, self._tasks = [], []

    async def wait(self) -> None:
        """Until a worker stops by itself (which it only does when something broke)."""
        await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)


async def _serve(settings: Settings, pools: tuple[str, ...]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    workers = WorkerPools(settings, pools)
    await workers.start()
    stopped = asyncio.create_task(stop.wait())
    crashed = asyncio.create_task(workers.wait())
    await asyncio.wait([stopped, crashed], return_when=asyncio.FIRST_COMPLETED)
    await workers.stop(grace_s=settings.job_timeout_s)
    for task in (stopped, crashed):
        task.cancel()


def run_worker(settings: Settings, pools: tuple[str, ...] = POOLS) -> None:
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, addr=settings.worker_metrics_host)
    asyncio.run(_serve(settings, pools))
