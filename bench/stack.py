"""The system under test as real processes: Redis (db 10), a scratch SQLite or PostgreSQL
database, and ``python -m payfront sandbox|gateway|worker`` with their own PAYFRONT_* env,
plus the bare baseline; a merchant, its API key and a WeChat Pay sandbox account provisioned
before any load."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from bench.machine import Pinning
from core import ids
from core.provision import WechatMerchantKeys
from core.store.db import Database
from core.store.migrate import upgrade
from core.store.tables import pay_orders
from core.vault import Vault, new_master_key
from payfront.devsetup import provision_wechat_sandbox_account
from payfront.localredis import RedisMissing, answers, start_private_redis

REDIS_URL = "redis://127.0.0.1:6379/10"
POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
MERCHANT_ID = "mch_bench"
ACCOUNT_ID = "wx_bench"
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Redis -----------------------------------------------------------------------------------


@dataclass
class BenchRedis:
    """Database 10 of the local Redis, or of a private redis-server when none answers."""

    url: str
    process: subprocess.Popen[bytes] | None = None

    def describe(self) -> str:
        owner = "a private redis-server started for this run" if self.process else "local Redis"
        return f"{self.url} ({owner}; only this database is flushed)"

    def flush(self) -> None:
        client = redis.Redis.from_url(self.url)
        try:
            client.flushdb()
        finally:
            client.close()


@contextlib.contextmanager
def bench_redis(url: str = REDIS_URL) -> Iterator[BenchRedis]:
    if answers(url):
        found = BenchRedis(url)
    else:
        try:
            private_url, process = start_private_redis()
        except RedisMissing as exc:
            raise SystemExit(f"bench: {exc}") from None
        found = BenchRedis(private_url.rsplit("/", 1)[0] + "/10", process)
    found.flush()
    try:
        yield found
    finally:
        found.flush()
        if found.process is not None:
            found.process.terminate()
            found.process.wait(10)


# Databases -------------------------------------------------------------------------------


async def _create_postgres(admin_url: str) -> str | None:
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"payfront_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception:
        return None
    finally:
        await admin.dispose()
    url = sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    await upgrade(url)
    return url


async def _drop_postgres(admin_url: str, url: str) -> None:
    name = sa.make_url(url).database
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


def postgres_answers(admin_url: str = POSTGRES_URL) -> bool:
    async def probe() -> bool:
        engine = create_async_engine(admin_url, connect_args={"timeout": 3})
        try:
            async with engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
            return True
        except Exception:
            return False
        finally:
            await engine.dispose()

    return asyncio.run(probe())


@contextlib.contextmanager
def scratch_database(kind: str, workdir: Path, admin_url: str = POSTGRES_URL) -> Iterator[str]:
    """A migrated, empty database: a SQLite file in ``workdir``, or a PostgreSQL database
    created for this run and dropped after it."""
    if kind == "sqlite":
        path = workdir / f"payfront-{uuid.uuid4().hex[:6]}.db"
        url = f"sqlite+aiosqlite:///{path}"
        asyncio.run(upgrade(url))
        try:
            yield url
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    created = asyncio.run(_create_postgres(admin_url))
    if created is None:
        raise RuntimeError(f"could not create a database at {admin_url}")
    try:
        yield created
    finally:
        asyncio.run(_drop_postgres(admin_url, created))


async def _count_by_status(database_url: str) -> dict[str, int]:
    db = Database(database_url)
    try:
        async with db.read() as conn:
            rows = await conn.execute(
                sa.select(pay_orders.c.status, sa.func.count()).group_by(pay_orders.c.status)
            )
            return {str(status): int(count) for status, count in rows}
    finally:
        await db.dispose()


def payments_by_status(database_url: str) -> dict[str, int]:
    return asyncio.run(_count_by_status(database_url))


# Processes -------------------------------------------------------------------------------


@dataclass
class Processes:
    """Children of the bench, each logging to its own file; stopped in reverse order."""

    logs: Path
    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        self.children.append((name, process))
        return process

    def wait_http(self, name: str, url: str, timeout_s: float = 30) -> None:
        process = dict(self.children)[name]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                log = (self.logs / f"{name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{log}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=0.5).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{name} did not answer at {url} within {timeout_s:.0f} s")

    def stop_all(self) -> None:
        for _, process in reversed(self.children):
            if process.poll() is None:
                process.terminate()
        for _, process in reversed(self.children):
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self.children.clear()


def _clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("PAYFRONT_")}


@dataclass(frozen=True, slots=True)
class GatewayStack:
    """Sandbox + gateway (+ worker) on one database; the merchant is provisioned."""

    label: str
    database_url: str
    gateway_url: str
    sandbox_url: str
    api_key: str
    mchid: str
    gateway_pid: int
    worker_pid: int | None
    # The WeChat Pay account's keys and the sandbox's state (its platform key), for benches
    # that play the channel (callbacks).
    keys: WechatMerchantKeys | None = None
    sandbox_state_dir: Path | None = None
    queue_name: str | None = None
    sandbox_pid: int | None = None

    @property
    def payments_url(self) -> str:
        return f"{self.gateway_url}/v1/payments"

    def set_channel_latency(self, latency_ms: int) -> None:
        answer = httpx.put(
            f"{self.sandbox_url}/sandbox/wechatpay/faults/{self.mchid}",
            json={"latency_ms": latency_ms},
            timeout=10,
        )
        answer.raise_for_status()


async def _provision(
    database_url: str, master_key: str, sandbox_url: str, api_key: str
) -> WechatMerchantKeys:
    db = Database(database_url)
    try:
        account = await provision_wechat_sandbox_account(
            db,
            Vault(master_key),
            sandbox_url=sandbox_url,
            merchant_id=MERCHANT_ID,
            merchant_name="Bench shop",
            api_key=api_key,
            account_id=ACCOUNT_ID,
        )
    finally:
        await db.dispose()
    return account.keys


@contextlib.contextmanager
def gateway_stack(
    label: str,
    database_url: str,
    redis_url: str,
    workdir: Path,
    logs: Path,
    pinning: Pinning,
    *,
    with_worker: bool,
    extra_env: dict[str, str] | None = None,
) -> Iterator[GatewayStack]:
    """Start the sandbox, provision the merchant, then start the gateway (pinned like any
    server under load) and, if asked, a worker; stop them all on exit. ``extra_env`` adds
    or overrides PAYFRONT_* settings of all three processes."""
    gateway_port, sandbox_port = free_port(), free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    master_key = new_master_key()
    api_key = ids.new_api_key(livemode=False)
    run_id = secrets.token_hex(4)
    env = {
        **_clean_env(),
        # The bench's merchant has a test-mode key: its data is in the shadow database, the
        # one measured; the live database is a scratch file nothing writes to.
        "PAYFRONT_TEST_DATABASE_URL": database_url,
        "PAYFRONT_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / f'live-{label}.db'}",
        "PAYFRONT_WORKER_MODES": "test",
        "PAYFRONT_REDIS_URL": redis_url,
        "PAYFRONT_QUEUE_NAME": f"payfront:bench:{run_id}",
        "PAYFRONT_NOTIFY_QUEUE_NAME": f"payfront:bench:{run_id}:notify",
        # A port of its own: a fixed default would clash with any other worker on the machine.
        "PAYFRONT_WORKER_METRICS_PORT": str(free_port()),
        "PAYFRONT_MASTER_KEY": master_key,
        "PAYFRONT_GATEWAY_PORT": str(gateway_port),
        "PAYFRONT_PUBLIC_BASE_URL": gateway_url,
        "PAYFRONT_SANDBOX_PORT": str(sandbox_port),
        "PAYFRONT_SANDBOX_STATE_DIR": str(workdir / f"sandbox-{label}"),
        "PAYFRONT_LOG_LEVEL": "WARNING",
        "PAYFRONT_LOG_FORMAT": "json",
        # One merchant is the whole offered load here: the per-merchant limit would cap it.
        "PAYFRONT_RATE_LIMIT_PER_S": "0",
        **(extra_env or {}),
    }
    # The test-mode core queue (core.settings.Settings.for_mode), where the bench's jobs go.
    test_queue = f"{env['PAYFRONT_QUEUE_NAME']}:test"
    payfront = [sys.executable, "-m", "payfront"]
    processes = Processes(logs)
    try:
        sandbox = processes.start(f"{label}-sandbox", pinning.helper([*payfront, "sandbox"]), env)
        processes.wait_http(f"{label}-sandbox", f"{sandbox_url}/sandbox/health")
        keys = asyncio.run(_provision(database_url, master_key, sandbox_url, api_key))
        gateway = processes.start(f"{label}-gateway", pinning.server([*payfront, "gateway"]), env)
        processes.wait_http(f"{label}-gateway", f"{gateway_url}/readyz")
        worker = None
        if with_worker:
            worker = processes.start(f"{label}-worker", pinning.helper([*payfront, "worker"]), env)
            _wait_worker(processes, f"{label}-worker", redis_url, test_queue)
        yield GatewayStack(
            label=label,
            database_url=database_url,
            gateway_url=gateway_url,
            sandbox_url=sandbox_url,
            api_key=api_key,
            mchid=keys.mchid,
            gateway_pid=gateway.pid,
            worker_pid=None if worker is None else worker.pid,
            keys=keys,
            sandbox_state_dir=Path(env["PAYFRONT_SANDBOX_STATE_DIR"]),
            queue_name=test_queue,
            sandbox_pid=sandbox.pid,
        )
    finally:
        processes.stop_all()


@contextlib.contextmanager
def bare_baseline(logs: Path, pinning: Pinning) -> Iterator[tuple[str, int]]:
    """The bare aiohttp handler (``bench.baseline``), pinned like the gateway; yields its URL
    and process id."""
    port = free_port()
    processes = Processes(logs)
    try:
        command = pinning.server([sys.executable, "-m", "bench.baseline", "--port", str(port)])
        process = processes.start("bare", command, _clean_env())
        url = f"http://127.0.0.1:{port}/v1/payments"
        _wait_post(processes, "bare", url)
        yield url, process.pid
    finally:
        processes.stop_all()


def _wait_worker(processes: Processes, name: str, redis_url: str, queue: str) -> None:
    """Until the arq worker polls its queue (it writes ``<queue>:health-check`` when it does)."""
    process = dict(processes.children)[name]
    client = redis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                log = (processes.logs / f"{name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{log}")
            if client.exists(f"{queue}:health-check"):
                return
            time.sleep(0.1)
    finally:
        client.close()
    raise RuntimeError(f"{name} did not start polling {queue} within 30 s")


def _wait_post(processes: Processes, name: str, url: str, timeout_s: float = 20) -> None:
    process = dict(processes.children)[name]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.post(url, content=b"{}", timeout=0.5).status_code == 201:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not answer at {url}")
