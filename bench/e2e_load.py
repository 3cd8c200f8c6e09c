"""The end-to-end load generator: closed-loop shoppers, each asking for a payment and waiting
until its credential is there, then asking for the next. In its own process (asyncio streams
on uvloop, one keep-alive HTTP/1.1 connection per shopper); prints a ``PROGRESS`` JSON line
every second and one ``PAYFRONT_BENCH_RESULT`` JSON line at the end.

``--mode payfront``: ``POST /v1/payments`` (the token, at once) then ``GET /v1/tokens/{token}
?wait=…`` long-polls until the payment leaves pending/prepaying; done when it is
``awaiting_payment`` (the credential is in the answer). ``--mode merchant``: one ``POST /pay``
to the baseline merchant server (``bench.e2e_merchant``), which answers with the credential.
Either way a payment's latency runs from its first request to the credential.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson
import uvloop

from bench.loadgen import RESULT_MARK

PROGRESS_MARK = "PROGRESS "
WAITING = frozenset({"pending", "prepaying"})


class Failed(Exception):
    """A payment that ended without a credential (the reason is counted)."""


@dataclass
class Tally:
    window_start: float
    window_end: float
    latencies_s: list[float] = field(default_factory=list)  # done inside the window
    outcomes: Counter[str] = field(default_factory=Counter)  # inside the window
    done_total: int = 0
    in_flight: int = 0
    failed_total: int = 0
    polls: int = 0  # token GETs answered (payfront mode), inside the window

    def finish(self, started: float, ended: float, outcome: str) -> None:
        self.in_flight -= 1
        if self.window_start <= ended < self.window_end:
            self.outcomes[outcome] += 1
            if outcome == "ok":
                self.latencies_s.append(ended - started)
        if outcome == "ok":
            self.done_total += 1
        else:
            self.failed_total += 1


@dataclass(frozen=True, slots=True)
class Target:
    mode: str
    host: str
    port: int
    api_key: str
    order_prefix: str
    wait_s: float

    @classmethod
    def of(cls, url: str, **values: Any) -> Target:
        parts = urlsplit(url)
        return cls(host=parts.hostname or "127.0.0.1", port=parts.port or 80, **values)

    def create(self, order_no: str) -> bytes:
        if self.mode == "payfront":
            body = (
                b'{"amount":100,"currency":"CNY","merchant_order_no":"'
                + order_no.encode()
                + b'","channel":"wechatpay","method":"native","description":"A cup of tea"}'
            )
            path, auth = "/v1/payments", f"Authorization: Bearer {self.api_key}\r\n"
        else:
            body = b'{"amount":100,"out_trade_no":"' + order_no.encode() + b'"}'
            path, auth = "/pay", ""
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{auth}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    def poll(self, token: str) -> bytes:
        return (
            f"GET /v1/tokens/{token}?wait={self.wait_s:g} HTTP/1.1\r\n"
            f"Host: {self.host}:{self.port}\r\n\r\n"
        ).encode()


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return status, body


async def _payment(
    target: Target,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    order_no: str,
    tally: Tally,
) -> None:
    """One payment from request to credential; raises ``Failed`` with the reason."""
    status, body = await _exchange(reader, writer, target.create(order_no))
    if status not in (200, 201):
        raise Failed(f"create {status}")
    answer: dict[str, Any] = orjson.loads(body)
    if target.mode == "merchant":
        if not answer.get("code_url"):
            raise Failed("no code_url")
        return
    token, state = answer["token"], answer["status"]
    while state in WAITING:
        status, body = await _exchange(reader, writer, target.poll(token))
        if status != 200:
            raise Failed(f"token {status}")
        if tally.window_start <= time.perf_counter() < tally.window_end:
            tally.polls += 1
        answer = orjson.loads(body)
        state = answer["status"]
    if state != "awaiting_payment" or not answer.get("credential"):
        raise Failed(f"ended {state}")


async def _shopper(
    target: Target, shopper: int, stop_at: float, timeout_s: float, tally: Tally
) -> None:
    """One shopper after another on one connection (a new one after a failure)."""
    sequence = 0
    while time.perf_counter() < stop_at:
        try:
            reader, writer = await asyncio.open_connection(target.host, target.port, limit=2**20)
        except OSError:
            tally.outcomes["connect error"] += 1
            await asyncio.sleep(0.05)
            continue
        try:
            while time.perf_counter() < stop_at:
                sequence += 1
                started = time.perf_counter()
                tally.in_flight += 1
                try:
                    async with asyncio.timeout(timeout_s):
                        await _payment(
                            target,
                            reader,
                            writer,
                            f"{target.order_prefix}-{shopper}-{sequence}",
                            tally,
                        )
                except Failed as exc:
                    tally.finish(started, time.perf_counter(), str(exc))
                    continue
                tally.finish(started, time.perf_counter(), "ok")
        except TimeoutError:
            tally.finish(started, time.perf_counter(), "timeout")
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            tally.finish(started, time.perf_counter(), "connection error")
        finally:
            writer.close()


def _percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


async def _progress(tally: Tally, began: float, stop_at: float) -> None:
    last_done, last_at = 0, began
    while True:
        await asyncio.sleep(1.0)
        now = time.perf_counter()
        done = tally.done_total
        phase = "warm-up" if now < tally.window_start else "measuring"
        if now >= stop_at:
            phase = "stopping"
        line = {
            "t": round(now - began, 1),
            "phase": phase,
            "per_s": round((done - last_done) / (now - last_at), 1),
            "in_flight": tally.in_flight,
            "failed": tally.failed_total,
        }
        print(PROGRESS_MARK + orjson.dumps(line).decode(), flush=True)
        last_done, last_at = done, now


async def run(
    targets: list[Target], shoppers: int, warmup_s: float, duration_s: float, timeout_s: float
) -> dict[str, Any]:
    """``shoppers`` closed loops, spread round-robin over ``targets`` (several merchant server
    processes each get the same share of the load; SO_REUSEPORT's hashing did not)."""
    began = time.perf_counter()
    tally = Tally(window_start=began + warmup_s, window_end=began + warmup_s + duration_s)
    progress = asyncio.create_task(_progress(tally, began, tally.window_end))
    workers = [
        asyncio.create_task(
            _shopper(targets[n % len(targets)], n + 1, tally.window_end, timeout_s, tally)
        )
        for n in range(shoppers)
    ]
    # Shoppers still waiting when the window closes do not count; give them a moment to
    # finish (so the system is not left with half-done work), then stop them.
    await asyncio.wait(workers, timeout=warmup_s + duration_s + min(timeout_s, 5.0))
    for worker in workers:
        worker.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    progress.cancel()
    ordered = sorted(tally.latencies_s)
    ok = tally.outcomes["ok"]
    return {
        "mode": targets[0].mode,
        "targets": [f"{target.host}:{target.port}" for target in targets],
        "shoppers": shoppers,
        "warmup_s": warmup_s,
        "duration_s": duration_s,
        "completed": ok,
        "per_s": ok / duration_s,
        "outcomes": dict(tally.outcomes),
        "token_polls": tally.polls,
        "latency_ms": {
            name: _percentile(ordered, fraction) * 1000
            for name, fraction in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999))
        }
        | {"mean": (sum(ordered) / len(ordered) * 1000) if ordered else 0.0},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=("payfront", "merchant"), required=True)
    parser.add_argument(
        "--url", required=True, help="base URL of the gateway or merchant(s), comma-separated"
    )
    parser.add_argument("--api-key", default="")
    parser.add_argument("--shoppers", type=int, required=True)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--timeout", type=float, default=30.0, help="per payment")
    parser.add_argument("--wait", type=float, default=10.0, help="token long-poll seconds")
    parser.add_argument("--order-prefix", required=True)
    args = parser.parse_args()
    targets = [
        Target.of(
            url,
            mode=args.mode,
            api_key=args.api_key,
            order_prefix=args.order_prefix,
            wait_s=args.wait,
        )
        for url in args.url.split(",")
    ]
    uvloop.install()
    summary = asyncio.run(run(targets, args.shoppers, args.warmup, args.duration, args.timeout))
    print(RESULT_MARK + orjson.dumps(summary).decode(), flush=True)


if __name__ == "__main__":
    main()
