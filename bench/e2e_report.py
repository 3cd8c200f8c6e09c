"""The e2e scenario's table, verdict and plot (issue 7, point 3)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import pyspy
from bench.machine import Machine
from bench.report import say

TARGET_PAYMENTS_PER_S = 1_000
TARGET_RATIO = 50.0


@dataclass
class E2EStep:
    """One measured step: payfront or the merchant without it, at a number of shoppers."""

    target: str  # "payfront" or "merchant"
    shoppers: int
    result: dict[str, Any]
    cpu_s: dict[str, float]  # CPU seconds per process over the generator's whole run
    threads: dict[str, int]
    payments_after: dict[str, int] = field(default_factory=dict)

    @property
    def per_s(self) -> float:
        return float(self.result["per_s"])

    @property
    def failures(self) -> dict[str, int]:
        return {k: n for k, n in self.result["outcomes"].items() if k != "ok"}

    def cpu_ms_per_payment(self) -> dict[str, float]:
        """CPU ms each process spent per payment completed over the generator's whole run
        (warm-up included, so divided by the payments of warm-up + window, estimated at the
        window's rate)."""
        seconds = self.result["warmup_s"] + self.result["duration_s"]
        payments = self.per_s * seconds
        if payments <= 0:
            return {}
        return {name: used * 1000 / payments for name, used in self.cpu_s.items()}

    def line(self) -> str:
        latency = self.result["latency_ms"]
        failures = ", ".join(f"{k}: {n}" for k, n in self.failures.items()) or "none"
        cpu = ", ".join(f"{k} {v:.2f}" for k, v in self.cpu_ms_per_payment().items())
        return (
            f"{self.target}: {self.per_s:,.0f} payments/s, p50 {latency['p50']:,.0f} ms, "
            f"p99 {latency['p99']:,.0f} ms; failed {failures}; CPU ms/payment: {cpu}"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "shoppers": self.shoppers,
            **self.result,
            "cpu_s": {k: round(v, 3) for k, v in self.cpu_s.items()},
            "cpu_ms_per_payment": {k: round(v, 3) for k, v in self.cpu_ms_per_payment().items()},
            "threads": self.threads,
            "payments_after": self.payments_after,
        }


HEADER = (
    f"{'target':<9} {'shoppers':>8} {'payments':>8} {'per s':>7} {'p50 ms':>7} {'p90 ms':>7} "
    f"{'p99 ms':>7} {'p999 ms':>8}  failed"
)


def _row(step: E2EStep) -> str:
    latency = step.result["latency_ms"]
    failures = ", ".join(f"{k}: {n}" for k, n in step.failures.items()) or "0"
    return (
        f"{step.target:<9} {step.shoppers:>8,} {step.result['completed']:>8,} "
        f"{step.per_s:>7,.0f} {latency['p50']:>7,.0f} {latency['p90']:>7,.0f} "
        f"{latency['p99']:>7,.0f} {latency['p999']:>8,.0f}  {failures}"
    )


def print_summary(
    steps: Sequence[E2EStep],
    before: Machine,
    after: Machine,
    profiles: dict[str, pyspy.Summary] | None,
) -> dict[str, Any]:
    """The table, the CPU per payment, the ratio and the targets; returns the verdict."""
    say()
    say("Payments from request to credential (closed loop; each shopper waits for its")
    say("credential, then starts the next payment):")
    say("  " + HEADER)
    say("  " + "-" * len(HEADER))
    for step in steps:
        say("  " + _row(step))
    say()
    say("CPU ms per payment, by process (over each generator run):")
    for step in steps:
        cpu = ", ".join(f"{k} {v:.2f}" for k, v in step.cpu_ms_per_payment().items())
        say(f"  {step.target} at {step.shoppers:,} shoppers: {cpu}")
    payfront = [s for s in steps if s.target == "payfront"]
    merchant = [s for s in steps if s.target == "merchant"]
    best = max(payfront, key=lambda s: s.per_s, default=None)
    base = max(merchant, key=lambda s: s.per_s, default=None)
    ratio = best.per_s / base.per_s if best and base and base.per_s else None
    say()
    say(f"Machine: {before.describe()}")
    say(f"  after: {after.describe()}")
    say()
    rate_met = best is not None and best.per_s >= TARGET_PAYMENTS_PER_S
    ratio_met = ratio is not None and ratio >= TARGET_RATIO
    say(
        f"Targets (issue 7): ≥ {TARGET_PAYMENTS_PER_S:,} payments/s → "
        f"{'met' if rate_met else 'MISSED'} (best {best.per_s if best else 0:,.0f}/s at "
        f"{best.shoppers if best else 0:,} shoppers); ≥ {TARGET_RATIO:g}× the merchant without "
        f"payfront → {'met' if ratio_met else 'MISSED'} "
        f"({'n/a' if ratio is None else f'{ratio:.1f}×'}: {base.per_s if base else 0:,.1f}/s)"
    )
    for name, summary in (profiles or {}).items():
        say()
        say(f"py-spy, {name} (flame graph {summary.svg.name}):")
        for line in summary.lines():
            say(line)
    return {
        "payfront_per_s": best.per_s if best else None,
        "merchant_per_s": base.per_s if base else None,
        "ratio": ratio,
        "target_payments_per_s": TARGET_PAYMENTS_PER_S,
        "target_ratio": TARGET_RATIO,
        "payments_per_s_met": rate_met,
        "ratio_met": ratio_met,
    }


def plot_e2e(steps: Sequence[E2EStep], path: Path) -> Path | None:
    """payments/s and latency percentiles per step; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figure, (rate_axes, latency_axes) = plt.subplots(1, 2, figsize=(12, 4.5))
    labels = [f"{step.target}\n{step.shoppers:,} shoppers" for step in steps]
    colours = ["tab:blue" if step.target == "payfront" else "tab:orange" for step in steps]
    positions = list(range(len(steps)))
    rate_axes.bar(positions, [step.per_s for step in steps], color=colours)
    rate_axes.axhline(TARGET_PAYMENTS_PER_S, color="grey", linestyle=":", label="target")
    rate_axes.set_xticks(positions, labels)
    rate_axes.set_ylabel("payments/s, request → credential")
    rate_axes.set_yscale("log")
    rate_axes.legend()
    for offset, name in enumerate(("p50", "p99")):
        latency_axes.bar(
            [p + (offset - 0.5) * 0.4 for p in positions],
            [step.result["latency_ms"][name] for step in steps],
            width=0.4,
            label=name,
        )
    latency_axes.set_xticks(positions, labels)
    latency_axes.set_ylabel("request → credential (ms)")
    latency_axes.legend()
    for axes in (rate_axes, latency_axes):
        axes.grid(True, axis="y", which="both", alpha=0.3)
    figure.suptitle("payfront end to end vs a merchant calling the channel in its handler")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
