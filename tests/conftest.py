"""Fixtures that start real services: Redis, SQLite and PostgreSQL databases, the sandbox,
the gateway and an arq worker. Keys are generated at test time, never committed."""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from aiohttp import web
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from multidict import CIMultiDict
from sqlalchemy.ext.asyncio import create_async_engine

from core import ids
from core.settings import Settings
from core.store.db import Database
from core.store.migrate import upgrade
from core.store.tables import metadata
from core.vault import Vault, new_master_key
from gateway.app import create_app as create_gateway
from gateway.app import server_limits
from mock_channels.app import SandboxConfig
from mock_channels.app import create_app as create_sandbox
from payfront.devsetup import SandboxAccount, provision_wechat_sandbox_account
from payfront.localredis import answers, start_private_redis
from workers.settings import WorkerPools

TEST_REDIS_URL = os.environ.get("PAYFRONT_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
TEST_POSTGRES_URL = os.environ.get(
    "PAYFRONT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_POSTGRES = os.environ.get("PAYFRONT_REQUIRE_POSTGRES") == "1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The local Redis (a dedicated db index), or a private redis-server when none answers."""
    if answers(TEST_REDIS_URL):
        yield TEST_REDIS_URL
        return
    url, process = start_private_redis()
    try:
        yield url
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


async def _postgres_database() -> str | None:
    admin = create_async_engine(TEST_POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"payfront_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception:
        if REQUIRE_POSTGRES:
            raise
        return None
    finally:
        await admin.dispose()
    url = sa.make_url(TEST_POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    await upgrade(url)
    return url


async def _drop_postgres_database(url: str) -> None:
    name = sa.make_url(url).database
    admin = create_async_engine(TEST_POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    """A migrated PostgreSQL database for this session, or None when no server answers."""
    url = asyncio.run(_postgres_database())
    yield url
    if url is not None:
        asyncio.run(_drop_postgres_database(url))


async def _truncate(url: str) -> None:
    engine = create_async_engine(url)
    names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    postgres_url: str | None,
) -> str:
    """Each test runs once on a fresh SQLite file and once on PostgreSQL (when there)."""
    if request.param == "sqlite":
        path = tmp_path / "payfront.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"
    if postgres_url is None:
        pytest.skip("no PostgreSQL answers at PAYFRONT_TEST_POSTGRES_URL")
    await _truncate(postgres_url)
    return postgres_url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture
def vault() -> Vault:
    return Vault(new_master_key())


@dataclass
class WebhookInbox:
    """A merchant's webhook endpoint that records what arrives and answers as told."""

    url: str = ""
    received: list[tuple[CIMultiDict[str], bytes]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    delay_s: float = 0.0  # a slow merchant endpoint

    async def handle(self, request: web.Request) -> web.Response:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        self.received.append((CIMultiDict(request.headers), await request.read()))
        self.arrived.set()
        status = self.answers.pop(0) if self.answers else 200
        return web.Response(status=status, text="ok" if status < 300 else "no")

    async def wait_for(self, count: int, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()


@dataclass
class Stack:
    """Sandbox + gateway + worker, in this test's event loop, on real Redis and database.

    Its merchant works in test mode: ``settings`` are as test mode sees them (the shadow
    database ``db``, test-mode queues and circuit keys); ``root_settings`` are what the
    gateway and workers were started with (live and test side by side)."""

    settings: Settings
    root_settings: Settings
    db: Database
    vault: Vault
    redis: ArqRedis
    gateway_url: str
    sandbox_url: str
    api_key: str
    account: SandboxAccount
    http: httpx.AsyncClient
    inbox: WebhookInbox
    webhook_secret: str
    sandbox_state_dir: Path = Path()
    worker: WorkerPools | None = None

    def auth(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}", **extra}

    @staticmethod
    def payment_body(**overrides: Any) -> dict[str, Any]:
        """A valid ``POST /v1/payments`` body with a fresh merchant order number."""
        body = {
            "amount": 100,
            "currency": "CNY",
            "merchant_order_no": "order-" + uuid.uuid4().hex[:12],
            "channel": "wechatpay",
            "method": "native",
            "description": "A cup of tea",
        }
        body.update(overrides)
        return body

    async def create_payment(self, **overrides: Any) -> httpx.Response:
        body = self.payment_body(**overrides)
        return await self.http.post(
            f"{self.gateway_url}/v1/payments", json=body, headers=self.auth()
        )

    async def token(self, token: str, wait: float = 0) -> dict[str, Any]:
        answer = await self.http.get(f"{self.gateway_url}/v1/tokens/{token}", params={"wait": wait})
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    async def payment(self, pay_no: str) -> dict[str, Any]:
        answer = await self.http.get(
            f"{self.gateway_url}/v1/payments/{pay_no}", headers=self.auth()
        )
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    async def shopper_pays(self, pay_no: str, **body: Any) -> httpx.Response:
        payload = {"mchid": self.account.keys.mchid, "outcome": "success", **body}
        return await self.http.post(
            f"{self.sandbox_url}/sandbox/wechatpay/orders/{pay_no}/pay", json=payload
        )

    async def sandbox_order(self, pay_no: str) -> dict[str, Any]:
        answer = await self.http.get(f"{self.sandbox_url}/sandbox/wechatpay/orders/{pay_no}")
        answer.raise_for_status()
        return dict(answer.json())

    async def set_faults(self, **faults: Any) -> None:
        answer = await self.http.put(
            f"{self.sandbox_url}/sandbox/wechatpay/faults/{self.account.keys.mchid}", json=faults
        )
        answer.raise_for_status()

    async def forget_redis_state(self) -> None:
        """Delete every Redis key of this stack (queued jobs, in-progress marks): what a
        FLUSHDB does to it, without touching other test runs sharing the database."""
        await forget_keys(self.redis, self.settings)

    async def start_worker(self) -> None:
        assert self.worker is None
        self.worker = WorkerPools(self.root_settings)
        await self.worker.start()

    async def stop_worker(self) -> None:
        if self.worker is not None:
            await self.worker.stop(grace_s=15)
            self.worker = None

    async def wait_status(self, pay_no: str, status: str, timeout: float = 10) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                payment = await self.payment(pay_no)
                if payment["status"] == status:
                    return payment
                await asyncio.sleep(0.02)


async def forget_keys(redis: ArqRedis, settings: Settings) -> None:
    """Delete one test's Redis keys (all carry its queue prefix), and no one else's."""
    prefix = settings.queue_name.split(":core")[0]
    async for key in redis.scan_iter(match=f"*{prefix}*", count=1000):
        await redis.delete(key)


def make_settings(
    database_url: str, redis_url: str, *, live_database_url: str | None = None, **overrides: Any
) -> Settings:
    """Settings for one test; every Redis key it makes contains its queue prefix.

    The tests' merchants use test-mode keys, so ``database_url`` (the database a test reads
    and writes) is the shadow database, ``test_database_url``; the live database is
    ``live_database_url`` or a scratch SQLite file that test-mode traffic must never touch.
    Workers serve test mode only unless a test asks for more (``worker_modes``)."""
    prefix = f"payfront:test:{uuid.uuid4().hex[:12]}"
    if live_database_url is None:
        scratch = Path(tempfile.gettempdir()) / f"payfront-live-{uuid.uuid4().hex[:12]}.db"
        live_database_url = f"sqlite+aiosqlite:///{scratch}"
    values: dict[str, Any] = {
        "database_url": live_database_url,
        "test_database_url": database_url,
        "worker_modes": "test",
        "redis_url": redis_url,
        "queue_name": f"{prefix}:core",
        "notify_queue_name": f"{prefix}:notify",
        "master_key": new_master_key(),
        "worker_poll_delay_s": 0.01,
        "prepay_retry_base_s": 0.05,
        "channel_timeout_s": 2.0,
        "sweep_interval_s": 1,
        "sweep_grace_s": 0.5,
        "webhook_retry_scale": 0.0005,
        "log_level": "WARNING",
        "worker_metrics_port": 0,  # in-process workers share the test's registry
    }
    values.update(overrides)
    return Settings(**values)


async def _site(app: web.Application, port: int, **limits: Any) -> web.AppRunner:
    runner = web.AppRunner(app, handle_signals=False, access_log=None, **limits)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


@pytest.fixture
def stack_overrides() -> dict[str, Any]:
    """Settings a test module wants changed (override this fixture in the module)."""
    return {}


@pytest.fixture
def live_database_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated live database of its own for each test (test-mode traffic goes to
    ``database_url``, the shadow database; tests/integration/test_test_mode.py proves it
    never reaches this one)."""
    path = tmp_path / "live.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def stack(
    database_url: str,
    live_database_url: str,
    redis_url: str,
    tmp_path: Path,
    stack_overrides: dict[str, Any],
) -> AsyncIterator[Stack]:
    gateway_port, sandbox_port, inbox_port = free_port(), free_port(), free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    settings = make_settings(
        database_url,
        redis_url,
        live_database_url=live_database_url,
        public_base_url=gateway_url,
        **{"sandbox_urls": sandbox_url, **stack_overrides},
    )
    runners = []
    db = Database(database_url)
    vault = Vault(settings.master_key)
    redis = await create_pool(
        RedisSettings.from_dsn(redis_url),
        job_serializer=orjson.dumps,
        job_deserializer=orjson.loads,
        default_queue_name=settings.queue_name,
    )
    http = httpx.AsyncClient(timeout=30)
    try:
        sandbox_config = SandboxConfig(
            state_dir=tmp_path / "sandbox",
            time_scale=0.001,
            public_base_url=sandbox_url,
            seed=7,
            gateway_url=gateway_url,
        )
        runners.append(await _site(create_sandbox(sandbox_config), sandbox_port))
        api_key = ids.new_api_key(livemode=False)
        account = await provision_wechat_sandbox_account(
            db,
            vault,
            sandbox_url=sandbox_url,
            merchant_id="mch_test",
            merchant_name="Test shop",
            api_key=api_key,
            account_id="wx_test",
        )
        inbox = WebhookInbox(url=f"http://127.0.0.1:{inbox_port}/hooks")
        inbox_app = web.Application()
        inbox_app.router.add_post("/hooks", inbox.handle)
        runners.append(await _site(inbox_app, inbox_port))
        from core.merchants import add_webhook_endpoint

        _, secret = await add_webhook_endpoint(db, vault, merchant_id="mch_test", url=inbox.url)
        gateway = create_gateway(settings)
        runners.append(await _site(gateway, gateway_port, **server_limits(settings)))
        the_stack = Stack(
            settings=settings.for_mode("test"),
            root_settings=settings,
            db=db,
            vault=vault,
            redis=redis,
            gateway_url=gateway_url,
            sandbox_url=sandbox_url,
            api_key=api_key,
            account=account,
            http=http,
            inbox=inbox,
            webhook_secret=secret,
            sandbox_state_dir=sandbox_config.state_dir,
        )
        await the_stack.start_worker()
        yield the_stack
        await the_stack.stop_worker()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
        await http.aclose()
        await forget_keys(redis, settings)
        await redis.aclose()
        await db.dispose()
        gc.collect()  # surface unclosed resources in the test that left them
