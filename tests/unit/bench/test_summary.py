"""``python -m bench summary``: a results directory with one run of each scenario but growth,
in the formats the scenario writers produce, gives one table row per measured point, the
right "met?" decisions, and "not run" for the scenario with no result.

The records are built with the writers' own classes (``bench.report.Row``,
``bench.growth.Point``, ``bench.hot_accounts.Step``) where they have one, and copied from real
result files (callbacks, e2e, memory, trimmed) where the structure is plain dicts. No
benchmark is run. (No ``__init__.py`` here: it would make this directory shadow ``bench``.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import summary
from bench.growth import Point as GrowthPoint
from bench.hot_accounts import Step as HotStep
from bench.loadgen import LoadResult
from bench.report import BARE, Row, check_targets

MACHINE = {
    "cpu_model": "AMD EPYC",
    "cores": 2,
    "usable_cores": 2,
    "load_average": [3.09228515625, 3.77099609375, 4.71923828125],
    "cpu_pressure": "tasks waited for a CPU 38.52% of the last 10 s, 44.70% of 60 s",
    "python": "3.11.7",
    "platform": "Linux-6.18.44-fc-v669-x86_64-with-glibc2.36",
}
PINNING = "server under load pinned to CPU 0; load generator, worker and sandbox to CPU 1"


def load(connections: int, per_s: float, p99_ms: float, seconds: float = 10.0) -> LoadResult:
    created = round(per_s * seconds)
    return LoadResult(
        connections=connections,
        duration_s=seconds,
        statuses={201: created},
        socket_errors={"connect": 0, "read": 0, "write": 0, "timeout": 0},
        p50_ms=p99_ms / 4,
        p99_ms=p99_ms,
        p999_ms=p99_ms * 2,
        mean_ms=p99_ms / 3,
        max_ms=p99_ms * 3,
    )


def session_record(scenario: str, options: dict[str, Any], **values: Any) -> dict[str, Any]:
    """``bench.session.Session.record`` (token, token --channel-latency)."""
    return {
        "payfront": "99597cc + uncommitted changes",
        "machine": MACHINE,
        "machine_after": MACHINE,
        "generator": "wrk",
        "generator_note": None,
        "load": "closed-loop load",
        "pinning": PINNING,
        "options": options,
        "scenario": scenario,
        **values,
    }


def scenario_record(scenario: str, options: dict[str, Any], **values: Any) -> dict[str, Any]:
    """``bench.scenario.Scenario.record`` (callbacks, growth, memory, e2e)."""
    return {
        "scenario": scenario,
        "payfront": "99597cc + uncommitted changes",
        "machine": MACHINE,
        "machine_after": MACHINE,
        "pinning": PINNING,
        "options": options,
        **values,
    }


TOKEN_OPTIONS = {
    "databases": ["sqlite", "postgres"],
    "connections": [4, 16],
    "duration_s": 10,
    "warmup_s": 3,
    "generator": "auto",
    "pin": True,
    "idempotency_keys": False,
    "profile": "auto",
    "channel_latencies_s": [],
    "latency_connections": 4,
}


def token_record() -> dict[str, Any]:
    """As ``bench.token_path.run_throughput`` writes it. SQLite: 5,500/s at p99 8 ms (4 conns)
    meets the rate; its peak 6,000/s is 24 % of the bare peak. PostgreSQL: 2,000/s at p99
    9 ms misses the rate; its peak 2,400/s is 9.6 % of the bare peak (missed)."""
    bare4, bare16 = load(4, 20_000, 1.0), load(16, 25_000, 3.0)
    rows = [
        Row(BARE, bare4),
        Row("gateway sqlite", load(4, 5_500, 8.0), bare=bare4, server_cpu_s=9.0),
        Row("gateway postgres", load(4, 2_000, 9.0), bare=bare4, server_cpu_s=9.0),
        Row(BARE, bare16),
        Row("gateway sqlite", load(16, 6_000, 20.0), bare=bare16, server_cpu_s=9.5),
        Row("gateway postgres", load(16, 2_400, 30.0), bare=bare16, server_cpu_s=9.5),
    ]
    checks = [check_targets(rows, name) for name in ("gateway sqlite", "gateway postgres")]
    return session_record(
        "token",
        TOKEN_OPTIONS,
        rows=[row.as_json() for row in rows],
        targets=[check.as_json() for check in checks],
        profiles=[],
    )


def latency_record() -> dict[str, Any]:
    """As ``bench.channel_latency.run_channel_latency`` writes it: SQLite p99 5.0 → 5.5 ms
    (1.10×, met), PostgreSQL 5.0 → 7.0 ms (1.40×, missed)."""
    rows = []
    for kind, slow in (("sqlite", 5.5), ("postgres", 7.0)):
        payments = {"awaiting_payment": 100}
        rows += [
            Row(kind, load(4, 900, 4.0), payments=payments, server_cpu_s=5.0),
            Row(kind, load(4, 800, 5.0), channel_latency_ms=50, payments=payments),
            Row(kind, load(4, 700, slow), channel_latency_ms=2000, payments=payments),
        ]
    return session_record(
        "token-latency",
        {**TOKEN_OPTIONS, "channel_latencies_s": [0.05, 2.0]},
        rows=[row.as_json() for row in rows],
        p99_ratio={"sqlite": 5.5 / 5.0, "postgres": 7.0 / 5.0},
        p99_against_no_worker={
            "sqlite": {50: 5.0 / 4.0, 2000: 5.5 / 4.0},
            "postgres": {50: 5.0 / 4.0, 2000: 7.0 / 4.0},
        },
        target_ratio=1.2,
    )


def growth_record() -> dict[str, Any]:
    """As ``bench.growth.run_growth`` writes it (only used to test "newest run wins")."""
    empty = load(8, 1_000, 10.0)
    points = [
        GrowthPoint("sqlite", 0, 0, empty, 5.0, None),
        GrowthPoint("sqlite", 10_000, 10_500, load(8, 990, 11.0), 5.0, empty),
        GrowthPoint("sqlite", 100_000, 101_000, load(8, 950, 14.0), 5.0, empty),
    ]
    return scenario_record(
        "growth",
        {"databases": ["sqlite"], "sizes": [10_000, 100_000], "connections": 8},
        generator="wrk",
        generator_note=None,
        points=[point.as_json() for point in points],
        flat={"sqlite": False},
        flat_ratio=1.25,
        plans={"sqlite": {}},
    )


def hot_record() -> dict[str, Any]:
    """As ``bench.hot_accounts.run_hot_accounts`` writes it: at 64 writers SQLite's hot mode
    is slower (0.86×, missed), PostgreSQL's faster (1.22×, met)."""
    figures = {
        ("sqlite", 1): (492.0, 635.0),
        ("sqlite", 64): (352.0, 303.0),
        ("postgres", 1): (39.0, 57.0),
        ("postgres", 64): (127.0, 155.0),
    }
    steps = []
    for (kind, writers), (per_row, hot) in figures.items():
        for mode, rate in (("per-row", per_row), ("hot", hot)):
            steps.append(
                HotStep(kind, mode, writers, round(rate * 5), 5.0, 9.0, 70.0, 0, 0, exact=True)
            )
    return {
        "payfront": "99597cc + uncommitted changes",
        "machine": MACHINE,
        "machine_after": MACHINE,
        "scenario": "hot-accounts",
        "options": {"databases": ["sqlite", "postgres"], "writers": [1, 64], "duration_s": 5.0},
        "steps": [step.as_json() for step in steps],
        "ratios": [
            {"database": k, "writers": w, "hot_over_per_row": round(h / p, 3)}
            for (k, w), (p, h) in figures.items()
        ],
    }


def replay_step(
    target: str, connections: int, per_s: float, p99: float, ratio: float | None = None
) -> dict[str, Any]:
    """One step of a real callbacks result.json (``bench.callbacks.Step.as_json``)."""
    step: dict[str, Any] = {
        "target": target,
        "connections": connections,
        "sent": 1000,
        "in_file": 1000,
        "cut_at_time_limit": False,
        "answered_2xx": 1000,
        "per_s": per_s,
        "duration_s": 1000 / per_s,
        "statuses": {"201" if target == BARE else "204": 1000},
        "socket_errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0},
        "latency_ms": {"p50": p99 / 4, "p99": p99, "p999": p99 * 2},
    }
    if ratio is not None:
        step["ratio_to_bare"] = ratio
        step["server_cpu_s"] = 7.68
    return step


def callbacks_record() -> dict[str, Any]:
    """The structure of bench/results/callbacks-20261125-174040/result.json, trimmed; SQLite
    meets 3,000/s here (3,100/s), PostgreSQL does not (317.7/s)."""
    steps = [
        replay_step(BARE, 4, 5327.6, 26.3),
        replay_step("gateway sqlite", 4, 3100.0, 23.6, 0.5819),
        replay_step(BARE, 16, 8695.6, 18.3),
        replay_step("gateway sqlite", 16, 2900.0, 43.3, 0.3335),
        replay_step(BARE, 4, 5167.7, 8.5),
        replay_step("gateway postgres", 4, 193.1, 45.5, 0.0374),
        replay_step(BARE, 16, 18657.3, 9.1),
        replay_step("gateway postgres", 16, 317.7, 127.2, 0.017),
    ]
    checks = [
        {
            "database": "sqlite",
            "callbacks_sent": 2000,
            "callbacks_acknowledged": 2000,
            "steps_cut_at_time_limit": 0,
            "orders_by_status": {"paid": 2000},
            "paid": 2000,
            "correct": True,
            "best_per_s": 3100.0,
            "best_connections": 4,
            "peak_fraction_of_bare": round(3100.0 / 8695.6, 4),
            "target_met": True,
        },
        {
            "database": "postgres",
            "callbacks_sent": 2000,
            "callbacks_acknowledged": 2000,
            "steps_cut_at_time_limit": 0,
            "orders_by_status": {"paid": 2000},
            "paid": 2000,
            "correct": True,
            "best_per_s": 317.7,
            "best_connections": 16,
            "peak_fraction_of_bare": 0.017,
            "target_met": False,
        },
    ]
    profile = {
        "target": "postgres",
        "svg": "/nowhere/profile-postgres.svg",
        "raw": "/nowhere/profile-postgres.txt",
        "samples": 874,
        "threads": {"MainThread": 874},
        "self_by_package": {"aiohttp": 236, "asyncpg": 210, "sqlalchemy": 149},
        "self_by_function": {"run_app (aiohttp/web.py)": 192},
        "inclusive": {},
        "own_inclusive": {"Database._write_group (core/store/db.py)": 253},
    }
    return scenario_record(
        "callbacks",
        {"databases": ["sqlite", "postgres"], "connections": [4, 16], "per_step": 25000},
        steps=steps,
        checks=checks,
        target_per_s=3000,
        profiles=[profile],
    )


def e2e_record() -> dict[str, Any]:
    """The structure of bench/results/e2e-20261125-173946/result.json, trimmed."""

    def step(target: str, shoppers: int, per_s: float) -> dict[str, Any]:
        return {
            "target": target,
            "shoppers": shoppers,
            "mode": target,
            "targets": ["127.0.0.1:55431"],
            "warmup_s": 1.0,
            "duration_s": 3.0,
            "completed": round(per_s * 3),
            "per_s": per_s,
            "outcomes": {"ok": round(per_s * 3)},
            "token_polls": 0,
            "latency_ms": {"p50": 693.2, "p90": 893.9, "p99": 945.1, "p999": 977.6, "mean": 714.4},
            "cpu_s": {"gateway": 1.15},
            "cpu_ms_per_payment": {"gateway": 6.791},
            "threads": {"gateway": 11},
            "payments_after": {},
        }

    return scenario_record(
        "e2e",
        {"shoppers": [64, 1024], "duration_s": 15, "channel_latency_ms": 500},
        steps=[
            step("payfront", 64, 400.0),
            step("payfront", 1024, 1200.0),
            step("merchant", 44, 44.0),
        ],
        threads={"payfront": {"gateway": 11, "worker": 10}, "merchant_per_process": 11},
        verdict={
            "payfront_per_s": 1200.0,
            "merchant_per_s": 44.0,
            "ratio": 1200.0 / 44.0,
            "target_payments_per_s": 1000,
            "target_ratio": 50.0,
            "payments_per_s_met": True,
            "ratio_met": False,
        },
        profiles={},
    )


def memory_record() -> dict[str, Any]:
    """The structure of bench/results/memory-20261125-171521/result.json."""

    def snap(phase: str, gw: int, wk: int, by_status: dict[str, int], **extra: Any) -> Any:
        return {
            "phase": phase,
            "gateway_kib": {"VmHWM": gw, "VmRSS": gw},
            "worker_kib": {"VmHWM": wk, "VmRSS": wk},
            "redis": {"used_memory": 2181680, "keys_in_db": 10},
            "payments_by_status": by_status,
            "queued_jobs": 1,
            "note": "",
            **extra,
        }

    return scenario_record(
        "memory",
        {"database": "sqlite", "payments": 10000, "connections": 32, "drain_limit_s": 30},
        generator="wrk",
        snapshots=[
            snap("idle", 104672, 103140, {}),
            snap("queued", 110264, 103140, {"pending": 10951}, issued=10919),
            snap(
                "drained",
                110264,
                114388,
                {"awaiting_payment": 4691, "pending": 6260},
                worker_rss_peak_sampled_kib=114388,
            ),
        ],
    )


def write(results: Path, name: str, record: dict[str, Any] | None) -> Path:
    path = results / name
    path.mkdir(parents=True)
    if record is not None:
        (path / "result.json").write_text(json.dumps(record))
    return path


@pytest.fixture
def results(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    results.mkdir()
    write(results, "token-20261125-100000", token_record())
    # Newer than token: on disk both start with "token-"; the record tells them apart.
    write(results, "token-latency-20261125-110000", latency_record())
    write(results, "e2e-20261125-120000", e2e_record())
    write(results, "callbacks-20261125-090000", {**callbacks_record(), "checks": []})
    write(results, "callbacks-20261125-130000", callbacks_record())
    write(results, "callbacks-20261125-140000", None)  # still running: no result.json yet
    write(results, "memory-20261125-150000", memory_record())
    write(results, "hot-accounts-20261125-160000", hot_record())
    return results


def rows(markdown: str) -> dict[str, list[str]]:
    """The table's rows by measure (its first cell)."""
    found = {}
    for line in markdown.splitlines():
        if line.startswith("| ") and not line.startswith("| measure"):
            cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            found[cells[0]] = cells
    return found


def row(table: dict[str, list[str]], start: str) -> list[str]:
    matches = [cells for measure, cells in table.items() if measure.startswith(start)]
    assert len(matches) == 1, (start, list(table))
    return matches[0]


def test_summary_table(results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert summary.run_summary(results, out) == 0
    markdown = (out / "SUMMARY.md").read_text()
    assert markdown in capsys.readouterr().out
    table = rows(markdown)
    machine = "2 cores, AMD EPYC, load 3.09/3.77/4.72"
    for cells in table.values():
        assert len(cells) == 8
    # Figure, baseline, ratio, target, met?, run, machine.
    assert row(table, "token/s, SQLite (best step with p99 ≤ 10 ms, 4 conns)")[1:] == [
        "5,500/s",
        "bare handler 20,000/s",
        "27.5%",
        "≥ 5,000/s with p99 ≤ 10 ms",
        "yes",
        "2026-11-25 10:00:00",
        machine,
    ]
    assert row(table, "token p99, SQLite")[1:6] == [
        "8.00 ms",
        "bare handler 1.00 ms",
        "8.00×",
        "≤ 10 ms",
        "yes",
    ]
    assert row(table, "token/s peak ÷ bare handler's peak, SQLite")[1:6] == [
        "6,000/s (16 conns)",
        "bare handler 25,000/s (16 conns)",
        "24.0%",
        "≥ 10% of the bare handler",
        "yes",
    ]
    assert row(table, "token/s, PostgreSQL")[1] == "2,000/s"
    assert row(table, "token/s, PostgreSQL")[5] == "no"
    assert row(table, "token/s peak ÷ bare handler's peak, PostgreSQL")[3:6] == [
        "9.6%",
        "≥ 10% of the bare handler",
        "no",
    ]
    assert row(table, "token p99 at 2 s ÷ at 0.05 s channel latency, SQLite")[1:7] == [
        "5.50 ms",
        "at 0.05 s: 5.00 ms",
        "1.10×",
        "≤ 1.2×",
        "yes",
        "2026-11-25 11:00:00",
    ]
    assert row(table, "token p99 at 2 s ÷ at 0.05 s channel latency, PostgreSQL")[3:6] == [
        "1.40×",
        "≤ 1.2×",
        "no",
    ]
    e2e_rate = row(table, "e2e payments/s, request → credential")
    assert e2e_rate[1:6] == [
        "1,200/s",
        "merchant without payfront 44/s (44 shoppers)",
        "27.27×",
        "≥ 1,000/s",
        "yes",
    ]
    assert "1,024 shoppers" in e2e_rate[0]
    assert row(table, "e2e payments/s ÷ merchant without payfront")[4:6] == ["≥ 50×", "no"]
    # The newest callbacks run with a result.json (the newer directory has none yet).
    assert row(table, "callbacks/s verified + decrypted + applied, SQLite")[1:7] == [
        "3,100/s",
        "bare handler peak 8,696/s",
        "35.6%",
        "≥ 3,000/s",
        "yes",
        "2026-11-25 13:00:00",
    ]
    assert row(table, "callbacks/s verified + decrypted + applied, PostgreSQL")[1:6] == [
        "318/s",
        "bare handler peak 18,657/s",
        "1.7%",
        "≥ 3,000/s",
        "no",
    ]
    gateway = row(table, "gateway peak RSS (10,919 payments issued, 6,260 not drained, sqlite)")
    assert gateway[1:6] == ["107.7 MiB", "idle 102.2 MiB", "1.05×", "none set in issue 7", "—"]
    assert row(table, "worker peak RSS")[1:3] == ["111.7 MiB", "idle 100.7 MiB"]
    assert row(table, "hot ÷ per-row postings/s to one account, SQLite (64 writers)")[1:6] == [
        "303/s",
        "per-row 352/s",
        "0.86×",
        "> 1× (issue 5)",
        "no",
    ]
    assert row(table, "hot ÷ per-row postings/s to one account, PostgreSQL")[3:6] == [
        "1.22×",
        "> 1× (issue 5)",
        "yes",
    ]
    growth = row(table, "token p99 with 10k/100k/1M orders stored")
    assert growth[1:] == ["not run", "—", "—", "≤ 1.25× empty", "—", "—", "—"]
    assert "`python -m bench growth`" in growth[0]
    assert len(table) == 6 + 2 + 2 + 2 + 1 + 2 + 2
    # The missed targets name what the run's profile found, or that there is none.
    assert "callbacks-20261125-140000: no readable result.json" in markdown
    assert "postgres: py-spy, 874 samples" in markdown
    assert "aiohttp 27%, asyncpg 24%, sqlalchemy 17%" in markdown
    assert "Database._write_group (core/store/db.py) 29%" in markdown
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert not (out / "summary.png").exists()
    else:
        assert (out / "summary.png").read_bytes().startswith(b"\x89PNG")
        assert "![each point against its target](summary.png)" in markdown


def test_newest_run_of_each_scenario(results: Path) -> None:
    write(results, "growth-20261125-080000", growth_record())
    newer = growth_record()
    newer["points"][-1]["p99_ratio_to_empty"] = 1.1
    newer["points"][-1]["latency_ms"]["p99"] = 11.0
    write(results, "growth-20261125-090000", newer)
    runs, notes = summary.find_runs(results)
    assert sorted(runs) == sorted(summary.SCENARIOS)
    assert runs["token"].path.name == "token-20261125-100000"
    assert runs["token-latency"].path.name == "token-latency-20261125-110000"
    assert runs["callbacks"].path.name == "callbacks-20261125-130000"
    assert notes == [
        "callbacks-20261125-140000: no readable result.json (run in progress or interrupted)"
    ]
    points = [p for p in summary.collect(runs) if p.scenario == "growth"]
    assert [(p.figure, p.baseline, p.ratio, p.met) for p in points] == [
        ("11.00 ms", "empty database 10.00 ms", "1.10×", True),
        ("11.00 ms", "empty database 10.00 ms", "1.10×", True),
    ]
    assert points[0].measure.startswith("token p99 with 10,000 orders stored, SQLite")


def test_no_results_at_all(tmp_path: Path) -> None:
    runs, notes = summary.find_runs(tmp_path / "missing")
    assert runs == {}
    assert notes
    points = summary.collect(runs)
    assert [p.scenario for p in points] == list(summary.SCENARIOS)
    assert {p.figure for p in points} == {"not run"}
    assert {p.met_text for p in points} == {"—"}


def test_record_without_scenario_is_told_apart_by_what_it_holds() -> None:
    assert summary.scenario_of({"rows": [], "p99_ratio": {}}, "token") == "token-latency"
    assert summary.scenario_of({"rows": [], "targets": []}, "token") == "token"
    assert summary.scenario_of({"scenario": "token-latency"}, "token") == "token-latency"
