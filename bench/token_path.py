"""Issue 7, point 1: token issuance (``POST /v1/payments``: auth, validation, one DB
transaction, one arq enqueue) under rising closed-loop load, next to the bare aiohttp handler
measured in the same run; py-spy on the gateway when a target is missed."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from bench import pyspy
from bench.loadgen import LoadResult
from bench.report import (
    BARE,
    CPU_NOTE,
    TARGETS_TEXT,
    Row,
    TargetCheck,
    check_targets,
    plot_throughput,
    say,
    step_line,
    throughput_table,
    write_json,
)
from bench.session import (
    LOAD_NOTE,
    Session,
    TokenOptions,
    saved,
    scratch_dir,
    usable_databases,
)
from bench.stack import (
    ROOT,
    GatewayStack,
    bare_baseline,
    bench_redis,
    gateway_stack,
    scratch_database,
)


@dataclass(frozen=True, slots=True)
class Target:
    """A server to load: the bare handler or a gateway."""

    name: str
    url: str
    api_key: str
    pid: int

    @property
    def address(self) -> tuple[str, str]:
        return self.url, self.api_key


def run_throughput(options: TokenOptions) -> int:
    session = Session.open(options, "token")
    session.introduce("payfront bench: token issuance, POST /v1/payments")
    say(
        "  the worker is not running: each token still does its DB transaction and arq "
        "enqueue (jobs wait in Redis); API-key auth is cached by the gateway after warm-up"
    )
    profiles: list[dict[str, Any]] = []
    with contextlib.ExitStack() as resources:
        gateways = _start_gateways(session, resources)
        bare_url, bare_pid = resources.enter_context(
            bare_baseline(session.out / "logs", session.pinning)
        )
        targets = [Target(BARE, bare_url, "sk_test_bare", bare_pid)] + [
            Target(name, gw.payments_url, gw.api_key, gw.gateway_pid)
            for name, gw in gateways.items()
        ]
        _warm_up(session, targets)
        rows = _sweep(session, targets)
        checks = [check_targets(rows, name) for name in gateways]
        for check in checks:
            wanted = options.profile == "always" or (
                options.profile == "auto" and not check.all_met
            )
            if wanted and check.peak is not None:
                gw = gateways[check.target]
                profiles.append(_profile(session, gw, check.peak.result.connections))
    after = session.conclude()
    _print_report(session, rows, checks, profiles)
    path = write_json(
        session.out / "result.json",
        session.record(
            after,
            scenario="token",
            rows=[row.as_json() for row in rows],
            targets=[check.as_json() for check in checks],
            profiles=[{k: v for k, v in p.items() if k != "lines"} for p in profiles],
        ),
    )
    saved(path, plot_throughput(rows, session.out / "token.png", "payfront token issuance"))
    return 0


def _start_gateways(session: Session, resources: contextlib.ExitStack) -> dict[str, GatewayStack]:
    """Redis, then per database a scratch database, a sandbox and a gateway (no worker)."""
    workdir = resources.enter_context(scratch_dir())
    redis = resources.enter_context(bench_redis())
    say(f"  Redis:     {redis.describe()}")
    gateways: dict[str, GatewayStack] = {}
    for kind in usable_databases(session.options.databases):
        say(f"  starting sandbox + gateway on a scratch {kind} database …")
        url = resources.enter_context(scratch_database(kind, workdir))
        logs = session.out / "logs"
        gateways[f"gateway {kind}"] = resources.enter_context(
            gateway_stack(kind, url, redis.url, workdir, logs, session.pinning, with_worker=False)
        )
    return gateways


def _warm_up(session: Session, targets: list[Target]) -> None:
    options = session.options
    connections = max(options.connections)
    for target in targets:
        say(f"  warm-up {target.name}: {options.warmup_s} s at {connections} connections")
        warm, _ = session.load(*target.address, connections, options.warmup_s, target.pid)
        if warm.failures:
            say(f"    warm-up answers not 201: {warm.failures}")


def _sweep(session: Session, targets: list[Target]) -> list[Row]:
    """Each load level in turn, the bare handler first and then each gateway, so that every
    ratio compares figures taken within a minute of each other."""
    options = session.options
    say(
        f"  measuring {options.duration_s} s per step; at each load level the bare handler "
        "first, then the gateways"
    )
    rows: list[Row] = []
    for connections in options.connections:
        bare: LoadResult | None = None
        for target in targets:
            result, cpu_s = session.load(
                *target.address, connections, options.duration_s, target.pid
            )
            if target.name == BARE:
                bare = result
            row = Row(
                target.name,
                result,
                bare=None if target.name == BARE else bare,
                server_cpu_s=cpu_s,
            )
            rows.append(row)
            say(step_line(row))
    return rows


def _print_report(
    session: Session,
    rows: list[Row],
    checks: list[TargetCheck],
    profiles: list[dict[str, Any]],
) -> None:
    say()
    say(
        f"Token issuance, {session.runner.generator.name}, {session.options.duration_s} s per "
        f"step, {LOAD_NOTE}:"
    )
    for line in throughput_table(rows):
        say("  " + line)
    say(f"  ({CPU_NOTE})")
    say()
    say(TARGETS_TEXT)
    for check in checks:
        for line in check.lines():
            say(line)
    for summary in profiles:
        say()
        for line in summary["lines"]:
            say(line)


def _profile(session: Session, gw: GatewayStack, connections: int) -> dict[str, Any]:
    duration = session.options.duration_s
    say(f"  profiling {gw.label} gateway (pid {gw.gateway_pid}) with py-spy at {connections} conns")
    recording = pyspy.start(gw.gateway_pid, duration, session.out, f"profile-{gw.label}")
    if recording is None:
        say(f"    {pyspy.MISSING}")
        return {"target": gw.label, "error": pyspy.MISSING, "lines": [pyspy.MISSING]}
    result, cpu_s = session.load(
        gw.payments_url, gw.api_key, connections, recording.load_seconds, gw.gateway_pid
    )
    say(step_line(Row(f"gateway {gw.label}", result, server_cpu_s=cpu_s)) + "  (under py-spy)")
    summary = recording.finish()
    lines = [
        f"Where the {gw.label} gateway spends its time (py-spy, {summary.samples:,} samples "
        f"at {connections} conns; flame graph: {summary.svg.relative_to(ROOT)}):",
        *summary.lines(),
    ]
    return {"target": gw.label, **summary.as_json(), "lines": lines}
