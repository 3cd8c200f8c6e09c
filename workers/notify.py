"""Merchant notification jobs: fan an event out to endpoints, deliver one signed webhook."""

from __future__ import annotations

import time
from typing import Any

import httpx
import structlog

from core import context, webhooks
from workers.context import WorkerContext
from workers.queue import enqueue_delivery

log = structlog.get_logger(__name__)


async def notify(ctx: dict[str, Any], event_id: str) -> int:
    """arq job: create the event's deliveries and enqueue their first attempts."""
    w: WorkerContext = ctx["payfront"]
    delivery_ids = await webhooks.fan_out(w.db, event_id)
    for delivery_id in delivery_ids:
        await enqueue_delivery(w.redis, w.queues, delivery_id, 1)
    return len(delivery_ids)


async def deliver(ctx: dict[str, Any], delivery_id: int, attempt_no: int) -> str:
    """arq job: POST one signed event to one endpoint and log the attempt."""
    w: WorkerContext = ctx["payfront"]
    delivery = await webhooks.load_pending(w.db, w.vault, delivery_id)
    if delivery is None or delivery.attempt_no != attempt_no:
        return "not_due"  # already delivered, or this attempt was already made
    context.bind_trace(delivery.trace_id)
    structlog.contextvars.bind_contextvars(event_id=delivery.event_id, delivery_id=delivery_id)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "payfront-webhooks/1",
        "Payfront-Event-Id": delivery.event_id,
        "Payfront-Event-Type": delivery.event_type,
        "traceparent": context.outbound_traceparent() or "",
        webhooks.SIGNATURE_HEADER: webhooks.sign(
            delivery.payload, delivery.secret, int(time.time())
        ),
    }
    started = time.perf_counter()
    status_code: int | None = None
    error: str | None = None
    try:
        response = await w.webhook_http.post(
            delivery.url,
            content=delivery.payload,
            headers=headers,
            timeout=w.settings.webhook_timeout_s,
        )
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = response.text[:200]
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    duration_ms = int((time.perf_counter() - started) * 1000)
    next_at = await webhooks.record_attempt(
        w.db,
        delivery,
        status_code=status_code,
        error=error,
        duration_ms=duration_ms,
        retry_scale=w.settings.webhook_retry_scale,
    )
    log.info("webhook.attempt", status_code=status_code, error=error, attempt=attempt_no)
    structlog.contextvars.unbind_contextvars("event_id", "delivery_id")
    if next_at is not None:
        await enqueue_delivery(w.redis, w.queues, delivery_id, attempt_no + 1, at=next_at)
        return "retry_scheduled"
    return "delivered" if error is None else "given_up"
