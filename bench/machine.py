"""What the figures were measured on, and which CPU each process is pinned to."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


def cpu_pressure() -> str | None:
    """The kernel's CPU pressure (PSI): how often runnable tasks waited for a CPU, which
    shows other work on the machine competing with the benchmark."""
    try:
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    fields = dict(part.split("=") for part in some.split()[1:])
    return f"tasks waited for a CPU {fields['avg10']}% of the last 10 s, {fields['avg60']}% of 60 s"


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (all its threads) so far, from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Pinning:
    """The server under load gets one CPU to itself; the load generator and payfront's other
    processes (worker, sandbox) share another (when there are two and ``taskset`` exists), so
    the worker's work shows in the token's latency through Redis and the database, not by
    taking the gateway's CPU. Redis and PostgreSQL are not ours to pin."""

    server_cpu: int | None
    generator_cpu: int | None

    @classmethod
    def plan(cls, *, enabled: bool) -> Pinning:
        cpus = sorted(os.sched_getaffinity(0))
        if not enabled or len(cpus) < 2 or shutil.which("taskset") is None:
            return cls(None, None)
        return cls(cpus[0], cpus[1])

    def server(self, command: list[str]) -> list[str]:
        return _taskset(self.server_cpu, command)

    def generator(self, command: list[str]) -> list[str]:
        return _taskset(self.generator_cpu, command)

    def helper(self, command: list[str]) -> list[str]:
        """Worker and sandbox: beside the generator, away from the server under load."""
        return _taskset(self.generator_cpu, command)

    def describe(self) -> str:
        if self.server_cpu is None:
            return "no CPU pinning (fewer than 2 CPUs, no taskset, or --no-pin)"
        return (
            f"server under load pinned to CPU {self.server_cpu}; load generator, worker and "
            f"sandbox to CPU {self.generator_cpu}; Redis and PostgreSQL are not pinned"
        )


def _taskset(cpu: int | None, command: list[str]) -> list[str]:
    return command if cpu is None else ["taskset", "-c", str(cpu), *command]


def code_version(repo: Path) -> str:
    """The commit measured, and whether tracked files differ from it (read-only git calls)."""
    git = ["git", "--no-optional-locks", "-C", str(repo)]
    try:
        commit = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{commit} + uncommitted changes" if changed else commit


@dataclass(frozen=True, slots=True)
class Machine:
    cpu_model: str
    cores: int
    usable_cores: int
    load_average: tuple[float, float, float] | None
    cpu_pressure: str | None
    python: str
    platform: str

    @classmethod
    def probe(cls) -> Machine:
        return cls(
            cpu_model=cpu_model(),
            cores=os.cpu_count() or 0,
            usable_cores=len(os.sched_getaffinity(0)),
            load_average=load_average(),
            cpu_pressure=cpu_pressure(),
            python=platform.python_version(),
            platform=platform.platform(),
        )

    def describe(self) -> str:
        load = (
            "n/a"
            if self.load_average is None
            else " / ".join(f"{value:.2f}" for value in self.load_average)
        )
        pressure = f"; {self.cpu_pressure}" if self.cpu_pressure else ""
        return (
            f"{self.cores} cores ({self.usable_cores} usable), {self.cpu_model}; "
            f"Python {self.python}; load average {load} (1/5/15 min){pressure}"
        )

    def as_json(self) -> dict[str, Any]:
        return asdict(self)
