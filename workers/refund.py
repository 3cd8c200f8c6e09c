"""The refund job (send one refund to its channel) and the refund check (ask the channel how
a refund it has is going).

Safe under at-least-once delivery: a resumed attempt (the refund was already
``submitting``, so an earlier call may have reached the channel) queries first; a repeated
refund call carries the same out_refund_no and identical parameters, which every channel
treats as the same refund. A refund whose outcome stays unknown is never failed by guess:
it stays ``submitting`` and the sweeper's refund checks keep asking.
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.engine import Row

from channels.base import Channel, CreateRefund, RefundState
from channels.base import RefundStatus as ChannelRefund
from channels.errors import (
    ChannelError,
    ChannelFatal,
    ChannelOrderNotFound,
    ChannelRetryable,
    ChannelUnknownOutcome,
)
from core import context
from core import pay as pay_core
from core import refunds as refund_core
from core.states import RefundStatus
from workers import settle
from workers.context import WorkerContext
from workers.queue import enqueue_notify, enqueue_refund
from workers.reports import refund_report

log = structlog.get_logger(__name__)


async def refund(ctx: dict[str, Any], refund_no: str) -> str:
    """arq job: send one refund to its channel, idempotent."""
    w: WorkerContext = ctx["payfront"]
    job_try: int = ctx.get("job_try", 1)
    structlog.contextvars.bind_contextvars(refund_no=refund_no, job="refund", job_try=job_try)
    try:
        return await _refund(w, refund_no, job_try)
    finally:
        structlog.contextvars.unbind_contextvars("refund_no", "job", "job_try")


async def _refund(w: WorkerContext, refund_no: str, job_try: int) -> str:
    start, row = await refund_core.start_refund(w.db, refund_no)
    if start is refund_core.RefundStart.NOTHING_TO_DO or row is None:
        return "nothing_to_do"
    context.bind_trace(row.trace_id)
    structlog.contextvars.bind_contextvars(pay_no=row.pay_no)
    pay = await pay_core.load_pay_order(w.db, row.pay_no)
    assert pay is not None  # a refund row references its pay order
    channel, _ = await w.channels.get(row.channel_account_id)
    try:
        if start is refund_core.RefundStart.RESUMED or job_try > 1:
            try:
                found = await _query(w, channel, row, pay)
            except ChannelOrderNotFound:
                found = None  # it never arrived: send it (again, with the same number)
            if found is not None:
                return await _apply(w, row, found, source_id=f"query:{refund_no}")
        asked = _create_refund(w, row, pay)
        request = channel.build_refund(asked, now=settle.now())
        answer = await settle.exchange(
            w,
            row,
            channel,
            "refund",
            request,
            lambda r, at: channel.parse_refund(r, refund=asked, now=at),
        )
    except ChannelFatal as exc:
        # Refused for good (not refundable there, bad parameters, ...): no money moved.
        log.warning("refund.refused", code=exc.code, message=exc.message)
        failed = ChannelRefund(
            out_refund_no=refund_no,
            state=RefundState.FAILED,
            channel_state=exc.code,
            failure_reason=exc.message,
        )
        return await _apply(w, row, failed, source_id=f"refund:{refund_no}")
    except (ChannelRetryable, ChannelUnknownOutcome) as exc:
        return settle.retry_later(w, "refund", job_try, exc)
    return await _apply(w, row, answer, source_id=f"refund:{refund_no}")


def _create_refund(w: WorkerContext, row: Row[Any], pay: Row[Any]) -> CreateRefund:
    # Built from stored fields only, so every attempt sends identical parameters.
    return CreateRefund(
        out_refund_no=row.refund_no,
        out_trade_no=row.pay_no,
        refund_minor=row.amount_minor,
        total_minor=pay.amount_minor,
        currency=row.currency,
        notify_url=w.notify_url(row.channel, row.channel_account_id),
        channel_trade_no=pay.channel_trade_no,
        reason=row.reason,
    )


async def _query(w: WorkerContext, channel: Channel, row: Row[Any], pay: Row[Any]) -> ChannelRefund:
    request = channel.build_refund_query(
        row.refund_no,
        out_trade_no=row.pay_no,
        channel_trade_no=pay.channel_trade_no,
        channel_refund_no=row.channel_refund_no,
        now=settle.now(),
    )
    return await settle.exchange(
        w,
        row,
        channel,
        "refund_query",
        request,
        lambda r, at: channel.parse_refund_query(r, out_refund_no=row.refund_no, now=at),
    )


async def _apply(w: WorkerContext, row: Row[Any], status: ChannelRefund, *, source_id: str) -> str:
    report = refund_report(row.channel_account_id, status, source_id=source_id)
    outcome, event_id = await refund_core.apply_refund(w.db, report)
    if event_id is not None:
        await enqueue_notify(w.redis, w.queues, event_id)
    log.info("refund.applied", outcome=outcome, status=report.status)
    return f"{report.status}:{outcome}"


async def check_refund(ctx: dict[str, Any], refund_no: str) -> str:
    """arq job: ask the channel about one refund that has not finished."""
    w: WorkerContext = ctx["payfront"]
    structlog.contextvars.bind_contextvars(refund_no=refund_no, job="check_refund")
    try:
        return await _check(w, refund_no)
    except ChannelError as exc:
        log.warning("check_refund.channel_error", code=exc.code, message=exc.message)
        return f"channel_error:{exc.code}"
    finally:
        structlog.contextvars.unbind_contextvars("refund_no", "job")


async def _check(w: WorkerContext, refund_no: str) -> str:
    row = await refund_core.load_refund(w.db, refund_no)
    if row is None or row.status not in (RefundStatus.SUBMITTING, RefundStatus.PROCESSING):
        return "nothing_to_do"
    context.bind_trace(row.trace_id)
    pay = await pay_core.load_pay_order(w.db, row.pay_no)
    assert pay is not None
    channel, _ = await w.channels.get(row.channel_account_id)
    try:
        found = await _query(w, channel, row, pay)
    except ChannelOrderNotFound:
        await refund_core.mark_refund_checked(w.db, refund_no)
        if row.status == RefundStatus.SUBMITTING:
            # The channel never got it (or lost it): send it again, same number.
            await enqueue_refund(w.redis, w.queues, refund_no)
            return "resubmitted"
        log.warning("check_refund.accepted_refund_not_found")
        return "not_found_at_channel"
    result = await _apply(w, row, found, source_id=f"query:{refund_no}")
    await refund_core.mark_refund_checked(w.db, refund_no)
    return result
