"""The chaos suite's machinery: its size, a scratch database, the real payfront processes
(sandbox, gateway, two worker slots that can be killed and restarted), the merchant's
webhook receiver and the processes' JSON log lines."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import create_async_engine

from core.store.migrate import upgrade
from tests.conftest import REQUIRE_POSTGRES, TEST_POSTGRES_URL, free_port

CI_PAYMENTS = 150
FULL_PAYMENTS = 3000


@dataclass(frozen=True)
class ChaosSize:
    """How big a run is: payments, how fast shoppers arrive, and the time bounds."""

    payments: int
    arrivals_per_s: float
    kill_every_s: tuple[float, float]
    settle_timeout_s: float

    @property
    def arrival_window_s(self) -> float:
        return self.payments / self.arrivals_per_s

    @property
    def chaos_s(self) -> float:
        # Faults and kills last a little beyond the last arrival, so late work suffers too.
        return self.arrival_window_s + 5

    @property
    def shopper_timeout_s(self) -> float:
        return self.chaos_s + self.settle_timeout_s

    @property
    def test_timeout_s(self) -> int:
        return int(self.chaos_s + 2 * self.settle_timeout_s + 120)

    @classmethod
    def from_env(cls) -> ChaosSize:
        """``PAYFRONT_CHAOS_SIZE``: unset or ``ci`` (150 payments), ``full`` (3000), or N."""
        raw = os.environ.get("PAYFRONT_CHAOS_SIZE", "ci").strip().lower()
        if raw in ("", "ci"):
            payments = CI_PAYMENTS
        elif raw == "full":
            payments = FULL_PAYMENTS
        else:
            payments = int(raw)
        if payments <= CI_PAYMENTS:
            return cls(payments, arrivals_per_s=5, kill_every_s=(4, 7), settle_timeout_s=90)
        return cls(payments, arrivals_per_s=8, kill_every_s=(5, 12), settle_timeout_s=240)


# -- the database ---------------------------------------------------------------------------


@asynccontextmanager
async def scratch_database(tmp_path: Path) -> AsyncIterator[str]:
    """A migrated database of its own: PostgreSQL when one answers, else a SQLite file."""
    name = f"payfront_chaos_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_async_engine(TEST_POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        on_postgres = True
    except Exception:
        if REQUIRE_POSTGRES:
            raise
        on_postgres = False
    finally:
        await admin.dispose()
    if on_postgres:
        url = (
            sa.make_url(TEST_POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        )
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'payfront.db'}"
    try:
        await upgrade(url)
        yield url
    finally:
        if on_postgres:
            admin = create_async_engine(TEST_POSTGRES_URL, isolation_level="AUTOCOMMIT")
            try:
                async with admin.connect() as conn:
                    await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            finally:
                await admin.dispose()


# -- the merchant's webhook endpoint ----------------------------------------------------------


@dataclass
class FlakyInbox:
    """The merchant's webhook endpoint: records every delivery, answers 500 now and then."""

    rng: random.Random
    failure_rate: float = 0.0
    # (arrival time, lower-cased headers, raw body) of every delivery answered 200
    received: list[tuple[float, dict[str, str], bytes]] = field(default_factory=list)
    refused: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.rng.random() < self.failure_rate:
            self.refused += 1
            return web.Response(status=500, text="merchant endpoint flapping")
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.received.append((time.time(), headers, body))
        return web.Response(text="ok")


@asynccontextmanager
async def serve_inbox(inbox: FlakyInbox, port: int) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/hooks", inbox.handle)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/hooks"
    finally:
        await runner.cleanup()


# -- the processes --------------------------------------------------------------------------


def process_env(
    *, database_url: str, redis_url: str, prefix: str, master_key: str, tmp_path: Path
) -> dict[str, str]:
    """Settings for every payfront process of one run: short timeouts so that killed jobs,
    lost callbacks and lost Redis state are all recovered within seconds."""
    gateway_port, sandbox_port = free_port(), free_port()
    return {
        **os.environ,
        # The run's merchant is a test-mode one: its data is in the shadow database; the
        # live one is a scratch file no test-mode traffic may touch.
        "PAYFRONT_TEST_DATABASE_URL": database_url,
        "PAYFRONT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'live.db'}",
        "PAYFRONT_WORKER_MODES": "test",
        "PAYFRONT_REDIS_URL": redis_url,
        # Every Redis key of the run carries the prefix (see tests.conftest.forget_keys).
        "PAYFRONT_QUEUE_NAME": f"{prefix}:core",
        "PAYFRONT_NOTIFY_QUEUE_NAME": f"{prefix}:notify",
        "PAYFRONT_MASTER_KEY": master_key,
        "PAYFRONT_GATEWAY_PORT": str(gateway_port),
        "PAYFRONT_PUBLIC_BASE_URL": f"http://127.0.0.1:{gateway_port}",
        "PAYFRONT_SANDBOX_PORT": str(sandbox_port),
        "PAYFRONT_SANDBOX_STATE_DIR": str(tmp_path / "sandbox"),
        "PAYFRONT_SANDBOX_TIME_SCALE": "0.01",
        # A killed worker's jobs re-run after job timeout + 10 s.
        "PAYFRONT_JOB_TIMEOUT_S": "2",
        "PAYFRONT_CHANNEL_TIMEOUT_S": "0.5",
        "PAYFRONT_CHANNEL_CONNECT_TIMEOUT_S": "0.5",
        "PAYFRONT_PREPAY_MAX_TRIES": "10",
        "PAYFRONT_PREPAY_RETRY_BASE_S": "0.1",
        "PAYFRONT_SWEEP_INTERVAL_S": "1",
        "PAYFRONT_SWEEP_GRACE_S": "1",
        "PAYFRONT_CHECK_AFTER_S": "1",
        "PAYFRONT_CHECK_EVERY_S": "1",
        "PAYFRONT_WEBHOOK_TIMEOUT_S": "2",
        "PAYFRONT_WEBHOOK_RETRY_SCALE": "0.001",
        "PAYFRONT_WORKER_METRICS_PORT": "0",  # restarted workers would fight over a port
        "PAYFRONT_LOG_FORMAT": "json",
        "PAYFRONT_LOG_LEVEL": "INFO",
    }


@dataclass
class Processes:
    """The run's payfront processes, each logging to its own file in ``logs``."""

    env: dict[str, str]
    logs: Path
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    workers: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    kills: int = 0

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.env['PAYFRONT_GATEWAY_PORT']}"

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.env['PAYFRONT_SANDBOX_PORT']}"

    def start(self, command: str) -> subprocess.Popen[bytes]:
        name = f"{command}-{len(self.children)}"
        with (self.logs / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "payfront", command],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.children[name] = process
        return process

    def start_worker(self, slot: int) -> None:
        self.workers[slot] = self.start("worker")

    def kill_worker(self, slot: int) -> None:
        """SIGKILL: no shutdown, jobs in flight stay marked in progress in Redis."""
        process = self.workers.pop(slot)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        self.kills += 1

    def crashed(self) -> list[str]:
        """Processes that exited by themselves (a killed worker is not one of them)."""
        return [
            f"{name} (exit {process.returncode})"
            for name, process in self.children.items()
            if process.poll() is not None and process.returncode != -signal.SIGKILL
        ]

    def stop_all(self) -> None:
        for process in self.children.values():
            if process.poll() is None:
                process.terminate()
        for process in self.children.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


async def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=0.5) as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} did not come up within {timeout:.0f} s")


# -- logs -----------------------------------------------------------------------------------


def log_records(logs: Path) -> list[tuple[str, dict[str, Any]]]:
    """Every JSON log line of every process, with the name of its log file."""
    records = []
    for path in sorted(logs.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    records.append((path.stem, json.loads(line)))
                except json.JSONDecodeError:
                    continue  # a line cut short by SIGKILL
    return records


def log_counts(records: list[tuple[str, dict[str, Any]]]) -> Counter[str]:
    """How often the events that show faults being met and recovered from were logged."""
    counts: Counter[str] = Counter()
    for _, record in records:
        event = str(record.get("event", ""))
        if event == "prepay.retry":
            counts[f"prepay.retry {record.get('code')}"] += 1
        elif event in (
            "check.paid_without_callback",
            "check.channel_error",
            "check.closed",
            "callback.applied",
            "callback.rejected",
            "prepay.failed",
            "request.failed",
        ):
            counts[event] += 1
        elif event == "sweep.re_enqueued":
            counts["sweep.re_enqueued jobs"] += int(record.get("outbox", 0)) + int(
                record.get("deliveries", 0)
            )
        elif event == "webhook.attempt" and record.get("error"):
            counts["webhook.attempt failed"] += 1
    return counts


def log_lines_about(logs: Path, needle: str, limit: int = 60) -> list[str]:
    """Raw log lines mentioning ``needle`` (a pay_no), prefixed with their file: evidence."""
    lines = []
    for path in sorted(logs.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if needle in line:
                lines.append(f"{path.stem}: {line}")
    return lines[-limit:]
