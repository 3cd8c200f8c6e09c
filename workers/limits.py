"""What guards every channel call of a worker: the account's circuit breaker (shared through
Redis, ``core.breaker``), at most K calls in flight per account in this process (a bounded
wait for a slot), and the account's own timeout.

Per-account overrides come from the account's configuration (its stored credentials):
``max_in_flight`` and ``timeout_s``; otherwise ``PAYFRONT_CHANNEL_MAX_IN_FLIGHT`` and
``PAYFRONT_CHANNEL_TIMEOUT_S``. An account's timeout can only shorten the shared HTTP
client's, which is ``PAYFRONT_CHANNEL_TIMEOUT_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import httpx

from channels.errors import ChannelError, ChannelRetryable, ChannelUnknownOutcome
from core import breaker
from core.breaker import BreakerConfig, CircuitState
from core.metrics import CHANNEL_IN_FLIGHT, CHANNEL_REFUSED
from workers.context import WorkerContext


class CircuitOpen(ChannelRetryable):
    """The account's circuit refused the call; nothing was sent."""

    def __init__(self, account_id: str, state: CircuitState, wait_s: float) -> None:
        super().__init__(
            "CHANNEL_UNAVAILABLE",
            f"channel account {account_id} is failing (circuit {state}); retry in {wait_s:.1f}s",
        )
        # Half-open with every probe slot taken: the answer is seconds away, not a cool-down.
        self.probing = state is CircuitState.HALF_OPEN
        self.wait_s = wait_s


class ChannelBusy(ChannelRetryable):
    """No call slot of the account freed up within the bounded wait; nothing was sent."""


@dataclass(frozen=True, slots=True)
class AccountLimits:
    max_in_flight: int
    timeout_s: float | None

    @classmethod
    def of(cls, credentials: Mapping[str, str], default_max_in_flight: int) -> AccountLimits:
        def number(key: str) -> float | None:
            try:
                value = float(credentials[key])
            except (KeyError, ValueError):
                return None
            return value if value > 0 else None

        max_in_flight = number("max_in_flight")
        return cls(
            max_in_flight=int(max_in_flight) if max_in_flight else default_max_in_flight,
            timeout_s=number("timeout_s"),
        )


@dataclass
class _Slots:
    """The semaphores of one worker's channel calls, one per account."""

    semaphores: dict[str, tuple[int, asyncio.Semaphore]] = field(default_factory=dict)

    def of(self, account_id: str, size: int) -> asyncio.Semaphore:
        held = self.semaphores.get(account_id)
        if held is None or held[0] != size:
            # A changed limit takes effect for new calls; calls holding the old one finish.
            held = (size, asyncio.Semaphore(size))
            self.semaphores[account_id] = held
        return held[1]


# Kept with the HTTP client whose connections they ration: one per worker context, and so
# per process and event loop.
_SLOTS: weakref.WeakKeyDictionary[httpx.AsyncClient, _Slots] = weakref.WeakKeyDictionary()


def _slots(w: WorkerContext) -> _Slots:
    slots = _SLOTS.get(w.http)
    if slots is None:
        slots = _SLOTS[w.http] = _Slots()
    return slots


@contextlib.asynccontextmanager
async def guarded(w: WorkerContext, account_id: str) -> AsyncIterator[None]:
    """Run one channel call of ``account_id`` under its circuit, slot and timeout.

    Raises ``CircuitOpen`` or ``ChannelBusy`` (both retryable: nothing was sent) instead of
    calling; a call over the account's timeout is an unknown outcome. Counts the outcome for
    the circuit: no answer (retryable, unknown outcome) is a failure; any answer, a refusal
    included, is a success.
    """
    config = BreakerConfig.of(w.settings)
    admission = await breaker.admit(w.redis, config, account_id)
    if not admission.allowed:
        CHANNEL_REFUSED.labels(account_id, "circuit_open").inc()
        raise CircuitOpen(account_id, admission.state, admission.wait_s)
    _, credentials = await w.channels.get(account_id)
    limits = AccountLimits.of(credentials, w.settings.channel_max_in_flight)
    semaphore = _slots(w).of(account_id, limits.max_in_flight)
    try:
        await asyncio.wait_for(semaphore.acquire(), w.settings.channel_slot_wait_s)
    except TimeoutError:
        CHANNEL_REFUSED.labels(account_id, "busy").inc()
        raise ChannelBusy(
            "CHANNEL_BUSY",
            f"{limits.max_in_flight} calls of {account_id} in flight for "
            f"{w.settings.channel_slot_wait_s:g}s",
        ) from None
    in_flight = CHANNEL_IN_FLIGHT.labels(account_id)
    in_flight.inc()
    # None: not counted (a cancelled job, a bug); the circuit hears only of channel answers.
    answered: bool | None = None
    deadline = asyncio.timeout(limits.timeout_s)
    try:
        async with deadline:
            yield
        answered = True
    except TimeoutError:
        if not deadline.expired():
            raise
        answered = False
        raise ChannelUnknownOutcome(
            "TIMEOUT", f"no answer within the account's {limits.timeout_s:g}s"
        ) from None
    except (ChannelRetryable, ChannelUnknownOutcome):
        answered = False
        raise
    except ChannelError:
        answered = True  # a refusal is an answer
        raise
    finally:
        in_flight.dec()
        semaphore.release()
        if answered is not None:
            await breaker.record(w.redis, config, account_id, ok=answered)
