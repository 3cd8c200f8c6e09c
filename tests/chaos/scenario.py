"""What happens during a chaos run: shoppers (one per payment, planned from a seed) and the
agents of chaos — fault phases at the sandbox, SIGKILLed workers, a Redis loss."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from redis.asyncio import Redis

from core.store.db import Database
from core.store.tables import pay_orders
from tests.chaos.harness import ChaosSize, Processes

# What each shopper does once the order awaits payment, and how often.
KINDS: tuple[tuple[str, float], ...] = (
    ("pay", 0.70),  # pays once
    ("pay_twice", 0.12),  # pays, then the channel is asked to notify again (again: true)
    ("never", 0.12),  # never pays: the order expires and is closed at the channel, then here
    ("race", 0.06),  # pays just as the order expires: paid or closed, as the channel decides
)
WAITING = ("pending", "prepaying")


@dataclass
class Shopper:
    """One payment's plan (drawn from the seed) and what happened to it."""

    index: int
    kind: str
    amount: int
    start_s: float
    think_s: float
    pay_no: str | None = None
    token_status: str | None = None
    pay_answers: list[int] = field(default_factory=list)
    error: str | None = None


def plan_shoppers(rng: random.Random, size: ChaosSize) -> list[Shopper]:
    kinds, weights = zip(*KINDS, strict=True)
    return [
        Shopper(
            index=index,
            kind=rng.choices(kinds, weights)[0],
            amount=rng.randint(1, 99_999),
            start_s=index / size.arrivals_per_s,
            think_s=rng.uniform(0, 0.8),
        )
        for index in range(size.payments)
    ]


def fault_plan(rng: random.Random, phase: int) -> dict[str, Any]:
    """The sandbox's fault plan for one phase; the first has every fault on at once."""
    if phase == 0:
        return {
            "latency_ms": 50,
            "error_rate": 0.1,
            "timeout_rate": 0.05,
            "frequency_limit_rate": 0.05,
            "duplicate_callbacks": True,
            "lose_callbacks": 0.2,
        }
    return {
        "latency_ms": rng.choice([0, 20, 50, 120]),
        "error_rate": rng.choice([0.0, 0.05, 0.15]),
        "timeout_rate": rng.choice([0.0, 0.03, 0.08]),
        "frequency_limit_rate": rng.choice([0.0, 0.05, 0.1]),
        "duplicate_callbacks": rng.random() < 0.5,
        "lose_callbacks": rng.choice([0.0, 0.1, 0.3]),
    }


@dataclass
class Run:
    """Everything the shoppers and agents share."""

    procs: Processes
    http: httpx.AsyncClient
    db: Database
    api_key: str
    mchid: str
    run_id: str
    started: float
    size: ChaosSize
    chaos_over: asyncio.Event = field(default_factory=asyncio.Event)
    fault_phases: list[dict[str, Any]] = field(default_factory=list)
    redis_keys_lost: int = 0
    redis_lost_at_s: float | None = None

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    async def pay(self, pay_no: str, *, again: bool = False) -> int:
        answer = await self.http.post(
            f"{self.procs.sandbox_url}/sandbox/wechatpay/orders/{pay_no}/pay",
            json={"mchid": self.mchid, "outcome": "success", "again": again},
        )
        return answer.status_code

    async def expire(self, pay_no: str) -> None:
        """Move the order's expiry into the past, as if its 15 minutes had gone by."""
        async with self.db.begin() as conn:
            await conn.execute(
                pay_orders.update()
                .where(pay_orders.c.pay_no == pay_no)
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )


# -- shoppers ---------------------------------------------------------------------------------


async def _create(run: Run, shopper: Shopper, deadline: float) -> dict[str, Any]:
    body = {
        "amount": shopper.amount,
        "currency": "CNY",
        "merchant_order_no": f"chaos-{run.run_id}-{shopper.index}",
        "channel": "wechatpay",
        "method": "native",
        "description": f"Chaos tea #{shopper.index}",
    }
    headers = {
        "Authorization": f"Bearer {run.api_key}",
        "Idempotency-Key": f"chaos-{run.run_id}-{shopper.index}",
    }
    while True:
        last = ""
        try:
            answer = await run.http.post(
                f"{run.procs.gateway_url}/v1/payments", json=body, headers=headers
            )
            if answer.status_code == 201:
                return dict(answer.json())
            last = f"{answer.status_code} {answer.text[:200]}"
            # In flight (409), rate-limited (429), database busy (503): retry, same key.
            if answer.status_code not in (409, 429, 503):
                raise AssertionError(f"create refused: {last}")
        except httpx.HTTPError as exc:
            last = repr(exc)
        if time.monotonic() > deadline:
            raise AssertionError(f"create never answered 201: {last}")
        await asyncio.sleep(0.2)


async def _wait_credential(run: Run, token: str, deadline: float) -> str:
    status = "unknown"
    while time.monotonic() < deadline:
        try:
            answer = await run.http.get(
                f"{run.procs.gateway_url}/v1/tokens/{token}", params={"wait": 5}
            )
            status = str(answer.json()["status"])
            if status not in WAITING:
                return status
        except (httpx.HTTPError, ValueError, KeyError):
            await asyncio.sleep(0.2)
    return f"gave up waiting ({status})"


async def _play(run: Run, shopper: Shopper, deadline: float) -> None:
    await asyncio.sleep(max(0.0, shopper.start_s - run.elapsed()))
    payment = await _create(run, shopper, deadline)
    shopper.pay_no = payment["pay_no"]
    shopper.token_status = await _wait_credential(run, payment["token"], deadline)
    if shopper.token_status != "awaiting_payment":
        return
    await asyncio.sleep(shopper.think_s)  # the shopper scans the QR code
    pay_no = payment["pay_no"]
    if shopper.kind == "pay":
        shopper.pay_answers.append(await run.pay(pay_no))
    elif shopper.kind == "pay_twice":
        shopper.pay_answers.append(await run.pay(pay_no))
        await asyncio.sleep(0.3)
        shopper.pay_answers.append(await run.pay(pay_no, again=True))
    elif shopper.kind == "never":
        await run.expire(pay_no)
    elif shopper.kind == "race":
        _, answer = await asyncio.gather(run.expire(pay_no), run.pay(pay_no))
        shopper.pay_answers.append(answer)


async def play(run: Run, shopper: Shopper, deadline: float) -> None:
    """One shopper, start to end; a harness failure is recorded, not raised."""
    try:
        await _play(run, shopper, deadline)
    except Exception as exc:
        shopper.error = f"{type(exc).__name__}: {exc}"


# -- agents of chaos --------------------------------------------------------------------------


async def _until_over(run: Run, seconds: float) -> bool:
    """Sleep ``seconds`` or until the chaos is over; whether it is over."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run.chaos_over.wait(), timeout=seconds)
    return run.chaos_over.is_set()


async def change_faults(run: Run, rng: random.Random, phase_s: float = 3.0) -> None:
    faults_url = f"{run.procs.sandbox_url}/sandbox/wechatpay/faults/{run.mchid}"
    phase = 0
    while True:
        plan = fault_plan(rng, phase)
        (await run.http.put(faults_url, json=plan)).raise_for_status()
        run.fault_phases.append(plan)
        phase += 1
        if await _until_over(run, phase_s):
            break
    (await run.http.delete(faults_url)).raise_for_status()


async def kill_workers(run: Run, rng: random.Random) -> None:
    """SIGKILL one of the two workers now and then; restart it a moment later."""
    while not await _until_over(run, rng.uniform(*run.size.kill_every_s)):
        slot = rng.choice(sorted(run.procs.workers))
        await asyncio.to_thread(run.procs.kill_worker, slot)
        await asyncio.sleep(rng.uniform(0.2, 1.5))
        run.procs.start_worker(slot)


# Deletes every key matching ARGV[1] in one atomic step, as FLUSHDB does to a whole database.
_FORGET_ALL = """
local keys = redis.call('KEYS', ARGV[1])
for i = 1, #keys, 500 do
  redis.call('DEL', unpack(keys, i, math.min(i + 499, #keys)))
end
return #keys
"""


async def lose_redis(run: Run, redis: Redis, prefix: str, at_s: float, *, atomic: bool) -> None:
    """Once, mid-run: delete every key of this run. ``atomic`` does it in one step, as a
    FLUSHDB would; otherwise key by key while the processes keep writing (a partial loss)."""
    if await _until_over(run, at_s):
        return
    run.redis_lost_at_s = run.elapsed()
    if atomic:
        run.redis_keys_lost = int(await redis.eval(_FORGET_ALL, 0, f"*{prefix}*"))
        return
    async for key in redis.scan_iter(match=f"*{prefix}*", count=100):
        run.redis_keys_lost += await redis.delete(key)
        await asyncio.sleep(0)
