"""What every scenario shares: the options, the machine and generator it runs on, one load
step with the server's CPU time, and where the results go."""

from __future__ import annotations

import contextlib
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.loadgen import LoadResult, LoadRunner, LoadSpec, choose_generator
from bench.machine import Machine, Pinning, code_version, process_cpu_seconds
from bench.report import run_dir, say
from bench.stack import POSTGRES_URL, ROOT, postgres_answers

LOAD_NOTE = (
    "closed-loop load (wrk-style: each connection sends its next request when the last one "
    "answered), so the rising offered load is the number of connections, not a request rate"
)


@dataclass(frozen=True, slots=True)
class TokenOptions:
    databases: tuple[str, ...]
    connections: tuple[int, ...]
    duration_s: int
    warmup_s: int
    generator: str
    pin: bool
    idempotency_keys: bool
    profile: str  # "auto" (when a target is missed), "always" or "never"
    channel_latencies_s: tuple[float, ...] = ()
    latency_connections: int = 4


@dataclass
class Session:
    """What every scenario shares: where results go, the machine, the load generator."""

    options: TokenOptions
    out: Path
    machine: Machine
    pinning: Pinning
    runner: LoadRunner
    generator_note: str | None
    code: str
    steps: int = 0

    @classmethod
    def open(cls, options: TokenOptions, scenario: str) -> Session:
        generator, note = choose_generator(options.generator)
        pinning = Pinning.plan(enabled=options.pin)
        return cls(
            options=options,
            out=run_dir(scenario),
            machine=Machine.probe(),
            pinning=pinning,
            runner=LoadRunner(generator, pinning, ROOT),
            generator_note=note,
            code=code_version(ROOT),
        )

    def introduce(self, title: str) -> None:
        say(title)
        say(f"  payfront:  {self.code}")
        say(f"  machine:   {self.machine.describe()}")
        say(f"  generator: {self.runner.generator.name}; {LOAD_NOTE}")
        if self.generator_note:
            say(f"  NOTE: {self.generator_note}")
        say(f"  pinning:   {self.pinning.describe()}")
        say(f"  results:   {self.out.relative_to(ROOT)}")

    def load(
        self, url: str, api_key: str, connections: int, duration_s: int, server_pid: int
    ) -> tuple[LoadResult, float | None]:
        """One load step, and the CPU seconds the server process used meanwhile."""
        self.steps += 1
        spec = LoadSpec(
            url=url,
            api_key=api_key,
            connections=connections,
            duration_s=duration_s,
            order_prefix=f"b{secrets.token_hex(3)}s{self.steps}",
            idempotency_keys=self.options.idempotency_keys,
        )
        cpu_before = process_cpu_seconds(server_pid)
        result = self.runner.run(spec)
        cpu_after = process_cpu_seconds(server_pid)
        if cpu_before is None or cpu_after is None:
            return result, None
        return result, cpu_after - cpu_before

    def conclude(self) -> Machine:
        """The machine's state after the run, printed: other work may have competed."""
        after = Machine.probe()
        say()
        say(f"Machine after the run: {after.describe()}")
        return after

    def record(self, after: Machine, **values: Any) -> dict[str, Any]:
        return {
            "payfront": self.code,
            "machine": self.machine.as_json(),
            "machine_after": after.as_json(),
            "generator": self.runner.generator.name,
            "generator_note": self.generator_note,
            "load": LOAD_NOTE,
            "pinning": self.pinning.describe(),
            "options": asdict(self.options),
            **values,
        }


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="payfront-bench-") as path:
        yield Path(path)


def usable_databases(databases: tuple[str, ...]) -> list[str]:
    usable = []
    for kind in databases:
        if kind == "postgres" and not postgres_answers():
            say(f"  SKIPPED postgres: no PostgreSQL answers at {POSTGRES_URL}")
            continue
        usable.append(kind)
    return usable


def saved(json_path: Path, plot: Path | None) -> None:
    say()
    say(f"JSON: {json_path.relative_to(ROOT)}")
    if plot is None:
        say("plot: skipped (matplotlib is not importable; `pip install matplotlib` for a PNG)")
    else:
        say(f"plot: {plot.relative_to(ROOT)}")
