"""The sandbox's configuration: where it keeps its state and how fast its clock runs."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass


@dataclass
class SandboxConfig:
    """How one sandbox process behaves.

    ``time_scale`` multiplies every channel delay the sandbox plays (callback retry schedules,
    WeChat's one-minute minimum order lifetime), so tests can run a day's schedule in
    milliseconds. ``seed`` makes fault injection deterministic; ``None`` seeds at random.
    ``hang_s`` is how long a ``timeout`` fault holds an answer back (the client should give up
    long before; shutting the sandbox down releases it at once). ``gateway_url`` is where the
    cashier page (``/sandbox/cashier/{token}``) reads payfront tokens.
    """

    state_dir: pathlib.Path
    time_scale: float = 1.0
    callback_timeout_s: float = 5.0
    public_base_url: str = "http://127.0.0.1:8090"
    seed: int | None = None
    hang_s: float = 60.0
    gateway_url: str = "http://127.0.0.1:8080"
