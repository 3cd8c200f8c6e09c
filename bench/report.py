"""Tables on the terminal, a JSON record and (when matplotlib is importable) a PNG plot."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.loadgen import LoadResult

RESULTS = Path(__file__).resolve().parent / "results"
BARE = "bare aiohttp"

# Issue 7's targets for the token path.
TARGET_TOKENS_PER_S = 5_000
TARGET_P99_MS = 10.0
TARGET_BARE_FRACTION = 0.10
TARGET_LATENCY_RATIO = 1.2


def say(message: str = "") -> None:
    """Progress goes out line by line, as it happens."""
    print(message, flush=True)


def run_dir(scenario: str) -> Path:
    path = RESULTS / f"{scenario}-{time.strftime('%Y%m%d-%H%M%S')}"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True, slots=True)
class Row:
    """One measured step: a target (bare, or gateway on a database) at one offered load."""

    target: str
    result: LoadResult
    bare: LoadResult | None = None
    channel_latency_ms: int | None = None
    payments: dict[str, int] | None = None
    # CPU time the server process (all threads) used during the step.
    server_cpu_s: float | None = None

    @property
    def bare_ratio(self) -> float | None:
        if self.bare is None or self.bare.created_per_s == 0:
            return None
        return self.result.created_per_s / self.bare.created_per_s

    @property
    def cpu_share(self) -> float | None:
        if self.server_cpu_s is None or self.result.duration_s <= 0:
            return None
        return self.server_cpu_s / self.result.duration_s

    @property
    def cpu_ms_per_request(self) -> float | None:
        if self.server_cpu_s is None or self.result.answered == 0:
            return None
        return self.server_cpu_s * 1000 / self.result.answered

    def cpu_text(self) -> str:
        share, per_request = self.cpu_share, self.cpu_ms_per_request
        if share is None or per_request is None:
            return f"{'':>5} {'':>8}"
        return f"{share:5.0%} {per_request:8.3f}"

    def as_json(self) -> dict[str, Any]:
        values: dict[str, Any] = {"target": self.target, **self.result.as_json()}
        if self.server_cpu_s is not None:
            values["server_cpu_s"] = round(self.server_cpu_s, 3)
            values["server_cpu_ms_per_request"] = self.cpu_ms_per_request
        if self.bare_ratio is not None:
            values["ratio_to_bare"] = round(self.bare_ratio, 4)
        if self.channel_latency_ms is not None:
            values["channel_latency_ms"] = self.channel_latency_ms
        if self.payments is not None:
            values["payments_by_status"] = self.payments
        return values


def _ms(value: float) -> str:
    return f"{value:8.2f}" if value < 1000 else f"{value:8.0f}"


def step_line(row: Row) -> str:
    """The progress line printed as soon as a step is measured."""
    result = row.result
    if result.mostly_errors:
        figures = f"MOSTLY ERRORS: {result.created} of {result.answered} answers were 201"
    else:
        figures = (
            f"{result.created_per_s:9,.0f} 201/s  p50 {result.p50_ms:.2f} ms  "
            f"p99 {result.p99_ms:.2f} ms  p999 {result.p999_ms:.2f} ms"
        )
    cpu = ""
    if row.cpu_share is not None and row.cpu_ms_per_request is not None:
        cpu = f"  server CPU {row.cpu_share:.0%}, {row.cpu_ms_per_request:.3f} ms/request"
    failures = f"  non-201: {result.failures}" if result.failures else ""
    return f"    {row.target:<18} {result.connections:>3} conns  {figures}{cpu}{failures}"


HEADER = (
    f"{'target':<18} {'conns':>5} {'tokens/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'p999 ms':>8} "
    f"{'x bare':>7} {'CPU':>5} {'CPU ms/r':>8}  non-201"
)
CPU_NOTE = (
    "tokens/s counts 201 answers only; x bare = tokens/s ÷ the bare handler's 201/s at the same "
    "connections; CPU = the server process's CPU time (all threads) ÷ wall time, and per request"
)


def table_line(row: Row, first_column: str | None = None) -> str:
    result = row.result
    ratio = "" if row.bare_ratio is None else f"{row.bare_ratio:7.1%}"
    failures = ", ".join(f"{k}: {v}" for k, v in result.failures.items()) or "0"
    label = first_column or row.target
    if result.mostly_errors:
        return (
            f"{label:<18} {result.connections:>5} {'ERRORS':>9} — {result.created} of "
            f"{result.answered} answers were 201; not throughput ({failures})"
        )
    return (
        f"{label:<18} {result.connections:>5} {result.created_per_s:>9,.0f} "
        f"{_ms(result.p50_ms)} {_ms(result.p99_ms)} {_ms(result.p999_ms)} {ratio:>7} "
        f"{row.cpu_text()}  {failures}"
    )


def throughput_table(rows: Sequence[Row]) -> list[str]:
    lines = [HEADER, "-" * len(HEADER)]
    for target in dict.fromkeys(row.target for row in rows):
        lines.extend(table_line(row) for row in rows if row.target == target)
    return lines


def _usable(rows: Sequence[Row], target: str) -> list[Row]:
    return [row for row in rows if row.target == target and not row.result.mostly_errors]


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


@dataclass(frozen=True, slots=True)
class TargetCheck:
    target: str
    best_within_p99: Row | None
    peak: Row | None
    peak_bare: Row | None

    @property
    def tokens_met(self) -> bool:
        best = self.best_within_p99
        return best is not None and best.result.created_per_s >= TARGET_TOKENS_PER_S

    @property
    def fraction(self) -> float | None:
        if self.peak is None or self.peak_bare is None:
            return None
        bare = self.peak_bare.result.created_per_s
        return self.peak.result.created_per_s / bare if bare else None

    @property
    def fraction_met(self) -> bool:
        return self.fraction is not None and self.fraction >= TARGET_BARE_FRACTION

    @property
    def all_met(self) -> bool:
        return self.tokens_met and self.fraction_met

    def lines(self) -> list[str]:
        best = self.best_within_p99
        if best is None:
            tokens = f"no step had p99 ≤ {TARGET_P99_MS:g} ms → {_verdict(False)}"
        else:
            tokens = (
                f"best with p99 ≤ {TARGET_P99_MS:g} ms: {best.result.created_per_s:,.0f} tokens/s "
                f"at {best.result.connections} conns → {_verdict(self.tokens_met)}"
            )
        if self.fraction is None or self.peak is None:
            share = "no usable step to compare with the bare handler"
        else:
            share = (
                f"peak {self.peak.result.created_per_s:,.0f} tokens/s = {self.fraction:.1%} of "
                f"the bare handler's peak → {_verdict(self.fraction_met)}"
            )
        return [f"  {self.target}: {tokens}", f"  {' ' * len(self.target)}  {share}"]

    def as_json(self) -> dict[str, Any]:
        best = self.best_within_p99
        return {
            "target": self.target,
            "best_tokens_per_s_within_p99": None if best is None else best.result.created_per_s,
            "tokens_target_met": self.tokens_met,
            "peak_fraction_of_bare": self.fraction,
            "fraction_target_met": self.fraction_met,
        }


def check_targets(rows: Sequence[Row], target: str) -> TargetCheck:
    usable = _usable(rows, target)
    within = [row for row in usable if row.result.p99_ms <= TARGET_P99_MS]
    bare = _usable(rows, BARE)

    def peak_of(candidates: list[Row]) -> Row | None:
        return max(candidates, key=lambda row: row.result.created_per_s, default=None)

    return TargetCheck(target, peak_of(within), peak_of(usable), peak_of(bare))


TARGETS_TEXT = (
    f"Targets (issue 7): ≥ {TARGET_TOKENS_PER_S:,} tokens/s from one gateway process on SQLite "
    f"with p99 ≤ {TARGET_P99_MS:g} ms, i.e. ≥ {TARGET_BARE_FRACTION:.0%} of the bare handler "
    "(PostgreSQL is checked against the same figures, for information)"
)


def _channel(row: Row) -> str:
    if row.channel_latency_ms is None:
        return "no worker"
    return f"{row.channel_latency_ms / 1000:g} s"


def latency_table(rows: Sequence[Row]) -> list[str]:
    header = (
        f"{'database':<10} {'channel':>9} {'conns':>5} {'tokens/s':>9} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'p999 ms':>8} {'CPU':>5} {'CPU ms/r':>8}  non-201   "
        "payments by status after warm-up + step"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        result = row.result
        failures = ", ".join(f"{k}: {v}" for k, v in result.failures.items()) or "0"
        latency = _channel(row)
        payments = ", ".join(f"{k} {v:,}" for k, v in sorted((row.payments or {}).items()))
        if result.mostly_errors:
            lines.append(
                f"{row.target:<10} {latency:>9} {result.connections:>5} {'ERRORS':>9} — "
                f"{result.created} of {result.answered} answers were 201 ({failures})"
            )
            continue
        lines.append(
            f"{row.target:<10} {latency:>9} {result.connections:>5} "
            f"{result.created_per_s:>9,.0f} {_ms(result.p50_ms)} {_ms(result.p99_ms)} "
            f"{_ms(result.p999_ms)} {row.cpu_text()}  {failures:<8}  {payments}"
        )
    return lines


def write_json(path: Path, record: dict[str, Any]) -> Path:
    path.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    return path


def plot_throughput(rows: Sequence[Row], path: Path, title: str) -> Path | None:
    """tokens/s and p99 against connections, one line per target; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figure, (rate_axes, p99_axes) = plt.subplots(1, 2, figsize=(12, 4.5))
    for target in dict.fromkeys(row.target for row in rows):
        usable = _usable(rows, target)
        connections = [row.result.connections for row in usable]
        rate_axes.plot(
            connections, [row.result.created_per_s for row in usable], "o-", label=target
        )
        p99_axes.plot(connections, [row.result.p99_ms for row in usable], "o-", label=target)
    rate_axes.axhline(TARGET_TOKENS_PER_S, color="grey", linestyle=":", label="target tokens/s")
    p99_axes.axhline(TARGET_P99_MS, color="grey", linestyle=":", label="target p99")
    ticks = sorted({row.result.connections for row in rows})
    for axes, label in ((rate_axes, "201 answers/s"), (p99_axes, "p99 latency (ms)")):
        axes.set_xscale("log", base=2)
        axes.set_xticks(ticks, [str(tick) for tick in ticks])
        axes.set_yscale("log")
        axes.set_xlabel("connections (closed loop)")
        axes.set_ylabel(label)
        axes.grid(True, which="both", alpha=0.3)
        axes.legend()
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_latency(rows: Sequence[Row], path: Path, title: str) -> Path | None:
    """Token p50/p99/p999 at each channel latency, per database; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figure, axes = plt.subplots(figsize=(7, 4.5))
    labels = [f"{row.target}\n{_channel(row)}" for row in rows]
    positions = range(len(rows))
    percentiles = {
        "p50": [row.result.p50_ms for row in rows],
        "p99": [row.result.p99_ms for row in rows],
        "p999": [row.result.p999_ms for row in rows],
    }
    for offset, (name, values) in enumerate(percentiles.items()):
        axes.bar([p + (offset - 1) * 0.27 for p in positions], values, width=0.27, label=name)
    axes.set_xticks(list(positions), labels)
    axes.set_ylabel("token latency (ms)")
    axes.legend()
    axes.grid(True, axis="y", alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
