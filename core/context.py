"""One context per payment: a W3C trace id that follows a payment through requests, jobs,
channel calls, callbacks and webhooks, and into every log line.

The trace id is stored with the pay order, so a job enqueued by the sweeper after a Redis
loss, or a callback from the channel, picks up the payment's trace again.
"""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

import structlog

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_ZERO_TRACE = "0" * 32
_trace_id: ContextVar[str | None] = ContextVar("payfront_trace_id", default=None)


def new_trace_id() -> str:
    return secrets.token_hex(16)


def parse_traceparent(header: str | None) -> str | None:
    """The trace id of a valid ``traceparent`` header (version 00), else None."""
    if not header:
        return None
    match = _TRACEPARENT.match(header.strip().lower())
    if match is None or match.group(1) == _ZERO_TRACE or match.group(2) == "0" * 16:
        return None
    return match.group(1)


def bind_trace(trace_id: str | None) -> str:
    """Make ``trace_id`` (or a new one) the current trace, in logs too; return it."""
    trace_id = trace_id or new_trace_id()
    _trace_id.set(trace_id)
    structlog.contextvars.bind_contextvars(trace_id=trace_id)
    return trace_id


def current_trace_id() -> str | None:
    return _trace_id.get()


def outbound_traceparent() -> str | None:
    """A ``traceparent`` for a request we send: the current trace, a new span."""
    trace_id = _trace_id.get()
    if trace_id is None:
        return None
    return f"00-{trace_id}-{secrets.token_hex(8)}-01"


def clear() -> None:
    _trace_id.set(None)
    structlog.contextvars.clear_contextvars()
