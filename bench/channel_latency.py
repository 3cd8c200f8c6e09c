"""Issue 7, point 2: the token's latency does not follow the channel's. With a worker running
and the sandbox answering its create calls after each given latency, the token p99 at the
slowest channel is compared with the fastest (target ≤ 1.2), and each with the same gateway
and load with no worker at all (what the worker's own work adds)."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

from bench.report import (
    TARGET_LATENCY_RATIO,
    Row,
    latency_table,
    plot_latency,
    say,
    step_line,
    write_json,
)
from bench.session import Session, TokenOptions, saved, scratch_dir, usable_databases
from bench.stack import bench_redis, gateway_stack, payments_by_status, scratch_database


def run_channel_latency(options: TokenOptions) -> int:
    session = Session.open(options, "token-latency")
    session.introduce("payfront bench: token latency against the channel's latency")
    latencies_ms = [round(seconds * 1000) for seconds in options.channel_latencies_s]
    say(
        "  per step: fresh database, sandbox, gateway and (but for the reference step) a "
        "worker; the sandbox's latency is set with PUT /sandbox/wechatpay/faults/{mchid}; "
        f"{options.latency_connections} connections"
    )
    rows: list[Row] = []
    with contextlib.ExitStack() as resources:
        workdir = resources.enter_context(scratch_dir())
        redis = resources.enter_context(bench_redis())
        say(f"  Redis:     {redis.describe()}")
        for kind in usable_databases(options.databases):
            for latency_ms in [None, *latencies_ms]:
                rows.append(_step(session, kind, latency_ms, workdir, redis.url))
                redis.flush()
    after = session.conclude()
    say()
    say("Token latency with a worker calling a channel that answers after the given latency:")
    for line in latency_table(rows):
        say("  " + line)
    say()
    say(
        f"Target (issue 7): token p99 at {latencies_ms[-1] / 1000:g} s channel latency ≤ "
        f"{TARGET_LATENCY_RATIO:g} × token p99 at {latencies_ms[0] / 1000:g} s"
    )
    ratios = {kind: _ratios(rows, kind, latencies_ms) for kind in _kinds(rows)}
    for kind, (ratio, to_reference) in ratios.items():
        verdict = "met" if ratio is not None and ratio <= TARGET_LATENCY_RATIO else "MISSED"
        figure = "n/a (a step was mostly errors)" if ratio is None else f"{ratio:.2f}"
        say(f"  {kind}: p99 ratio {figure} → {verdict}")
        against = ", ".join(
            f"{ms / 1000:g} s ×{value:.2f}" if value is not None else f"{ms / 1000:g} s n/a"
            for ms, value in to_reference.items()
        )
        say(f"  {' ' * len(kind)}  p99 against the same load with no worker: {against}")
    path = write_json(
        session.out / "result.json",
        session.record(
            after,
            scenario="token-latency",
            rows=[row.as_json() for row in rows],
            p99_ratio={kind: ratio for kind, (ratio, _) in ratios.items()},
            p99_against_no_worker={kind: ref for kind, (_, ref) in ratios.items()},
            target_ratio=TARGET_LATENCY_RATIO,
        ),
    )
    plot = plot_latency(rows, session.out / "token-latency.png", "token latency vs channel latency")
    saved(path, plot)
    return 0


def _step(
    session: Session, kind: str, latency_ms: int | None, workdir: Path, redis_url: str
) -> Row:
    """One fresh stack; ``latency_ms`` None is the reference step, with no worker."""
    options = session.options
    with_worker = latency_ms is not None
    # Long enough for the worker to be busy with calls of this latency before we measure.
    warmup_s = max(options.warmup_s, math.ceil(2 * (latency_ms or 0) / 1000) + 2)
    if latency_ms is None:
        label = f"{kind}-noworker"
        say(f"  {kind}, reference with no worker: starting sandbox, gateway …")
    else:
        label = f"{kind}-{latency_ms}ms"
        say(f"  {kind}, channel latency {latency_ms} ms: starting sandbox, gateway, worker …")
    with (
        scratch_database(kind, workdir) as url,
        gateway_stack(
            label,
            url,
            redis_url,
            workdir,
            session.out / "logs",
            session.pinning,
            with_worker=with_worker,
        ) as gw,
    ):
        if latency_ms is not None:
            gw.set_channel_latency(latency_ms)
        say(f"    warm-up {warmup_s} s at {options.latency_connections} connections")
        load = (gw.payments_url, gw.api_key, options.latency_connections)
        session.load(*load, warmup_s, gw.gateway_pid)
        result, cpu_s = session.load(*load, options.duration_s, gw.gateway_pid)
        row = Row(
            kind,
            result,
            channel_latency_ms=latency_ms,
            payments=payments_by_status(url),
            server_cpu_s=cpu_s,
        )
    say(step_line(row))
    return row


def _kinds(rows: list[Row]) -> list[str]:
    return list(dict.fromkeys(row.target for row in rows))


def _ratios(
    rows: list[Row], kind: str, latencies_ms: list[int]
) -> tuple[float | None, dict[int, float | None]]:
    """(p99 at the last latency ÷ p99 at the first, {latency: p99 ÷ p99 with no worker})."""
    by_latency = {row.channel_latency_ms: row for row in rows if row.target == kind}

    def ratio(top: Row, bottom: Row) -> float | None:
        if top.result.mostly_errors or bottom.result.mostly_errors or not bottom.result.p99_ms:
            return None
        return top.result.p99_ms / bottom.result.p99_ms

    first, last, reference = (
        by_latency[latencies_ms[0]],
        by_latency[latencies_ms[-1]],
        by_latency[None],
    )
    return ratio(last, first), {ms: ratio(by_latency[ms], reference) for ms in latencies_ms}
