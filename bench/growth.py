"""Issue 7, point 5: token latency with 10k, 100k and 1M orders already stored, against the
same gateway on the same (then empty) database measured first in the same run.

Per database: a gateway on a scratch database is measured empty, then orders are bulk-loaded
(``bench.seed``: trade order, pay order, outbox row and idempotency record per order, all of
ONE merchant, so its unique (merchant_id, merchant_order_no) index grows) up to each size, and
the token path is measured again with an Idempotency-Key per request (the lookup the SDK's
requests cause). The query plans of the token path's lookups are printed at the largest size."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from bench.loadgen import LoadResult, LoadRunner, LoadSpec, choose_generator
from bench.machine import process_cpu_seconds
from bench.report import say, write_json
from bench.scenario import Scenario
from bench.seed import SeedSpec, analyze, count_orders, seed_orders
from bench.session import saved, scratch_dir, usable_databases
from bench.stack import (
    ACCOUNT_ID,
    MERCHANT_ID,
    ROOT,
    GatewayStack,
    bench_redis,
    gateway_stack,
    scratch_database,
)

FLAT_RATIO = 1.25  # p99 at the largest size ÷ p99 empty, allowing for a shared machine's noise

# The token path's lookups that could grow with the tables (each also an index probe inside
# the INSERTs: the unique (merchant_id, merchant_order_no), the pay order's unique token).
PLANS = {
    "idempotency lookup": "SELECT * FROM idempotency_keys WHERE merchant_id = '{m}' AND key = 'x'",
    "merchant order uniqueness (the INSERT's probe, and the 409 lookup)": (
        "SELECT trade_no FROM trade_orders WHERE merchant_id = '{m}' AND merchant_order_no = 'x'"
    ),
    "channel account of the merchant": (
        "SELECT id FROM channel_accounts WHERE merchant_id = '{m}' AND channel = 'wechatpay' "
        "AND enabled ORDER BY created_at LIMIT 1"
    ),
    "outbox uniqueness (kind, ref)": "SELECT id FROM outbox WHERE kind = 'prepay' AND ref = 'x'",
    "pay order by token (shopper's page)": "SELECT pay_no FROM pay_orders WHERE token = 'x'",
}


@dataclass(frozen=True, slots=True)
class GrowthOptions:
    databases: tuple[str, ...]
    sizes: tuple[int, ...]
    connections: int
    duration_s: int
    warmup_s: int
    generator: str
    pin: bool


@dataclass(frozen=True, slots=True)
class Point:
    database: str
    seeded: int  # orders bulk-loaded before the step
    stored: int  # all pay orders at the start of the step (the earlier steps' tokens too)
    result: LoadResult
    server_cpu_s: float | None
    empty: LoadResult | None

    @property
    def p99_ratio(self) -> float | None:
        if self.empty is None or self.empty.p99_ms <= 0:
            return None
        return self.result.p99_ms / self.empty.p99_ms

    @property
    def rate_ratio(self) -> float | None:
        if self.empty is None or self.empty.created_per_s <= 0:
            return None
        return self.result.created_per_s / self.empty.created_per_s

    def line(self) -> str:
        r = self.result
        p99 = "" if self.p99_ratio is None else f"{self.p99_ratio:6.2f}x"
        rate = "" if self.rate_ratio is None else f"{self.rate_ratio:6.2f}x"
        cpu = ""
        if self.server_cpu_s is not None and r.answered:
            cpu = f"{self.server_cpu_s * 1000 / r.answered:8.3f}"
        failures = ", ".join(f"{k}: {v}" for k, v in r.failures.items()) or "0"
        return (
            f"{self.database:<9} {self.seeded:>10,} {self.stored:>10,} {r.created_per_s:>9,.0f} "
            f"{r.p50_ms:8.2f} {r.p99_ms:8.2f} {r.p999_ms:8.2f} {p99:>8} {rate:>8} {cpu:>8}  "
            f"{failures}"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "seeded": self.seeded,
            "stored_at_start": self.stored,
            **self.result.as_json(),
            "p99_ratio_to_empty": self.p99_ratio,
            "rate_ratio_to_empty": self.rate_ratio,
            "server_cpu_s": self.server_cpu_s,
        }


HEADER = (
    f"{'database':<9} {'seeded':>10} {'stored':>10} {'tokens/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
    f"{'p999 ms':>8} {'p99 ÷0':>8} {'rate ÷0':>8} {'CPU ms/r':>8}  non-201"
)


def run_growth(options: GrowthOptions) -> int:
    generator, note = choose_generator(options.generator)
    scenario = Scenario.open("growth", options, pin=options.pin)
    scenario.introduce(
        "payfront bench: token latency as the order tables grow",
        f"generator: {generator.name}; closed loop at {options.connections} connections, "
        "an Idempotency-Key per request; the worker is not running",
        *([f"NOTE: {note}"] if note else []),
    )
    runner = LoadRunner(generator, scenario.pinning, ROOT)
    points: list[Point] = []
    plans: dict[str, dict[str, str]] = {}
    with contextlib.ExitStack() as resources:
        workdir = resources.enter_context(scratch_dir())
        redis = resources.enter_context(bench_redis())
        say(f"  Redis:     {redis.describe()}")
        for kind in usable_databases(options.databases):
            with contextlib.ExitStack() as per_db:
                say(f"  starting sandbox + gateway on a scratch {kind} database …")
                url = per_db.enter_context(scratch_database(kind, workdir))
                stack = per_db.enter_context(
                    gateway_stack(
                        kind,
                        url,
                        redis.url,
                        workdir,
                        scenario.out / "logs",
                        scenario.pinning,
                        with_worker=False,
                    )
                )
                points += _sweep(kind, stack, runner, options)
                plans[kind] = asyncio.run(_plans(kind, url))
            redis.flush()
    after = scenario.conclude()
    flat = _print(points, plans, options)
    path = write_json(
        scenario.out / "result.json",
        scenario.record(
            after,
            generator=generator.name,
            generator_note=note,
            points=[point.as_json() for point in points],
            flat=flat,
            flat_ratio=FLAT_RATIO,
            plans=plans,
        ),
    )
    saved(path, _plot(points, scenario.out / "growth.png"))
    return 0


def _measure(
    stack: GatewayStack, runner: LoadRunner, options: GrowthOptions, seconds: int
) -> tuple[LoadResult, float | None]:
    spec = LoadSpec(
        url=stack.payments_url,
        api_key=stack.api_key,
        connections=options.connections,
        duration_s=seconds,
        order_prefix=f"g{secrets.token_hex(4)}",
        idempotency_keys=True,
    )
    before = process_cpu_seconds(stack.gateway_pid)
    result = runner.run(spec)
    after = process_cpu_seconds(stack.gateway_pid)
    return result, None if before is None or after is None else after - before


def _sweep(
    kind: str, stack: GatewayStack, runner: LoadRunner, options: GrowthOptions
) -> list[Point]:
    points: list[Point] = []
    empty: LoadResult | None = None
    seeded = 0
    for size in (0, *options.sizes):
        if size > seeded:
            spec = SeedSpec(
                MERCHANT_ID, ACCOUNT_ID, prefix=f"seed{secrets.token_hex(3)}", idempotency=True
            )
            say(f"  {kind}: bulk-loading {size - seeded:,} orders (to {size:,}) …")

            def progress(done: int, seconds: float, goal: int = size - seeded) -> None:
                if done % 100_000 == 0 or done == goal:
                    say(f"    {done:,} written ({done / seconds:,.0f} orders/s)")

            asyncio.run(seed_orders(stack.database_url, spec, size - seeded, progress=progress))
            seeded = size
            asyncio.run(analyze(stack.database_url))
        stored = sum(asyncio.run(count_orders(stack.database_url)).values())
        runner.run(
            LoadSpec(
                url=stack.payments_url,
                api_key=stack.api_key,
                connections=options.connections,
                duration_s=options.warmup_s,
                order_prefix=f"w{secrets.token_hex(4)}",
                idempotency_keys=True,
            )
        )
        result, cpu = _measure(stack, runner, options, options.duration_s)
        if empty is None:
            empty = result
        point = Point(kind, seeded, stored, result, cpu, None if size == 0 else empty)
        points.append(point)
        say("    " + point.line())
    return points


async def _plans(kind: str, url: str) -> dict[str, str]:
    """How the database answers each lookup (an index search, not a scan, keeps it flat)."""
    engine = create_async_engine(url)
    explain = "EXPLAIN QUERY PLAN " if kind == "sqlite" else "EXPLAIN "
    found: dict[str, str] = {}
    try:
        async with engine.connect() as conn:
            for name, query in PLANS.items():
                sql = query.format(m=MERCHANT_ID)
                if kind == "sqlite":
                    sql = sql.replace("AND enabled", "AND enabled = 1")
                rows = (await conn.execute(sa.text(explain + sql))).all()
                text = " | ".join(str(row[-1]) for row in rows)
                found[name] = text
    finally:
        await engine.dispose()
    return found


def _print(
    points: list[Point], plans: dict[str, dict[str, str]], options: GrowthOptions
) -> dict[str, bool]:
    say()
    say(
        f"Token path as the tables grow ({options.connections} connections, "
        f"{options.duration_s} s per step, Idempotency-Key per request):"
    )
    say("  " + HEADER)
    say("  " + "-" * len(HEADER))
    for point in points:
        say("  " + point.line())
    say(
        "  (seeded: orders bulk-loaded; stored: pay orders at the step's start, the earlier "
        "steps' tokens included; ÷0: ratio to the same gateway's run on the empty database "
        "at the start of this invocation)"
    )
    flat: dict[str, bool] = {}
    say()
    say(f"Flat (issue 7): p99 at the largest size ≤ {FLAT_RATIO}× the empty database's")
    for kind in dict.fromkeys(point.database for point in points):
        last = [point for point in points if point.database == kind][-1]
        ratio = last.p99_ratio
        flat[kind] = ratio is not None and ratio <= FLAT_RATIO
        verdict = "flat" if flat[kind] else "NOT FLAT"
        say(f"  {kind}: {last.seeded:,} orders: p99 ×{ratio or 0:.2f} → {verdict}")
    for kind, found in plans.items():
        say()
        say(f"Query plans on {kind} at the largest size:")
        for name, plan in found.items():
            say(f"  {name}: {plan}")
    return flat


def _plot(points: list[Point], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figure, axes = plt.subplots(figsize=(8, 4.5))
    for kind in dict.fromkeys(point.database for point in points):
        mine = [point for point in points if point.database == kind]
        xs = [max(point.stored, 1) for point in mine]
        axes.plot(xs, [point.result.p99_ms for point in mine], "o-", label=f"{kind} p99")
        axes.plot(xs, [point.result.p50_ms for point in mine], "o--", label=f"{kind} p50")
    axes.set_xscale("log")
    axes.set_xlabel("pay orders stored at the step's start")
    axes.set_ylabel("token latency (ms)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.suptitle("payfront: token latency as the order tables grow")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
