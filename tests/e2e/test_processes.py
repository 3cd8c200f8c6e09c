"""Real processes: `payfront sandbox`, `payfront gateway` and `payfront worker`, driven
through the merchant SDK, with a merchant webhook endpoint; and a worker killed mid-job."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from core import ids
from core.store.db import Database
from core.store.migrate import upgrade
from core.vault import Vault, new_master_key
from payfront.devsetup import SandboxAccount, provision_wechat_sandbox_account
from sdk import PayfrontClient, verify_webhook
from tests.conftest import free_port

pytestmark = pytest.mark.e2e


@dataclass
class Inbox:
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)


def _serve_inbox(inbox: Inbox, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            inbox.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            inbox.arrived.set()
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class Processes:
    env: dict[str, str]
    gateway_url: str
    sandbox_url: str
    api_key: str
    account: SandboxAccount
    webhook_secret: str
    inbox: Inbox
    logs: Path
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, command: str) -> subprocess.Popen[bytes]:
        with (self.logs / f"{command}-{len(self.children)}.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "payfront", command],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.children[f"{command}-{len(self.children)}"] = process
        return process

    def stop_all(self) -> None:
        for process in self.children.values():
            if process.poll() is None:
                process.terminate()
        for process in self.children.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_http(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


async def _provision(url: str, master_key: str, sandbox_url: str, api_key: str, hook: str):
    from core.merchants import add_webhook_endpoint

    await upgrade(url)
    db = Database(url)
    vault = Vault(master_key)
    try:
        account = await provision_wechat_sandbox_account(
            db,
            vault,
            sandbox_url=sandbox_url,
            merchant_id="mch_e2e",
            merchant_name="E2E shop",
            api_key=api_key,
            account_id="wx_e2e",
        )
        _, secret = await add_webhook_endpoint(db, vault, merchant_id="mch_e2e", url=hook)
    finally:
        await db.dispose()
    return account, secret


@pytest.fixture
def processes(tmp_path: Path, redis_url: str) -> Iterator[Processes]:
    gateway_port, sandbox_port, inbox_port = free_port(), free_port(), free_port()
    master_key = new_master_key()
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'payfront.db'}"
    env = {
        **os.environ,
        # A test-mode merchant: its data is in the shadow database.
        "PAYFRONT_TEST_DATABASE_URL": database_url,
        "PAYFRONT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'live.db'}",
        "PAYFRONT_WORKER_MODES": "test",
        "PAYFRONT_REDIS_URL": redis_url,
        "PAYFRONT_QUEUE_NAME": f"payfront:e2e:{uuid.uuid4().hex[:8]}",
        "PAYFRONT_MASTER_KEY": master_key,
        "PAYFRONT_GATEWAY_PORT": str(gateway_port),
        "PAYFRONT_PUBLIC_BASE_URL": f"http://127.0.0.1:{gateway_port}",
        "PAYFRONT_SANDBOX_PORT": str(sandbox_port),
        "PAYFRONT_SANDBOX_STATE_DIR": str(tmp_path / "sandbox"),
        "PAYFRONT_SANDBOX_TIME_SCALE": "0.01",
        "PAYFRONT_JOB_TIMEOUT_S": "2",
        "PAYFRONT_CHANNEL_TIMEOUT_S": "1.5",
        "PAYFRONT_SWEEP_INTERVAL_S": "1",
        "PAYFRONT_SWEEP_GRACE_S": "1",
        "PAYFRONT_LOG_FORMAT": "json",
        "PAYFRONT_WORKER_METRICS_PORT": str(free_port()),
    }
    inbox = Inbox()
    server = _serve_inbox(inbox, inbox_port)
    api_key = ids.new_api_key(livemode=False)
    procs = Processes(
        env=env,
        gateway_url=f"http://127.0.0.1:{gateway_port}",
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
                database_url,
                master_key,
                procs.sandbox_url,
                api_key,
                f"http://127.0.0.1:{inbox_port}/hooks",
            )
        )
        procs.start("gateway")
        procs.start("worker")
        _wait_http(f"{procs.gateway_url}/readyz")
        yield procs
    finally:
        procs.stop_all()
        server.shutdown()
        server.server_close()


def test_sdk_pays_through_real_processes_and_gets_a_signed_webhook(processes: Processes) -> None:
    with PayfrontClient(processes.api_key, base_url=processes.gateway_url) as client:
        started = time.monotonic()
        payment = client.create_payment(
            amount=2500, currency="CNY", merchant_order_no="e2e-1", description="Green tea"
        )
        assert payment.status == "pending"
        token = client.wait_for_credential(payment.token, timeout=10)
        credential_after = time.monotonic() - started
        assert token.status == "awaiting_payment"
        assert token.credential is not None
        assert token.credential.code_url is not None
        assert token.credential.code_url.startswith("weixin://wxpay/bizpayurl?pr=")
        print(f"credential ready {credential_after * 1000:.0f} ms after the create call")
        paid = httpx.post(
            f"{processes.sandbox_url}/sandbox/wechatpay/orders/{payment.pay_no}/pay",
            json={"outcome": "success"},
        )
        assert paid.status_code == 200, paid.text
        assert processes.inbox.arrived.wait(15), "no webhook arrived"
        headers, body = processes.inbox.received[0]
        event = verify_webhook(body, headers["payfront-signature"], processes.webhook_secret)
        assert event.type == "payment.succeeded"
        assert event.payment is not None
        assert event.payment.pay_no == payment.pay_no and event.payment.amount == 2500
        assert client.get_payment(payment.pay_no).status == "paid"
    worker_metrics = httpx.get(
        f"http://127.0.0.1:{processes.env['PAYFRONT_WORKER_METRICS_PORT']}/metrics"
    ).text
    assert 'payfront_jobs_total{function="prepay",outcome="ok"} 1.0' in worker_metrics
    assert 'payfront_jobs_total{function="deliver",outcome="ok"} 1.0' in worker_metrics


def test_a_worker_killed_mid_job_is_replaced_and_the_payment_completes(
    processes: Processes,
) -> None:
    mchid = processes.account.keys.mchid
    httpx.put(
        f"{processes.sandbox_url}/sandbox/wechatpay/faults/{mchid}", json={"latency_ms": 1000}
    ).raise_for_status()
    worker = next(p for name, p in processes.children.items() if name.startswith("worker"))
    with PayfrontClient(processes.api_key, base_url=processes.gateway_url) as client:
        payment = client.create_payment(
            amount=300, currency="CNY", merchant_order_no="e2e-kill", description="Oolong"
        )
        deadline = time.monotonic() + 10
        while client.get_payment(payment.pay_no).status != "prepaying":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(0.2)  # the create call is in flight at the sandbox
        worker.send_signal(signal.SIGKILL)
        worker.wait(5)
        httpx.delete(f"{processes.sandbox_url}/sandbox/wechatpay/faults/{mchid}")
        processes.start("worker")
        # arq re-runs the job once the dead worker's in-progress mark expires.
        token = client.wait_for_credential(payment.token, timeout=40)
        assert token.status == "awaiting_payment"
        assert token.credential is not None
        at_channel = httpx.get(
            f"{processes.sandbox_url}/sandbox/wechatpay/orders/{payment.pay_no}"
        ).json()
        assert at_channel["credential"]["code_url"] == token.credential.code_url
    # The replacement worker finished the job as a re-run (which queries before creating).
    replacement_log = sorted(processes.logs.glob("worker-*.log"))[-1].read_text()
    records = [json.loads(line) for line in replacement_log.splitlines() if line.startswith("{")]
    ready = [r for r in records if r["event"] == "prepay.ready"]
    assert [r["job_try"] for r in ready] == [2]


def test_the_readme_quickstart_example_runs_as_written(
    processes: Processes, tmp_path: Path
) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "quickstart.py"
    env = {
        **processes.env,
        "PAYFRONT_URL": processes.gateway_url,
        "PAYFRONT_SANDBOX_URL": processes.sandbox_url,
        "PAYFRONT_API_KEY": processes.api_key,
        "QUICKSTART_WEBHOOK_PORT": str(free_port()),
        "QUICKSTART_STATE": str(tmp_path / "quickstart.json"),
    }
    for run in range(2):  # the second run reuses the saved endpoint secret
        done = subprocess.run(
            [sys.executable, str(example)], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "code_url weixin://wxpay/bizpayurl?pr=" in done.stdout, run
        assert "webhook payment.succeeded verified" in done.stdout, run


def _log_records(processes: Processes) -> list[tuple[str, dict[str, object]]]:
    records = []
    for path in sorted(processes.logs.glob("*.log")):
        for line in path.read_text().splitlines():
            if line.startswith("{"):
                records.append((path.name, json.loads(line)))
    return records


def test_one_trace_id_in_every_log_line_of_a_payment_and_no_secret_in_any(
    processes: Processes,
) -> None:
    trace = "0af7651916cd43dd8448eb211c80319c"
    created = httpx.post(
        f"{processes.gateway_url}/v1/payments",
        json={
            "amount": 990,
            "currency": "CNY",
            "merchant_order_no": "e2e-trace",
            "channel": "wechatpay",
            "method": "native",
            "description": "Pu-erh",
        },
        headers={
            "Authorization": f"Bearer {processes.api_key}",
            "traceparent": f"00-{trace}-b7ad6b7169203331-01",
        },
    )
    assert created.status_code == 201, created.text
    pay_no = created.json()["pay_no"]
    token = httpx.get(
        f"{processes.gateway_url}/v1/tokens/{created.json()['token']}", params={"wait": 10}
    ).json()
    assert token["status"] == "awaiting_payment"
    httpx.post(
        f"{processes.sandbox_url}/sandbox/wechatpay/orders/{pay_no}/pay",
        json={"outcome": "success"},
    ).raise_for_status()
    assert processes.inbox.arrived.wait(15)
    headers, _ = processes.inbox.received[0]
    assert headers["traceparent"].split("-")[1] == trace
    time.sleep(0.5)  # let the last log lines be written

    records = _log_records(processes)
    about_payment = [(name, r) for name, r in records if r.get("pay_no") == pay_no]
    sources = {name.split("-")[0] for name, _ in about_payment}
    assert {"gateway", "worker"} <= sources
    events = {str(r["event"]) for _, r in about_payment}
    assert {"prepay.ready", "callback.applied"} <= events
    assert all(r.get("trace_id") == trace for _, r in about_payment), [
        r for _, r in about_payment if r.get("trace_id") != trace
    ]
    webhook_lines = [r for _, r in records if r.get("event") == "webhook.attempt"]
    assert webhook_lines and all(r.get("trace_id") == trace for r in webhook_lines)

    keys = processes.account.keys
    secrets = [
        processes.api_key,
        processes.webhook_secret,
        keys.apiv3_key,
        keys.private_key_pem.splitlines()[1],  # a line of the merchant's private key
        processes.env["PAYFRONT_MASTER_KEY"],
    ]
    everything = "".join(path.read_text() for path in processes.logs.glob("*.log"))
    for secret in secrets:
        assert secret not in everything
