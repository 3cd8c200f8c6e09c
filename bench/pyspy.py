"""Profiling a server under load with py-spy: a flame graph (SVG) and a summary of where the
samples fall (threads, packages, functions), from py-spy's collapsed-stack output."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MISSING = "py-spy is not installed: `.venv/bin/pip install py-spy` to profile the gateway"
RATE_HZ = 100
# Where payfront's own code lives, for the "inclusive" view; the entry point that holds the
# event loop (every sample is under it) says nothing and is left out.
OWN_PACKAGES = ("core", "gateway", "workers", "channels")
ENTRY_POINTS = frozenset({"run_gateway (gateway/app.py)", "run_worker (workers/settings.py)"})
# Frames that run the event loop or a thread: everything above them is in every sample.
LOOP_FUNCTIONS = frozenset({"run_app", "run_until_complete", "run_forever", "Thread.run"})
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^():]*)(?::(?P<line>\d+))?\)$")


def binary() -> str | None:
    found = shutil.which("py-spy")
    if found is not None:
        return found
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else None


def _package(path: str) -> str:
    if path.startswith("<frozen"):
        return "<frozen>"
    head, _, rest = path.partition("/")
    return head if rest else head.removesuffix(".py")


def _bare(name: str) -> str:
    return name.partition(" (")[0]


def _function(frame: str) -> tuple[str, str]:
    """(``function (file)``, package) for one py-spy frame."""
    match = _FRAME.match(frame)
    if match is None:
        return frame, "?"
    return f"{match['function']} ({match['file']})", _package(match["file"])


@dataclass
class Summary:
    svg: Path
    raw: Path
    seconds: float
    samples: int = 0
    threads: Counter[str] = field(default_factory=Counter)
    packages: Counter[str] = field(default_factory=Counter)
    self_time: Counter[str] = field(default_factory=Counter)
    own_inclusive: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)

    @classmethod
    def read(cls, svg: Path, raw: Path, seconds: float) -> Summary:
        summary = cls(svg=svg, raw=raw, seconds=seconds)
        text = raw.read_text(errors="replace") if raw.exists() else ""
        for line in text.splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            thread, *frames = stack.split(";")
            summary.samples += count
            summary.threads[thread.partition(": ")[2] or thread] += count
            if not frames:
                continue
            leaf, package = _function(frames[-1])
            summary.self_time[leaf] += count
            summary.packages[package] += count
            named = [_function(frame) for frame in frames]
            loop_depth = max(
                (depth for depth, (name, _) in enumerate(named) if _bare(name) in LOOP_FUNCTIONS),
                default=-1,
            )
            below_loop = named[loop_depth + 1 :]
            for name in {name for name, _ in below_loop}:
                summary.inclusive[name] += count
            own = {name for name, pkg in named if pkg in OWN_PACKAGES and name not in ENTRY_POINTS}
            for name in own:
                summary.own_inclusive[name] += count
        return summary

    def _share(self, count: int) -> str:
        return f"{count / self.samples:6.1%}" if self.samples else "   n/a"

    def lines(self, top: int = 12) -> list[str]:
        if not self.samples:
            return ["  (py-spy recorded no samples)"]
        busy = self.samples / (RATE_HZ * self.seconds)
        lines = [
            f"  non-idle thread samples: {busy:.0%} of {self.seconds:g} s of wall time (py-spy "
            "counts a thread waiting for a CPU as busy)",
            "  by thread:  "
            + ", ".join(
                f"{name} {self._share(n).strip()}" for name, n in self.threads.most_common(4)
            ),
            "  self time by package:  "
            + ", ".join(
                f"{name} {self._share(n).strip()}" for name, n in self.packages.most_common(10)
            ),
            "  top functions by self time:",
        ]
        lines += [f"    {self._share(n)}  {name}" for name, n in self.self_time.most_common(top)]
        lines.append("  top functions inclusive of what they call (below the event loop):")
        lines += [
            f"    {self._share(n)}  {name}" for name, n in self.inclusive.most_common(top + 6)
        ]
        lines.append("  payfront's own functions, inclusive of what they call:")
        lines += [
            f"    {self._share(n)}  {name}" for name, n in self.own_inclusive.most_common(top)
        ]
        return lines

    def as_json(self) -> dict[str, Any]:
        return {
            "svg": str(self.svg),
            "raw": str(self.raw),
            "samples": self.samples,
            "threads": dict(self.threads),
            "self_by_package": dict(self.packages.most_common()),
            "self_by_function": dict(self.self_time.most_common(40)),
            "inclusive": dict(self.inclusive.most_common(60)),
            "own_inclusive": dict(self.own_inclusive.most_common(40)),
        }


class Recording:
    """A flame graph, then collapsed stacks, of ``pid``, each for ``seconds``, one after
    the other in a background thread (two py-spy samplers at once would fight over ptrace)."""

    def __init__(self, py_spy: str, pid: int, seconds: int, out: Path, name: str) -> None:
        self.svg = out / f"{name}.svg"
        self.raw = out / f"{name}.txt"
        self.seconds = seconds
        self.log = out / "logs" / f"{name}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        common = [py_spy, "record", "--pid", str(pid), "--duration", str(seconds)]
        common += ["--rate", str(RATE_HZ)]
        self._commands = [
            [*common, "--format", "flamegraph", "-o", str(self.svg)],
            [*common, "--format", "raw", "--threads", "-o", str(self.raw)],
        ]
        self._thread = threading.Thread(target=self._record, daemon=True)

    @property
    def load_seconds(self) -> int:
        """How long the load must run to cover both recordings."""
        return 2 * self.seconds + 3

    def start(self) -> None:
        self._thread.start()

    def _record(self) -> None:
        time.sleep(1)  # let the load reach its steady state
        with self.log.open("ab") as log:
            for command in self._commands:
                subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)

    def finish(self) -> Summary:
        self._thread.join(timeout=2 * self.seconds + 60)
        return Summary.read(self.svg, self.raw, self.seconds)


def start(pid: int, seconds: int, out: Path, name: str) -> Recording | None:
    py_spy = binary()
    if py_spy is None:
        return None
    recording = Recording(py_spy, pid, seconds, out, name)
    recording.start()
    return recording
