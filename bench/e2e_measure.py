"""What the e2e scenario measures around its load: the CPU time and threads of each process
taking part, the generator's run with its progress echoed, and the worker catching up."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis

from bench.e2e_load import PROGRESS_MARK
from bench.loadgen import RESULT_MARK
from bench.machine import process_cpu_seconds
from bench.report import say
from bench.stack import ROOT, payments_by_status

WAITING = ("pending", "prepaying")


def thread_count(pid: int) -> int:
    try:
        return len(list(Path(f"/proc/{pid}/task").iterdir()))
    except OSError:
        return 0


def redis_pid(url: str) -> int | None:
    client = redis.Redis.from_url(url)
    try:
        info: dict[str, Any] = client.info("server")  # type: ignore[assignment]
        return int(info["process_id"])
    except (redis.RedisError, KeyError, ValueError):
        return None
    finally:
        client.close()


@dataclass
class CpuMeter:
    """CPU seconds each named process used between ``start`` and ``stop``; threads seen."""

    pids: dict[str, int]
    before: dict[str, float] = field(default_factory=dict)
    used: dict[str, float] = field(default_factory=dict)
    threads: dict[str, int] = field(default_factory=dict)

    def start(self) -> None:
        self.before = {name: process_cpu_seconds(pid) or 0.0 for name, pid in self.pids.items()}

    def sample_threads(self) -> None:
        for name, pid in self.pids.items():
            self.threads[name] = max(self.threads.get(name, 0), thread_count(pid))

    def stop(self) -> None:
        for name, pid in self.pids.items():
            after = process_cpu_seconds(pid)
            if after is not None:
                self.used[name] = after - self.before.get(name, 0.0)


def run_generator(
    arguments: list[str],
    meter: CpuMeter,
    timeout_s: float,
    label: str,
    backlog: Callable[[], str] = lambda: "",
) -> dict[str, Any]:
    """Run ``bench.e2e_load`` with ``arguments``, echo its progress (with ``backlog()``, what
    waits in the system under test), return its result."""
    command = [sys.executable, "-m", "bench.e2e_load", *arguments]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    meter.pids["generator"] = process.pid
    meter.start()
    result: dict[str, Any] | None = None
    deadline = time.monotonic() + timeout_s
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(PROGRESS_MARK):
            tick = orjson.loads(line[len(PROGRESS_MARK) :])
            meter.sample_threads()
            say(
                f"      {label} t={tick['t']:>5.1f}s {tick['phase']:<9} "
                f"{tick['per_s']:>7,.0f} payments/s  in flight {tick['in_flight']:>5}  "
                f"failed {tick['failed']}{backlog()}"
            )
        elif line.startswith(RESULT_MARK):
            meter.stop()
            result = orjson.loads(line[len(RESULT_MARK) :])
        if time.monotonic() > deadline:
            process.kill()
            break
    process.wait(30)
    if result is None:
        error = process.stderr.read() if process.stderr else ""
        raise RuntimeError(f"the e2e generator exited with {process.returncode}:\n{error[-2000:]}")
    return result


def wait_drained(database_url: str, limit_s: float) -> dict[str, int]:
    """Until the worker finished what the last step left (no payment pending/prepaying)."""
    deadline = time.monotonic() + limit_s
    while True:
        by_status = payments_by_status(database_url)
        if not any(by_status.get(status) for status in WAITING) or time.monotonic() > deadline:
            return by_status
        time.sleep(1)
