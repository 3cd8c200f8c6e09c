"""What the callbacks, growth and memory scenarios share (the token scenarios have
``bench.session``): where results go, the machine before and after, CPU pinning, the commit,
and the JSON record."""

from __future__ import annotations

import subprocess
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.loadgen import RESULT_MARK
from bench.machine import Machine, Pinning, code_version
from bench.report import run_dir, say
from bench.stack import ROOT

REPLAY_SCRIPT = Path(__file__).with_name("wrk_replay.lua")


@dataclass
class Scenario:
    name: str
    options: Any
    out: Path
    machine: Machine
    pinning: Pinning
    code: str

    @classmethod
    def open(cls, name: str, options: Any, *, pin: bool) -> Scenario:
        return cls(
            name=name,
            options=options,
            out=run_dir(name),
            machine=Machine.probe(),
            pinning=Pinning.plan(enabled=pin),
            code=code_version(ROOT),
        )

    def introduce(self, title: str, *notes: str) -> None:
        say(title)
        say(f"  payfront:  {self.code}")
        say(f"  machine:   {self.machine.describe()}")
        say(f"  pinning:   {self.pinning.describe()}")
        for note in notes:
            say(f"  {note}")
        say(f"  results:   {self.out.relative_to(ROOT)}")

    def conclude(self) -> Machine:
        after = Machine.probe()
        say()
        say(f"Machine after the run: {after.describe()}")
        return after

    def record(self, after: Machine, **values: Any) -> dict[str, Any]:
        options = self.options
        if is_dataclass(options) and not isinstance(options, type):
            options = asdict(options)
        return {
            "scenario": self.name,
            "payfront": self.code,
            "machine": self.machine.as_json(),
            "machine_after": after.as_json(),
            "pinning": self.pinning.describe(),
            "options": options,
            **values,
        }


@dataclass(frozen=True, slots=True)
class Replay:
    """One wrk_replay.lua run: each pre-built request sent once."""

    connections: int
    sent: int
    duration_s: float
    statuses: dict[int, int]
    socket_errors: dict[str, int]
    p50_ms: float
    p99_ms: float
    p999_ms: float
    total: int = 0  # requests in the file

    @property
    def cut(self) -> bool:
        """The time limit came before every request was answered."""
        return self.ok + sum(n for s, n in self.statuses.items() if not 200 <= s < 300) < (
            self.total
        )

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def ok_per_s(self) -> float:
        return self.ok / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def failures(self) -> dict[str, int]:
        bad = {str(s): n for s, n in sorted(self.statuses.items()) if not 200 <= s < 300}
        bad.update({kind: n for kind, n in self.socket_errors.items() if n})
        return bad

    def as_json(self) -> dict[str, Any]:
        return {
            "connections": self.connections,
            "sent": self.sent,
            "in_file": self.total,
            "cut_at_time_limit": self.cut,
            "answered_2xx": self.ok,
            "per_s": round(self.ok_per_s, 1),
            "duration_s": round(self.duration_s, 3),
            "statuses": {str(s): n for s, n in sorted(self.statuses.items())},
            "socket_errors": self.socket_errors,
            "latency_ms": {"p50": self.p50_ms, "p99": self.p99_ms, "p999": self.p999_ms},
        }


def replay(
    pinning: Pinning, base_url: str, path: str, requests: Path, connections: int, max_s: int
) -> Replay:
    """Send every request in ``requests`` (see wrk_replay.lua) to ``base_url`` + ``path``
    over ``connections`` closed-loop connections; stops when all are answered or at ``max_s``."""
    command = pinning.generator(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max_s}s",
            "--timeout=10s",
            "-s",
            str(REPLAY_SCRIPT),
            base_url,
            "--",
            str(requests),
            path,
        ]
    )
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=max_s + 60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited with {done.returncode}:\n{done.stderr[-2000:]}")
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            raw = orjson.loads(line[len(RESULT_MARK) :])
            latency = raw["latency_us"]
            return Replay(
                connections=connections,
                sent=int(raw["sent"]),
                total=int(raw["total"]),
                # From the first request sent to the last answer when all were answered
                # (wrk_replay.lua ends the run then); else wrk's whole run.
                duration_s=(raw.get("active_us") or raw["duration_us"]) / 1e6,
                statuses={int(s): int(n) for s, n in raw["statuses"].items()},
                socket_errors={k: int(n) for k, n in raw["socket_errors"].items()},
                p50_ms=latency["p50"] / 1000,
                p99_ms=latency["p99"] / 1000,
                p999_ms=latency["p999"] / 1000,
            )
    raise RuntimeError(f"wrk printed no result:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
