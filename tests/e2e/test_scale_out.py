"""Scale-out: two gateways and two workers on one Redis and one PostgreSQL, as processes.
Payments created on either gateway, long-polled on the other, paid, notified exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from core import ids
from core.vault import new_master_key
from sdk import verify_webhook
from tests.conftest import _truncate, free_port
from tests.e2e.test_processes import Inbox, Processes, _provision, _serve_inbox, _wait_http

pytestmark = pytest.mark.e2e
PAYMENTS = 40


@pytest.fixture
def cluster(tmp_path: Path, redis_url: str, postgres_url: str | None) -> Iterator[Processes]:
    if postgres_url is None:
        pytest.skip("scale-out runs on PostgreSQL; none answers")
    asyncio.run(_truncate(postgres_url))
    gateway_ports = [free_port(), free_port()]
    sandbox_port, inbox_port = free_port(), free_port()
    master_key = new_master_key()
    prefix = f"payfront:e2e:{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        # A test-mode merchant: its data is in the shadow database (PostgreSQL here).
        "PAYFRONT_TEST_DATABASE_URL": postgres_url,
        "PAYFRONT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'live.db'}",
        "PAYFRONT_WORKER_MODES": "test",
        "PAYFRONT_REDIS_URL": redis_url,
        "PAYFRONT_QUEUE_NAME": f"{prefix}:core",
        "PAYFRONT_NOTIFY_QUEUE_NAME": f"{prefix}:notify",
        "PAYFRONT_MASTER_KEY": master_key,
        # Callbacks go to the first gateway; either would do.
        "PAYFRONT_PUBLIC_BASE_URL": f"http://127.0.0.1:{gateway_ports[0]}",
        "PAYFRONT_SANDBOX_PORT": str(sandbox_port),
        "PAYFRONT_SANDBOX_STATE_DIR": str(tmp_path / "sandbox"),
        "PAYFRONT_SANDBOX_TIME_SCALE": "0.01",
        "PAYFRONT_WORKER_METRICS_PORT": "0",
        "PAYFRONT_LOG_FORMAT": "json",
    }
    inbox = Inbox()
    server = _serve_inbox(inbox, inbox_port)
    api_key = ids.new_api_key(livemode=False)
    procs = Processes(
        env=env,
        gateway_url=f"http://127.0.0.1:{gateway_ports[0]}",
        sandbox_url=f"http://127.0.0.1:{sandbox_port}",
        api_key=api_key,
        account=None,  # type: ignore[arg-type]
        webhook_secret="",
        inbox=inbox,
        logs=tmp_path,
    )
    try:
        procs.start("sandbox")
        _wait_http(f"{procs.sandbox_url}/sandbox/health")
        procs.account, procs.webhook_secret = asyncio.run(
            _provision(
                postgres_url,
                master_key,
                procs.sandbox_url,
                api_key,
                f"http://127.0.0.1:{inbox_port}/hooks",
            )
        )
        for port in gateway_ports:
            procs.env = env | {"PAYFRONT_GATEWAY_PORT": str(port)}
            procs.start("gateway")
        procs.env = env
        procs.start("worker")
        procs.start("worker")
        for port in gateway_ports:
            _wait_http(f"http://127.0.0.1:{port}/readyz")
        procs.env["GATEWAY_URLS"] = " ".join(f"http://127.0.0.1:{p}" for p in gateway_ports)
        yield procs
    finally:
        procs.stop_all()
        server.shutdown()
        server.server_close()


async def _run(procs: Processes) -> list[str]:
    gateways = procs.env["GATEWAY_URLS"].split()
    auth = {"Authorization": f"Bearer {procs.api_key}"}
    async with httpx.AsyncClient(timeout=30) as http:

        async def one(n: int) -> str:
            here, there = gateways[n % 2], gateways[(n + 1) % 2]
            created = await http.post(
                f"{here}/v1/payments",
                headers=auth,
                json={
                    "amount": 100 + n,
                    "currency": "CNY",
                    "merchant_order_no": f"scale-{n}",
                    "channel": "wechatpay",
                    "method": "native",
                    "description": "Scale-out",
                },
            )
            assert created.status_code == 201, created.text
            payment = created.json()
            # Long-poll on the other gateway: its wake-up comes through Redis pub/sub.
            token = (
                await http.get(f"{there}/v1/tokens/{payment['token']}", params={"wait": 20})
            ).json()
            assert token["status"] == "awaiting_payment", token
            paid = await http.post(
                f"{procs.sandbox_url}/sandbox/wechatpay/orders/{payment['pay_no']}/pay",
                json={"outcome": "success"},
            )
            assert paid.status_code == 200
            return str(payment["pay_no"])

        return list(await asyncio.gather(*(one(n) for n in range(PAYMENTS))))


def test_two_gateways_and_two_workers_share_the_work(cluster: Processes) -> None:
    pay_nos = asyncio.run(_run(cluster))
    deadline = time.monotonic() + 60
    while len({orjson.loads(b)["id"] for _, b in cluster.inbox.received}) < PAYMENTS:
        assert time.monotonic() < deadline, f"{len(cluster.inbox.received)} webhooks so far"
        time.sleep(0.2)
    gateways = cluster.env["GATEWAY_URLS"].split()
    auth = {"Authorization": f"Bearer {cluster.api_key}"}
    for n, pay_no in enumerate(pay_nos):
        payment = httpx.get(f"{gateways[n % 2]}/v1/payments/{pay_no}", headers=auth).json()
        assert payment["status"] == "paid", payment
    events: dict[str, set[str]] = {}
    for headers, body in cluster.inbox.received:
        event = verify_webhook(body, headers["payfront-signature"], cluster.webhook_secret)
        assert event.payment is not None
        events.setdefault(event.payment.pay_no, set()).add(event.id)
    assert sorted(events) == sorted(pay_nos)
    assert all(len(ids_) == 1 for ids_ in events.values())  # one event per payment

    worker_logs = sorted(cluster.logs.glob("worker-*.log"))
    assert len(worker_logs) == 2
    prepaid = [
        sum(
            1
            for line in path.read_text().splitlines()
            if line.startswith("{") and json.loads(line).get("event") == "prepay.ready"
        )
        for path in worker_logs
    ]
    assert sum(prepaid) == PAYMENTS and all(count > 0 for count in prepaid), prepaid
