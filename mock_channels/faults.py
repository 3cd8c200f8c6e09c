"""Fault injection for the channel emulators: slow, failing, hanging and rate-limited answers,
and duplicated or lost callbacks, set per merchant through the sandbox admin API.

Every decision is drawn from one seeded ``random.Random`` per sandbox, so a test that fixes
the seed sees the same faults on every run.
"""

from __future__ import annotations

import random

from pydantic import BaseModel, ConfigDict, Field


class FaultPlan(BaseModel):
    """The faults one merchant's API calls and callbacks suffer; all off by default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: int = Field(default=0, ge=0, le=600_000)
    # Answer 500 SYSTEM_ERROR without acting on the request.
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    # Act on the request, then hold the answer longer than any client waits: unknown outcome.
    timeout_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    # Answer 429 FREQUENCY_LIMITED without acting on the request.
    frequency_limit_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    # Deliver each successful callback a second time.
    duplicate_callbacks: bool = False
    # Fraction of callbacks never sent at all.
    lose_callbacks: float = Field(default=0.0, ge=0.0, le=1.0)


NO_FAULTS = FaultPlan()


class FaultInjector:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._plans: dict[str, FaultPlan] = {}

    def plan_for(self, merchant_id: str) -> FaultPlan:
        return self._plans.get(merchant_id, NO_FAULTS)

    def set_plan(self, merchant_id: str, plan: FaultPlan) -> None:
        self._plans[merchant_id] = plan

    def clear(self, merchant_id: str) -> None:
        self._plans.pop(merchant_id, None)

    def strikes(self, rate: float) -> bool:
        """Whether a fault with this probability happens now (no draw when it cannot)."""
        if rate <= 0.0:
            return False
        if rate >= 1.0:
            return True
        return self._rng.random() < rate
