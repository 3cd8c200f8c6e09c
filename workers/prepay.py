"""The prepay job: create the order at the channel and store the shopper's credential.

Safe under at-least-once delivery: a resumed attempt (the order was already ``prepaying``,
so an earlier call may have reached the channel) queries first; a repeated create carries
identical parameters and the same out_trade_no, which the channel accepts as the same order.
"""

from __future__ import annotations

from typing import Any

import structlog
from arq import Retry
from sqlalchemy.engine import Row

from channels.base import Channel, CreateOrder, PrepayResult, TradeState
from channels.errors import (
    ChannelAlreadyPaid,
    ChannelError,
    ChannelFatal,
    ChannelOrderNotFound,
    ChannelRetryable,
    ChannelUnknownOutcome,
)
from core import context
from core import pay as pay_core
from workers import settle
from workers.context import WorkerContext

log = structlog.get_logger(__name__)


async def prepay(ctx: dict[str, Any], pay_no: str) -> str:
    """arq job: one pay order's channel create, idempotent."""
    w: WorkerContext = ctx["payfront"]
    job_try: int = ctx.get("job_try", 1)
    structlog.contextvars.bind_contextvars(pay_no=pay_no, job="prepay", job_try=job_try)
    try:
        return await _prepay(w, pay_no, job_try)
    finally:
        structlog.contextvars.unbind_contextvars("pay_no", "job", "job_try")


async def _prepay(w: WorkerContext, pay_no: str, job_try: int) -> str:
    start, pay = await pay_core.start_prepay(w.db, pay_no)
    if start is pay_core.PrepayStart.NOTHING_TO_DO or pay is None:
        return "nothing_to_do"
    context.bind_trace(pay.trace_id)
    channel, _ = await w.channels.get(pay.channel_account_id)
    try:
        if start is pay_core.PrepayStart.RESUMED or job_try > 1:
            settled = await _settle_by_query(w, channel, pay)
            if settled is not None:
                return settled
        request = channel.build_create(_create_order(w, pay), now=settle.now())
        if isinstance(request, PrepayResult):
            result = request  # nothing to send: e.g. a redirect URL signed locally
        else:
            result = await settle.exchange(
                w, pay, channel, "create", request, lambda r, at: channel.parse_create(r, now=at)
            )
    except ChannelAlreadyPaid:
        return await _settle_by_query(w, channel, pay) or "already_paid"
    except ChannelFatal as exc:
        return await _fail(w, pay_no, exc)
    except (ChannelRetryable, ChannelUnknownOutcome) as exc:
        if job_try >= w.settings.prepay_max_tries:
            return await _fail(w, pay_no, exc)
        delay = min(w.settings.prepay_retry_base_s * 2 ** (job_try - 1), 300.0)
        log.warning("prepay.retry", code=exc.code, message=exc.message, defer_s=delay)
        raise Retry(defer=delay) from exc
    credential = {"type": f"{pay.channel}_{pay.method}", **result.credential}
    await pay_core.credential_ready(w.db, pay_no, credential, result.channel_trade_no)
    await settle.announce(w, pay_no, None)
    log.info("prepay.ready")
    return "awaiting_payment"


def _create_order(w: WorkerContext, pay: Row[Any]) -> CreateOrder:
    # Built from stored fields only, so every attempt sends identical parameters.
    return CreateOrder(
        out_trade_no=pay.pay_no,
        amount_minor=pay.amount_minor,
        currency=pay.currency,
        description=pay.description,
        notify_url=w.notify_url(pay.channel, pay.channel_account_id),
        method=pay.method,
        expires_at=pay.expires_at,
    )


async def _settle_by_query(w: WorkerContext, channel: Channel, pay: Row[Any]) -> str | None:
    """Resolve an unknown earlier outcome; None means "create (again) with the same data"."""
    try:
        status = await settle.query(w, channel, pay)
    except ChannelOrderNotFound:
        return None
    if status.state is TradeState.PAID:
        return await settle.apply_paid(w, pay, status)
    if status.state in (TradeState.CLOSED, TradeState.FAILED):
        moved = await pay_core.prepay_failed(
            w.db,
            pay.pay_no,
            "CHANNEL_ORDER_" + status.channel_state,
            "the channel closed the order",
        )
        await settle.announce(w, pay.pay_no, moved.event_id if moved else None)
        return "closed_at_channel"
    return None


async def _fail(w: WorkerContext, pay_no: str, exc: ChannelError) -> str:
    log.warning("prepay.failed", code=exc.code, message=exc.message)
    moved = await pay_core.prepay_failed(w.db, pay_no, exc.code, exc.message)
    await settle.announce(w, pay_no, moved.event_id if moved else None)
    return "prepay_failed"
