"""Issue 7, point 4: verified, decrypted, applied WeChat Pay callbacks per second into ONE
gateway process, next to the bare aiohttp handler fed the same requests in the same run.

N awaiting-payment orders are written in bulk (``bench.seed``); just before each step, one
genuine ``TRANSACTION.SUCCESS`` notification per order is signed with the sandbox's platform
key and encrypted with the APIv3 key (``bench.wechat_callbacks``); wrk replays them once each
(``wrk_replay.lua``) at rising concurrency. Afterwards the orders that ended ``paid`` must be
exactly the callbacks sent."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import pyspy
from bench.machine import process_cpu_seconds
from bench.report import BARE, say, write_json
from bench.scenario import Replay, Scenario, replay
from bench.seed import SeedSpec, count_orders, seed_orders
from bench.session import saved, scratch_dir, usable_databases
from bench.stack import (
    ACCOUNT_ID,
    MERCHANT_ID,
    ROOT,
    GatewayStack,
    bare_baseline,
    bench_redis,
    gateway_stack,
    scratch_database,
)
from bench.wechat_callbacks import Signer, write_callbacks

TARGET_PER_S = 3_000
CALLBACK_PATH = f"/test/callbacks/wechatpay/{ACCOUNT_ID}"  # a test-mode account
BARE_PATH = "/v1/payments"  # the bare handler reads the same bodies and answers 201
BARE_REQUESTS = 40_000


@dataclass(frozen=True, slots=True)
class CallbackOptions:
    databases: tuple[str, ...]
    connections: tuple[int, ...]
    per_step: int  # callbacks (and orders) per step: each is sent once
    duration_s: int  # a step ends when its callbacks are all answered, or after this
    warmup: int
    pin: bool
    profile: str  # auto (when the target is missed), always, never


@dataclass(frozen=True, slots=True)
class Step:
    target: str
    result: Replay
    bare: Replay | None
    server_cpu_s: float | None

    @property
    def ratio(self) -> float | None:
        if self.bare is None or self.bare.ok_per_s == 0:
            return None
        return self.result.ok_per_s / self.bare.ok_per_s

    def line(self) -> str:
        r = self.result
        ratio = "" if self.ratio is None else f"{self.ratio:7.1%}"
        cpu = ""
        if self.server_cpu_s is not None and r.duration_s > 0 and r.sent:
            cpu = (
                f"{self.server_cpu_s / r.duration_s:5.0%} {self.server_cpu_s * 1000 / r.sent:8.3f}"
            )
        failures = ", ".join(f"{k}: {v}" for k, v in r.failures.items()) or "0"
        return (
            f"{self.target:<18} {r.connections:>5} {r.sent:>7,} {r.ok_per_s:>9,.0f} "
            f"{r.p50_ms:8.2f} {r.p99_ms:8.2f} {ratio:>7} {cpu:>14}  {failures}"
        )

    def as_json(self) -> dict[str, Any]:
        values = {"target": self.target, **self.result.as_json()}
        if self.ratio is not None:
            values["ratio_to_bare"] = round(self.ratio, 4)
        if self.server_cpu_s is not None:
            values["server_cpu_s"] = round(self.server_cpu_s, 3)
        return values


HEADER = (
    f"{'target':<18} {'conns':>5} {'sent':>7} {'2xx/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
    f"{'x bare':>7} {'CPU':>5} {'CPU ms/cb':>8}  non-2xx"
)


class Bench:
    """One database: its stack, the orders written for it, the callbacks sent so far."""

    def __init__(self, scenario: Scenario, kind: str, stack: GatewayStack, bare: str) -> None:
        self.scenario, self.kind, self.stack, self.bare_url = scenario, kind, stack, bare
        assert stack.keys is not None and stack.sandbox_state_dir is not None
        self.signer = Signer.of_sandbox(stack.sandbox_state_dir, stack.keys)
        self.pay_nos: list[str] = []
        self.used = 0
        self.sent = 0
        self.answered = 0
        self.cut = 0  # steps stopped by the time limit with callbacks unanswered
        self.batches = 0

    def seed(self, count: int) -> None:
        spec = SeedSpec(MERCHANT_ID, ACCOUNT_ID, prefix=f"cb{secrets.token_hex(3)}")

        def progress(done: int, seconds: float) -> None:
            if done % 50_000 == 0 or done == count:
                say(f"    {done:,} orders written ({done / seconds:,.0f} orders/s)")

        say(f"  writing {count:,} awaiting-payment orders to {self.kind} in bulk …")
        self.pay_nos += asyncio.run(
            seed_orders(self.stack.database_url, spec, count, progress=progress)
        )

    def callbacks(self, count: int) -> Path:
        """The next ``count`` orders' notifications, signed now (the timestamp must be fresh)."""
        if self.used + count > len(self.pay_nos):
            self.seed(self.used + count - len(self.pay_nos))
        pay_nos = self.pay_nos[self.used : self.used + count]
        self.used += count
        self.batches += 1
        host = self.stack.gateway_url.removeprefix("http://")
        path = self.scenario.out / f"callbacks-{self.kind}-{self.batches}.http"
        return write_callbacks(
            path,
            self.signer,
            pay_nos,
            amount_minor=100,
            host=host,
            workers=max(1, len(os.sched_getaffinity(0))),
        )

    def fire(self, requests: Path, connections: int, seconds: int) -> tuple[Replay, float | None]:
        pid = self.stack.gateway_pid
        before = process_cpu_seconds(pid)
        result = replay(
            self.scenario.pinning,
            self.stack.gateway_url,
            CALLBACK_PATH,
            requests,
            connections,
            seconds,
        )
        after = process_cpu_seconds(pid)
        self.sent += result.sent
        self.answered += result.ok
        self.cut += result.cut
        cpu = None if before is None or after is None else after - before
        return result, cpu

    def fire_bare(self, requests: Path, connections: int, seconds: int, count: int) -> Replay:
        """The same requests, repeated up to ``BARE_REQUESTS`` (the bare handler does not
        mind duplicates, and is too fast for a step's worth of callbacks to time it well)."""
        base = self.bare_url.removesuffix(BARE_PATH)
        repeated = requests.with_suffix(".bare.http")
        repeated.write_bytes(requests.read_bytes() * max(1, BARE_REQUESTS // max(count, 1)))
        try:
            return replay(self.scenario.pinning, base, BARE_PATH, repeated, connections, seconds)
        finally:
            repeated.unlink()


def run_callbacks(options: CallbackOptions) -> int:
    if shutil.which("wrk") is None:
        raise SystemExit("bench callbacks needs wrk: `apt-get install -y wrk`")
    scenario = Scenario.open("callbacks", options, pin=options.pin)
    scenario.introduce(
        "payfront bench: WeChat Pay callbacks into one gateway process",
        "generator: wrk + wrk_replay.lua (each pre-built, signed + encrypted notification "
        "sent once; closed loop, the rising load is the number of connections)",
        "the worker is not running (merchant webhook jobs wait in Redis)",
    )
    steps: list[Step] = []
    checks: list[dict[str, Any]] = []
    profiles: list[dict[str, Any]] = []
    with contextlib.ExitStack() as resources:
        workdir = resources.enter_context(scratch_dir())
        redis = resources.enter_context(bench_redis())
        say(f"  Redis:     {redis.describe()}")
        bare_url, _ = resources.enter_context(
            bare_baseline(scenario.out / "logs", scenario.pinning)
        )
        for kind in usable_databases(options.databases):
            say(f"  starting sandbox + gateway on a scratch {kind} database …")
            url = resources.enter_context(scratch_database(kind, workdir))
            stack = resources.enter_context(
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
            bench = Bench(scenario, kind, stack, bare_url)
            # More orders are written before each step as its callbacks need them.
            bench.seed(options.warmup)
            kind_steps = _sweep(bench, options)
            steps += kind_steps
            checks.append(_check(bench, kind_steps))
            best = max((s.result.ok_per_s for s in kind_steps if s.target != BARE), default=0)
            if options.profile == "always" or (options.profile == "auto" and best < TARGET_PER_S):
                profiles.append(_profile(bench, options, kind_steps))
    after = scenario.conclude()
    _print(steps, checks, profiles, options)
    path = write_json(
        scenario.out / "result.json",
        scenario.record(
            after,
            steps=[step.as_json() for step in steps],
            checks=checks,
            target_per_s=TARGET_PER_S,
            profiles=[{k: v for k, v in p.items() if k != "lines"} for p in profiles],
        ),
    )
    for leftover in scenario.out.glob("callbacks-*.http"):
        leftover.unlink()
    saved(path, _plot(steps, scenario.out / "callbacks.png"))
    return 0 if all(check["correct"] for check in checks) else 1


def _sweep(bench: Bench, options: CallbackOptions) -> list[Step]:
    gateway = f"gateway {bench.kind}"
    warm = bench.callbacks(options.warmup)
    top = max(options.connections)
    limit = 3 * options.duration_s
    say(f"  warm-up: {options.warmup:,} callbacks at {top} connections (bare, then gateway)")
    bench.fire_bare(warm, top, limit, options.warmup)
    result, _ = bench.fire(warm, top, limit)
    say(f"    gateway warm-up: {result.ok_per_s:,.0f} callbacks/s")
    if result.failures:
        say(f"    warm-up answers not 2xx: {result.failures}")
    rate = result.ok_per_s
    steps: list[Step] = []
    for connections in options.connections:
        # About --duration seconds of callbacks at the rate seen last (each is sent once, so
        # the step ends when they are all answered; the time limit is a safety net).
        count = max(500, min(options.per_step, int(rate * 1.5 * options.duration_s)))
        say(f"  signing {count:,} callbacks for the {connections}-connection step …")
        requests = bench.callbacks(count)
        bare = bench.fire_bare(requests, connections, limit, count)
        steps.append(Step(BARE, bare, None, None))
        say("    " + steps[-1].line())
        result, cpu = bench.fire(requests, connections, limit)
        rate = max(rate, result.ok_per_s)
        steps.append(Step(gateway, result, bare, cpu))
        say("    " + steps[-1].line())
        requests.unlink()
    warm.unlink()
    return steps


def _check(bench: Bench, steps: list[Step]) -> dict[str, Any]:
    """Orders paid = callbacks sent, and the peak against the target."""
    by_status = asyncio.run(count_orders(bench.stack.database_url))
    paid = by_status.get("paid", 0)
    gateway = [s for s in steps if s.target != BARE]
    best = max(gateway, key=lambda s: s.result.ok_per_s, default=None)
    peak_bare = max((s.result.ok_per_s for s in steps if s.target == BARE), default=0.0)
    best_rate = 0.0 if best is None else best.result.ok_per_s
    if bench.cut:
        # Callbacks in flight when a step hit its time limit were not acknowledged (the
        # channel would re-send them): applied or not, both are correct.
        correct = bench.answered <= paid <= bench.sent
    else:
        correct = paid == bench.answered == bench.sent
    return {
        "database": bench.kind,
        "callbacks_sent": bench.sent,
        "callbacks_acknowledged": bench.answered,
        "steps_cut_at_time_limit": bench.cut,
        "orders_by_status": by_status,
        "paid": paid,
        "correct": correct,
        "best_per_s": round(best_rate, 1),
        "best_connections": None if best is None else best.result.connections,
        "peak_fraction_of_bare": round(best_rate / peak_bare, 4) if peak_bare else None,
        "target_met": best_rate >= TARGET_PER_S,
    }


def _profile(bench: Bench, options: CallbackOptions, steps: list[Step]) -> dict[str, Any]:
    gateway = [s for s in steps if s.target != BARE]
    peak = max(gateway, key=lambda s: s.result.ok_per_s)
    connections = peak.result.connections
    seconds = max(4, options.duration_s)
    recording_load = 2 * seconds + 3
    count = min(80_000, int(peak.result.ok_per_s * recording_load * 1.3) + 1000)
    say(f"  profiling the {bench.kind} gateway with py-spy at {connections} connections …")
    requests = bench.callbacks(count)
    recording = pyspy.start(
        bench.stack.gateway_pid, seconds, bench.scenario.out, f"profile-{bench.kind}"
    )
    if recording is None:
        say(f"    {pyspy.MISSING}")
        requests.unlink()
        return {"target": bench.kind, "error": pyspy.MISSING, "lines": [pyspy.MISSING]}
    result, _ = bench.fire(requests, connections, recording.load_seconds)
    requests.unlink()
    say(f"    under py-spy: {result.ok_per_s:,.0f} callbacks/s")
    summary = recording.finish()
    lines = [
        f"Where the {bench.kind} gateway spends its time on callbacks (py-spy, "
        f"{summary.samples:,} samples at {connections} conns; flame graph: "
        f"{summary.svg.relative_to(ROOT)}):",
        *summary.lines(),
    ]
    # The profiled callbacks were applied too: the paid count must still match.
    paid = asyncio.run(count_orders(bench.stack.database_url)).get("paid", 0)
    lines.append(f"  after profiling: {paid:,} orders paid for {bench.sent:,} callbacks sent")
    return {"target": bench.kind, **summary.as_json(), "lines": lines}


def _print(
    steps: list[Step],
    checks: list[dict[str, Any]],
    profiles: list[dict[str, Any]],
    options: CallbackOptions,
) -> None:
    say()
    say(
        f"Callbacks, wrk replaying {options.per_step:,} signed notifications per step (max "
        f"{options.duration_s} s), one gateway process:"
    )
    say("  " + HEADER)
    say("  " + "-" * len(HEADER))
    for step in steps:
        say("  " + step.line())
    say(
        "  (2xx/s: answered 204 by the gateway / 201 by the bare handler, per second; x bare: "
        "÷ the bare handler fed the same requests at the same connections; CPU: the gateway "
        "process's CPU time ÷ wall time, and per callback)"
    )
    say()
    say(f"Target (issue 7): ≥ {TARGET_PER_S:,} verified, decrypted, applied callbacks/s")
    for check in checks:
        verdict = "met" if check["target_met"] else "MISSED"
        correct = "correct" if check["correct"] else "WRONG"
        say(
            f"  {check['database']}: best {check['best_per_s']:,.0f}/s at "
            f"{check['best_connections']} conns ({check['peak_fraction_of_bare'] or 0:.1%} of "
            f"the bare handler's peak) → {verdict}; {check['paid']:,} orders paid for "
            f"{check['callbacks_sent']:,} callbacks sent, {check['callbacks_acknowledged']:,} "
            f"acknowledged → {correct} "
            f"(orders by status: {check['orders_by_status']})"
        )
    for summary in profiles:
        say()
        for line in summary["lines"]:
            say(line)


def _plot(steps: list[Step], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figure, (rate_axes, p99_axes) = plt.subplots(1, 2, figsize=(12, 4.5))
    for target in dict.fromkeys(step.target for step in steps):
        mine = [s for s in steps if s.target == target]
        conns = [s.result.connections for s in mine]
        rate_axes.plot(conns, [s.result.ok_per_s for s in mine], "o-", label=target)
        p99_axes.plot(conns, [s.result.p99_ms for s in mine], "o-", label=target)
    rate_axes.axhline(TARGET_PER_S, color="grey", linestyle=":", label="target")
    for axes, label in ((rate_axes, "callbacks/s (2xx)"), (p99_axes, "p99 latency (ms)")):
        axes.set_xscale("log", base=2)
        axes.set_yscale("log")
        axes.set_xlabel("connections (closed loop)")
        axes.set_ylabel(label)
        axes.grid(True, which="both", alpha=0.3)
        axes.legend()
    figure.suptitle("payfront: WeChat Pay callbacks into one gateway process")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
