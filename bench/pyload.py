"""The fallback load generator (when wrk is missing): closed-loop ``POST /v1/payments`` over
raw HTTP/1.1 keep-alive connections, asyncio streams on uvloop, in its own process. Prints
one ``PAYFRONT_BENCH_RESULT`` JSON line in the same shape as ``wrk_payments.lua``."""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import orjson
import uvloop

from bench.loadgen import RESULT_MARK


@dataclass
class Tally:
    latencies_us: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    socket_errors: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class Target:
    host: str
    port: int
    path: str
    api_key: str
    order_prefix: str
    idempotency_keys: bool

    def request(self, connection_id: int, sequence: int) -> bytes:
        order_no = f"{self.order_prefix}-{connection_id}-{sequence}"
        body = (
            b'{"amount":100,"currency":"CNY","merchant_order_no":"'
            + order_no.encode()
            + b'","channel":"wechatpay","method":"native","description":"A cup of tea"}'
        )
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nAuthorization: Bearer {self.api_key}\r\n"
            f"Content-Length: {len(body)}\r\n"
        )
        if self.idempotency_keys:
            head += f"Idempotency-Key: {order_no}\r\n"
        return head.encode() + b"\r\n" + body


async def _answer(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def _connection(
    target: Target, connection_id: int, stop_at: float, timeout_s: float, tally: Tally
) -> None:
    sequence = 0
    while time.perf_counter() < stop_at:
        try:
            reader, writer = await asyncio.open_connection(target.host, target.port)
        except OSError:
            tally.socket_errors["connect"] += 1
            await asyncio.sleep(0.05)
            continue
        try:
            while time.perf_counter() < stop_at:
                sequence += 1
                started = time.perf_counter()
                writer.write(target.request(connection_id, sequence))
                async with asyncio.timeout(timeout_s):
                    status = await _answer(reader)
                tally.latencies_us.append((time.perf_counter() - started) * 1e6)
                tally.statuses[status] += 1
        except TimeoutError:
            tally.socket_errors["timeout"] += 1
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            tally.socket_errors["read"] += 1
        finally:
            writer.close()


def _percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


async def run(target: Target, connections: int, duration_s: float, timeout_s: float) -> str:
    tally = Tally()
    started = time.perf_counter()
    stop_at = started + duration_s
    await asyncio.gather(
        *(_connection(target, n + 1, stop_at, timeout_s, tally) for n in range(connections))
    )
    elapsed = time.perf_counter() - started
    ordered = sorted(tally.latencies_us)
    summary = {
        "requests": len(ordered),
        "duration_us": int(elapsed * 1e6),
        "statuses": {str(status): n for status, n in tally.statuses.items()},
        "socket_errors": {
            kind: tally.socket_errors[kind] for kind in ("connect", "read", "write", "timeout")
        },
        "latency_us": {
            "p50": _percentile(ordered, 0.50),
            "p99": _percentile(ordered, 0.99),
            "p999": _percentile(ordered, 0.999),
            "mean": sum(ordered) / len(ordered) if ordered else 0.0,
            "max": ordered[-1] if ordered else 0.0,
        },
    }
    return RESULT_MARK + orjson.dumps(summary).decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--order-prefix", required=True)
    parser.add_argument("--idempotency-keys", action="store_true")
    args = parser.parse_args()
    url = urlsplit(args.url)
    target = Target(
        host=url.hostname or "127.0.0.1",
        port=url.port or 80,
        path=url.path or "/",
        api_key=args.api_key,
        order_prefix=args.order_prefix,
        idempotency_keys=args.idempotency_keys,
    )
    uvloop.install()
    print(asyncio.run(run(target, args.connections, args.duration, args.timeout)), flush=True)


if __name__ == "__main__":
    main()
