"""Issue 7, point 6: gateway and worker memory (VmRSS from /proc) idle and with N payments in
flight, and Redis's ``used_memory`` beside them.

One stack (sandbox, gateway, worker) on a scratch database. Phases: **idle** (started, no
payment yet); **queued** (the worker paused with SIGSTOP while wrk creates N payments through
``POST /v1/payments``: the tokens are issued, the N prepay jobs wait in Redis); **drained**
(the worker resumed until every payment is ``awaiting_payment``, or the time limit: N payments
in flight, created and not paid). The worker holds no per-payment state; what grows with the
queued jobs is Redis."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from bench.loadgen import LoadRunner, LoadSpec, choose_generator
from bench.report import say, write_json
from bench.scenario import Scenario
from bench.seed import count_orders
from bench.session import saved, scratch_dir, usable_databases
from bench.stack import ROOT, GatewayStack, bench_redis, gateway_stack, scratch_database


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) of a process, in KiB, from /proc/<pid>/status."""
    found: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0])
    except OSError:
        pass
    return found


def redis_memory(url: str) -> dict[str, int]:
    client = redis.Redis.from_url(url)
    try:
        info: dict[str, Any] = client.info("memory")  # type: ignore[assignment]
        keys: int = client.dbsize()  # type: ignore[assignment]
        return {"used_memory": int(info["used_memory"]), "keys_in_db": int(keys)}
    finally:
        client.close()


@dataclass(frozen=True, slots=True)
class MemoryOptions:
    database: str
    payments: int
    connections: int
    drain_limit_s: int
    pin: bool
    generator: str


@dataclass
class Snapshot:
    phase: str
    gateway: dict[str, int]
    worker: dict[str, int]
    redis: dict[str, int]
    payments: dict[str, int]
    queued_jobs: int
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        gw, wk = self.gateway.get("VmRSS", 0), self.worker.get("VmRSS", 0)
        mem = self.redis.get("used_memory", 0)
        in_flight = sum(n for status, n in self.payments.items() if status != "paid")
        return (
            f"{self.phase:<9} {in_flight:>9,} {self.queued_jobs:>9,} {gw / 1024:>9.1f} "
            f"{self.gateway.get('VmHWM', 0) / 1024:>9.1f} {wk / 1024:>9.1f} "
            f"{self.worker.get('VmHWM', 0) / 1024:>9.1f} {mem / 2**20:>10.1f} "
            f"{self.redis.get('keys_in_db', 0):>9,}  {self.note}"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "gateway_kib": self.gateway,
            "worker_kib": self.worker,
            "redis": self.redis,
            "payments_by_status": self.payments,
            "queued_jobs": self.queued_jobs,
            "note": self.note,
            **self.extra,
        }


HEADER = (
    f"{'phase':<9} {'payments':>9} {'queued':>9} {'gw RSS':>9} {'gw peak':>9} {'wk RSS':>9} "
    f"{'wk peak':>9} {'Redis MiB':>10} {'Redis keys':>9}  note"
)


def _snapshot(stack: GatewayStack, redis_url: str, phase: str, note: str = "") -> Snapshot:
    assert stack.worker_pid is not None and stack.queue_name is not None
    client = redis.Redis.from_url(redis_url)
    try:
        queued: int = client.zcard(stack.queue_name)  # type: ignore[assignment]
    finally:
        client.close()
    return Snapshot(
        phase=phase,
        gateway=rss_kib(stack.gateway_pid),
        worker=rss_kib(stack.worker_pid),
        redis=redis_memory(redis_url),
        payments=asyncio.run(count_orders(stack.database_url)),
        queued_jobs=queued,
        note=note,
    )


def run_memory(options: MemoryOptions) -> int:
    generator, gen_note = choose_generator(options.generator)
    scenario = Scenario.open("memory", options, pin=options.pin)
    scenario.introduce(
        f"payfront bench: memory with {options.payments:,} payments in flight",
        f"generator: {generator.name} at {options.connections} connections (POST /v1/payments)",
        *([f"NOTE: {gen_note}"] if gen_note else []),
    )
    runner = LoadRunner(generator, scenario.pinning, ROOT)
    snapshots: list[Snapshot] = []
    kinds = usable_databases((options.database,))
    if not kinds:
        return 1
    with contextlib.ExitStack() as resources:
        workdir = resources.enter_context(scratch_dir())
        bench = resources.enter_context(bench_redis())
        say(f"  Redis:     {bench.describe()} (used_memory is the whole server's)")
        url = resources.enter_context(scratch_database(kinds[0], workdir))
        say(f"  starting sandbox + gateway + worker on a scratch {kinds[0]} database …")
        stack = resources.enter_context(
            gateway_stack(
                kinds[0],
                url,
                bench.url,
                workdir,
                scenario.out / "logs",
                scenario.pinning,
                with_worker=True,
            )
        )
        assert stack.worker_pid is not None
        time.sleep(1)
        snapshots.append(_snapshot(stack, bench.url, "idle", "started, no payment yet"))
        say("    " + snapshots[-1].line())
        os.kill(stack.worker_pid, signal.SIGSTOP)
        try:
            snapshots.append(_issue(stack, runner, bench.url, options))
        finally:
            os.kill(stack.worker_pid, signal.SIGCONT)
        say("    " + snapshots[-1].line())
        snapshots.append(_drain(stack, bench.url, options))
        say("    " + snapshots[-1].line())
    after = scenario.conclude()
    _print(snapshots, options)
    path = write_json(
        scenario.out / "result.json",
        scenario.record(
            after,
            generator=generator.name,
            snapshots=[snap.as_json() for snap in snapshots],
        ),
    )
    saved(path, None if not _can_plot() else _plot(snapshots, scenario.out / "memory.png"))
    return 0


def _issue(
    stack: GatewayStack, runner: LoadRunner, redis_url: str, options: MemoryOptions
) -> Snapshot:
    """wrk creates payments (bursts of about a second) until N were issued."""
    say(f"  worker paused (SIGSTOP); issuing {options.payments:,} payments through the gateway …")
    issued, began, rounds = 0, time.monotonic(), 0
    rate = 500.0
    while issued < options.payments:
        rounds += 1
        seconds = max(1, min(10, int((options.payments - issued) / max(rate, 1))))
        result = runner.run(
            LoadSpec(
                url=stack.payments_url,
                api_key=stack.api_key,
                connections=options.connections,
                duration_s=seconds,
                order_prefix=f"m{secrets.token_hex(3)}r{rounds}",
            )
        )
        issued += result.created
        rate = max(result.created_per_s, 1.0)
        say(f"    {issued:,} issued ({result.created_per_s:,.0f}/s; non-201: {result.failures})")
    took = time.monotonic() - began
    snap = _snapshot(
        stack, redis_url, "queued", f"{issued:,} tokens in {took:.0f} s, worker paused"
    )
    snap.extra["issued"] = issued
    return snap


def _drain(stack: GatewayStack, redis_url: str, options: MemoryOptions) -> Snapshot:
    say(f"  worker resumed; waiting until no payment is pending (≤ {options.drain_limit_s} s) …")
    assert stack.worker_pid is not None
    began = time.monotonic()
    peak_rss = 0
    waiting = 1
    while time.monotonic() - began < options.drain_limit_s:
        time.sleep(2)
        peak_rss = max(peak_rss, rss_kib(stack.worker_pid).get("VmRSS", 0))
        by_status = asyncio.run(count_orders(stack.database_url))
        waiting = by_status.get("pending", 0) + by_status.get("prepaying", 0)
        done = by_status.get("awaiting_payment", 0)
        say(f"    {done:,} awaiting payment, {waiting:,} still pending/prepaying")
        if waiting == 0:
            break
    took = time.monotonic() - began
    note = f"worker ran {took:.0f} s" + ("" if waiting == 0 else f"; {waiting:,} NOT drained")
    snap = _snapshot(stack, redis_url, "drained", note)
    snap.extra["worker_rss_peak_sampled_kib"] = peak_rss
    return snap


def _print(snapshots: list[Snapshot], options: MemoryOptions) -> None:
    say()
    say(f"Memory, {options.payments:,} payments ({options.database}); sizes in MiB:")
    say("  " + HEADER)
    say("  " + "-" * len(HEADER))
    for snap in snapshots:
        say("  " + snap.line())
    idle = snapshots[0]
    for snap in snapshots[1:]:
        growth = {
            "gateway": (snap.gateway.get("VmRSS", 0) - idle.gateway.get("VmRSS", 0)) / 1024,
            "worker": (snap.worker.get("VmRSS", 0) - idle.worker.get("VmRSS", 0)) / 1024,
            "Redis": (snap.redis.get("used_memory", 0) - idle.redis.get("used_memory", 0)) / 2**20,
        }
        n = max(1, options.payments)
        say(
            f"  {snap.phase} vs idle: "
            + ", ".join(
                f"{k} {v:+.1f} MiB ({v * 2**20 / n:+,.0f} B/payment)" for k, v in growth.items()
            )
        )
    say(
        "  (payments: pay orders not paid; queued: jobs in the arq queue; RSS = VmRSS, peak = "
        "VmHWM, from /proc/<pid>/status; Redis MiB = INFO memory used_memory)"
    )


def _can_plot() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _plot(snapshots: list[Snapshot], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5))
    phases = [snap.phase for snap in snapshots]
    series = {
        "gateway RSS": [snap.gateway.get("VmRSS", 0) / 1024 for snap in snapshots],
        "worker RSS": [snap.worker.get("VmRSS", 0) / 1024 for snap in snapshots],
        "Redis used_memory": [snap.redis.get("used_memory", 0) / 2**20 for snap in snapshots],
    }
    width = 0.27
    for offset, (name, values) in enumerate(series.items()):
        axes.bar([i + (offset - 1) * width for i in range(len(phases))], values, width, label=name)
    axes.set_xticks(range(len(phases)), phases)
    axes.set_ylabel("MiB")
    axes.legend()
    axes.grid(True, axis="y", alpha=0.3)
    figure.suptitle("payfront: memory idle, with payments queued, and in flight")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
