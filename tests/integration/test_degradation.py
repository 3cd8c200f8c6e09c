"""Dependencies failing: Redis down keeps the token path answering (work resumes from the
outbox when Redis returns); a database that does not answer gives a fast 503."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiohttp import web

from core.store.tables import outbox
from gateway.app import create_app
from payfront.localredis import start_private_redis
from tests.conftest import Stack, free_port, make_settings


@dataclass
class PrivateRedis:
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        _, self.process = start_private_redis(self.port)

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(10)
        self.process = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    redis = PrivateRedis(port=free_port())
    redis.start()
    yield redis
    if redis.process is not None:
        redis.stop()


@pytest.fixture
def redis_url(private_redis: PrivateRedis) -> str:
    """This module's stack runs on a Redis of its own, which the tests stop and start."""
    return private_redis.url


async def _outbox_pending(stack: Stack) -> list[str]:
    async with stack.db.read() as conn:
        rows = await conn.execute(sa.select(outbox.c.ref).where(outbox.c.status == "pending"))
        return sorted(rows.scalars())


async def test_redis_down_still_records_and_answers_then_work_resumes(
    stack: Stack, private_redis: PrivateRedis
) -> None:
    await stack.stop_worker()
    private_redis.stop()

    plain = await stack.create_payment()
    assert plain.status_code == 201, plain.text
    url = f"{stack.gateway_url}/v1/payments"
    body = stack.payment_body()
    headers = stack.auth(**{"Idempotency-Key": "while-redis-is-down"})
    keyed = await stack.http.post(url, json=body, headers=headers)
    assert keyed.status_code == 201, keyed.text
    replay = await stack.http.post(url, json=body, headers=headers)
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["pay_no"] == keyed.json()["pay_no"]
    pay_nos = sorted([plain.json()["pay_no"], keyed.json()["pay_no"]])
    assert await _outbox_pending(stack) == pay_nos

    started = time.monotonic()
    token = await stack.token(plain.json()["token"], wait=1.5)
    assert token["status"] == "pending"  # answered from the database, without wake-ups
    assert time.monotonic() - started < 5

    private_redis.start()
    await stack.start_worker()
    for answer in (plain, keyed):
        assert (await stack.token(answer.json()["token"], wait=15))["status"] == "awaiting_payment"
    assert await _outbox_pending(stack) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_unreachable_database_gives_a_fast_503(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    del database_url  # a real one is not what this test wants
    port = free_port()
    settings = make_settings(
        "postgresql+asyncpg://postgres@127.0.0.1:1/nothing_listens_here",
        redis_url,
        live_database_url="postgresql+asyncpg://postgres@127.0.0.1:1/nor_here",
    )
    runner = web.AppRunner(create_app(settings), handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        import httpx

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            started = time.monotonic()
            answer = await http.post(
                "/v1/payments",
                json=Stack.payment_body(),
                headers={"Authorization": "Bearer sk_test_any"},
            )
            assert time.monotonic() - started < 5
            assert answer.status_code == 503
            assert answer.json()["error"]["type"] == "service_unavailable_error"
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["redis"] == "ok"
            assert ready.json()["checks"]["database"].startswith("error")
            assert ready.json()["checks"]["shadow_database"].startswith("error")
    finally:
        await runner.cleanup()
        await asyncio.sleep(0)
