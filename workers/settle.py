"""What prepay and the compensation job share: asking the channel about one order, applying
a payment it reports, and announcing a change after its commit."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from arq import Retry
from sqlalchemy.engine import Row

from channels.base import Channel, HttpRequest, HttpResponse, TradeStatus
from channels.errors import (
    ChannelAlreadyPaid,
    ChannelError,
    ChannelOrderNotFound,
    ChannelRetryable,
    ChannelUnknownOutcome,
)
from channels.registry import account_identity
from channels.transport import send
from core import context, receipts, wakeups
from core.metrics import CHANNEL_ERRORS, CHANNEL_LATENCY
from workers import limits
from workers.context import WorkerContext
from workers.queue import enqueue_notify
from workers.reports import payment_report

T = TypeVar("T")
log = structlog.get_logger(__name__)


def now() -> datetime:
    return datetime.now(UTC)


def _error_kind(exc: ChannelError) -> str:
    for kind, cls in (
        ("circuit_open", limits.CircuitOpen),
        ("busy", limits.ChannelBusy),
        ("not_found", ChannelOrderNotFound),
        ("already_paid", ChannelAlreadyPaid),
        ("retryable", ChannelRetryable),
        ("unknown_outcome", ChannelUnknownOutcome),
    ):
        if isinstance(exc, cls):
            return kind
    return "fatal"


async def exchange(
    w: WorkerContext,
    pay: Row[Any],
    channel: Channel,
    operation: str,
    request: HttpRequest,
    parse: Callable[[HttpResponse, datetime], T],
) -> T:
    """Send one channel request (carrying the payment's trace) and parse the answer, with
    its latency and failure class counted per channel account and operation."""
    labels = (channel.name, pay.channel_account_id, operation)
    started = time.perf_counter()
    try:
        # Circuit breaker, per-account concurrency slot and timeout (workers.limits).
        async with limits.guarded(w, pay.channel_account_id):
            response = await send(w.http, request, traceparent=context.outbound_traceparent())
            return parse(response, now())
    except ChannelError as exc:
        CHANNEL_ERRORS.labels(*labels, _error_kind(exc)).inc()
        raise
    finally:
        CHANNEL_LATENCY.labels(*labels).observe(time.perf_counter() - started)


async def query(w: WorkerContext, channel: Channel, pay: Row[Any]) -> TradeStatus:
    """The channel's view of one order (raises ``ChannelOrderNotFound`` and other errors)."""
    request = channel.build_query(pay.pay_no, channel_trade_no=pay.channel_trade_no, now=now())
    return await exchange(
        w, pay, channel, "query", request, lambda r, at: channel.parse_query(r, now=at)
    )


async def apply_paid(w: WorkerContext, pay: Row[Any], status: TradeStatus) -> str:
    """Apply a payment the channel reported on query, cross-checked like a callback."""
    _, credentials = await w.channels.get(pay.channel_account_id)
    report = payment_report(
        pay.channel_account_id,
        status,
        source_id=f"query:{pay.pay_no}",
        expected_ids=account_identity(pay.channel, credentials),
    )
    outcome, event_id = await receipts.apply_payment(w.db, report)
    await announce(w, pay.pay_no, event_id)
    return f"paid_at_channel:{outcome}"


async def announce(w: WorkerContext, pay_no: str, event_id: str | None) -> None:
    """After a commit: wake long-polls on the token, and send the event's webhooks now
    (the outbox row would get them sent by the sweeper anyway)."""
    await wakeups.publish(w.redis, pay_no)
    if event_id is not None:
        await enqueue_notify(w.redis, w.queues, event_id)


def retry_later(w: WorkerContext, job: str, job_try: int, exc: ChannelError) -> str:
    """After a failure that may be retried (nothing sent, or an unknown outcome): raise arq's
    ``Retry`` with exponential back-off, or, when the tries are spent, give the work to the
    sweeper's checks (which query; an unknown outcome is never failed by guess)."""
    if job_try >= w.settings.prepay_max_tries:
        log.warning(f"{job}.left_for_check", code=exc.code, message=exc.message)
        return "left_for_check"
    delay = min(w.settings.prepay_retry_base_s * 2 ** (job_try - 1), 300.0)
    log.warning(f"{job}.retry", code=exc.code, message=exc.message, defer_s=delay)
    raise Retry(defer=delay) from exc
