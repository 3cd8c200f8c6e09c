"""Closed-loop load against ``POST /v1/payments``: wrk with a Lua script when installed, else
an async Python generator in its own process. Both print one ``PAYFRONT_BENCH_RESULT`` JSON
line that becomes a ``LoadResult``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from bench.machine import Pinning

RESULT_MARK = "PAYFRONT_BENCH_RESULT "
WRK_SCRIPT = Path(__file__).with_name("wrk_payments.lua")
WRK_MISSING = (
    "wrk is not installed, so the load comes from the async Python generator, which is "
    "slower than wrk and may cap the bare baseline. Install wrk for sound figures: "
    "`apt-get install -y wrk` (Debian/Ubuntu) or `brew install wrk` (macOS)."
)


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """One closed-loop run: ``connections`` each send a request as soon as the last answered."""

    url: str
    api_key: str
    connections: int
    duration_s: int
    # Makes merchant_order_no unique across runs against one database.
    order_prefix: str
    idempotency_keys: bool = False
    timeout_s: int = 10


@dataclass(frozen=True, slots=True)
class LoadResult:
    connections: int
    duration_s: float
    statuses: dict[int, int]
    socket_errors: dict[str, int]
    p50_ms: float
    p99_ms: float
    p999_ms: float
    mean_ms: float
    max_ms: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    @property
    def created(self) -> int:
        return self.statuses.get(201, 0)

    @property
    def created_per_s(self) -> float:
        return self.created / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def failures(self) -> dict[str, int]:
        """Every answer that is not a 201, by status, and socket errors, by kind."""
        bad = {str(status): n for status, n in sorted(self.statuses.items()) if status != 201}
        bad.update({kind: n for kind, n in self.socket_errors.items() if n})
        return bad

    @property
    def mostly_errors(self) -> bool:
        attempts = self.answered + sum(self.socket_errors.values())
        return attempts == 0 or self.created < attempts / 2

    def as_json(self) -> dict[str, Any]:
        return {
            "connections": self.connections,
            "duration_s": round(self.duration_s, 3),
            "created": self.created,
            "created_per_s": round(self.created_per_s, 1),
            "statuses": {str(status): n for status, n in sorted(self.statuses.items())},
            "socket_errors": self.socket_errors,
            "mostly_errors": self.mostly_errors,
            "latency_ms": {
                "p50": self.p50_ms,
                "p99": self.p99_ms,
                "p999": self.p999_ms,
                "mean": self.mean_ms,
                "max": self.max_ms,
            },
            **self.extra,
        }


def parse_result(output: str, connections: int) -> LoadResult:
    for line in output.splitlines():
        if line.startswith(RESULT_MARK):
            raw = orjson.loads(line[len(RESULT_MARK) :])
            latency = raw["latency_us"]
            return LoadResult(
                connections=connections,
                duration_s=raw["duration_us"] / 1e6,
                statuses={int(status): int(n) for status, n in raw["statuses"].items()},
                socket_errors={kind: int(n) for kind, n in raw["socket_errors"].items()},
                p50_ms=latency["p50"] / 1000,
                p99_ms=latency["p99"] / 1000,
                p999_ms=latency["p999"] / 1000,
                mean_ms=latency["mean"] / 1000,
                max_ms=latency["max"] / 1000,
            )
    raise RuntimeError(f"the load generator printed no result:\n{output[-2000:]}")


class Generator(Protocol):
    name: str

    def command(self, spec: LoadSpec) -> list[str]: ...


class Wrk:
    """wrk, one thread (it gets one CPU), closed loop; its latency histogram is exact."""

    name = "wrk"

    def command(self, spec: LoadSpec) -> list[str]:
        return [
            "wrk",
            "-t1",
            f"-c{spec.connections}",
            f"-d{spec.duration_s}s",
            f"--timeout={spec.timeout_s}s",
            "-s",
            str(WRK_SCRIPT),
            spec.url,
            "--",
            spec.order_prefix,
            spec.api_key,
            "1" if spec.idempotency_keys else "0",
        ]


class PythonLoad:
    """The fallback: ``python -m bench.pyload`` (asyncio streams on uvloop), closed loop."""

    name = "python (bench.pyload)"

    def command(self, spec: LoadSpec) -> list[str]:
        return [
            sys.executable,
            "-m",
            "bench.pyload",
            "--url",
            spec.url,
            "--api-key",
            spec.api_key,
            "--connections",
            str(spec.connections),
            "--duration",
            str(spec.duration_s),
            "--timeout",
            str(spec.timeout_s),
            "--order-prefix",
            spec.order_prefix,
            *(["--idempotency-keys"] if spec.idempotency_keys else []),
        ]


def choose_generator(preference: str) -> tuple[Generator, str | None]:
    """The generator to use and, when it is not wrk, why (to print)."""
    if preference == "python":
        return PythonLoad(), "the Python generator was asked for (--generator python)"
    if shutil.which("wrk") is not None:
        return Wrk(), None
    if preference == "wrk":
        raise SystemExit(WRK_MISSING.replace("so the load comes", "and --generator wrk was asked"))
    return PythonLoad(), WRK_MISSING


@dataclass(frozen=True, slots=True)
class LoadRunner:
    generator: Generator
    pinning: Pinning
    cwd: Path

    def run(self, spec: LoadSpec) -> LoadResult:
        command = self.pinning.generator(self.generator.command(spec))
        done = subprocess.run(
            command,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=spec.duration_s + spec.timeout_s + 60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command[:3])}… exited with {done.returncode}:\n{done.stderr[-2000:]}"
            )
        return parse_result(done.stdout, spec.connections)
