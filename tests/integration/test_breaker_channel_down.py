"""A channel going down never slows the token path: WeChat Pay's sandbox starts failing, the
circuit of its account opens after N failures, routed payments fall back to Alipay (or are
refused fast when nothing else can take them), and after the cool-down a probe succeeds and
the circuit closes."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import httpx
import pytest

from core import breaker
from core.breaker import BreakerConfig, CircuitState
from core.merchants import MerchantAuth
from core.payments import NewPayment, create_payment
from payfront.devsetup_alipay import provision_alipay_sandbox_account
from tests.conftest import Stack
from workers.queue import Queues, enqueue_prepay

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
COOLDOWN_S = 5.0
WECHAT_THEN_ALIPAY = [
    {"priority": 10, "channel_account_id": "wx_test", "method": "native"},
    {"priority": 20, "channel_account_id": "ali_test", "method": "qr"},
]


@pytest.fixture
def stack_overrides() -> dict[str, Any]:
    return {
        "breaker_failure_threshold": 3,
        "breaker_cooldown_s": COOLDOWN_S,
        "breaker_refresh_s": 0.05,
    }


async def put_rules(stack: Stack, rules: list[dict[str, Any]]) -> None:
    answer = await stack.http.put(
        f"{stack.gateway_url}/v1/routing_rules", json={"rules": rules}, headers=stack.auth()
    )
    assert answer.status_code == 200, answer.text


async def create_routed(stack: Stack) -> tuple[float, httpx.Response]:
    body = stack.payment_body()
    del body["channel"], body["method"]
    started = time.perf_counter()
    answer = await stack.http.post(
        f"{stack.gateway_url}/v1/payments", json=body, headers=stack.auth()
    )
    return time.perf_counter() - started, answer


async def timed(stack: Stack, count: int) -> tuple[list[float], list[dict[str, Any]]]:
    latencies, payments = [], []
    for _ in range(count):
        seconds, answer = await create_routed(stack)
        assert answer.status_code == 201, answer.text
        latencies.append(seconds)
        payments.append(answer.json())
    return latencies, payments


def p99(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100, method="inclusive")[98]


async def circuit(stack: Stack) -> CircuitState:
    states = await breaker.read_states(stack.redis, BreakerConfig.of(stack.settings))
    return states["wx_test"].state if "wx_test" in states else CircuitState.CLOSED


@SQLITE_ONLY
async def test_channel_down_opens_the_circuit_falls_back_and_recovers(stack: Stack) -> None:
    await provision_alipay_sandbox_account(
        stack.db,
        stack.vault,
        sandbox_url=stack.sandbox_url,
        merchant_id="mch_test",
        account_id="ali_test",
    )
    await put_rules(stack, WECHAT_THEN_ALIPAY)
    await timed(stack, 5)  # warm-up: caches, connections
    healthy, payments = await timed(stack, 50)
    assert {p["channel"] for p in payments} == {"wechatpay"}

    # WeChat Pay fails every call, after a second: were the token path to wait on the
    # channel, every request would take that second.
    await stack.set_faults(error_rate=1.0, latency_ms=1000)
    failing: list[float] = []
    async with asyncio.timeout(20):
        while True:
            seconds, answer = await create_routed(stack)
            assert answer.status_code == 201, answer.text
            failing.append(seconds)
            if answer.json()["channel"] == "alipay":
                break
            await asyncio.sleep(0.05)
    assert await circuit(stack) is CircuitState.OPEN
    down, payments = await timed(stack, 50)
    assert {p["channel"] for p in payments} == {"alipay"}
    print(  # the numbers for the record (pytest -s)
        f"\ntoken latency p50/p99 ms: healthy {statistics.median(healthy) * 1000:.1f}/"
        f"{p99(healthy) * 1000:.1f}, channel down (fallback) {statistics.median(down) * 1000:.1f}/"
        f"{p99(down) * 1000:.1f}, while failing max {max(failing) * 1000:.1f} "
        f"over {len(failing)} requests"
    )
    # Generous: the in-process worker and sandbox share the gateway's event loop, and other
    # work shares the machine; a token path coupled to the channel would be ~1 s each.
    assert statistics.median(down) < 3 * statistics.median(healthy) + 0.05
    bound = 3 * p99(healthy) + 0.3
    assert p99(down) < bound
    assert max(failing) < bound
    # Fallback payments get their credential from Alipay as usual.
    token = await stack.token(payments[-1]["token"], wait=5)
    assert token["status"] == "awaiting_payment" and token["credential"]["type"] == "alipay_qr"

    # Naming the failing channel, or leaving nothing to fall back to: refused at once.
    started = time.perf_counter()
    named = await stack.create_payment()
    assert named.status_code == 503, named.text
    assert named.json()["error"]["code"] == "channel_unavailable"
    assert named.json()["error"]["type"] == "service_unavailable_error"
    await put_rules(stack, WECHAT_THEN_ALIPAY[:1])
    _, routed = await create_routed(stack)
    assert routed.status_code == 503 and routed.json()["error"]["code"] == "channel_unavailable"
    assert time.perf_counter() - started < bound * 3
    # A payment that reaches a worker while its account is open (the gateway's view lags by
    # up to a refresh) fails at once, without a call to the channel.
    late = await create_payment(
        stack.db,
        MerchantAuth("mch_test", livemode=False),
        NewPayment(100, "CNY", "late-1", "wechatpay", "native", "tea", 900),
        claim=None,
        channel_account_id="wx_test",
    )
    await enqueue_prepay(stack.redis, Queues.of(stack.settings), late.pay_no)
    failed = await stack.wait_status(late.pay_no, "prepay_failed")
    assert failed["failure"]["code"] == "CHANNEL_UNAVAILABLE"
    with pytest.raises(httpx.HTTPStatusError):
        await stack.sandbox_order(late.pay_no)  # never sent
    metrics = (await stack.http.get(f"{stack.gateway_url}/metrics")).text
    assert 'payfront_circuit_state{account="wx_test"} 2.0' in metrics
    assert 'payfront_circuit_transitions_total{account="wx_test",from_state="closed"' in metrics

    # WeChat Pay recovers; after the cool-down a probe goes through and closes the circuit.
    await stack.set_faults()
    await put_rules(stack, WECHAT_THEN_ALIPAY)
    await asyncio.sleep(COOLDOWN_S)
    async with asyncio.timeout(15):
        while await circuit(stack) is not CircuitState.CLOSED:
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.1)  # the gateway's view catches up
    _, after = await create_routed(stack)
    assert after.status_code == 201 and after.json()["channel"] == "wechatpay"
    token = await stack.token(after.json()["token"], wait=5)
    assert token["status"] == "awaiting_payment", token
    metrics = (await stack.http.get(f"{stack.gateway_url}/metrics")).text
    assert 'from_state="half_open",to_state="closed"' in metrics
