"""The withdraw job (send one payout to its channel) and the withdrawal check (ask the channel
how a payout it has is going). The same rules as refunds (workers.refund): a resumed attempt
queries first, a repeated payout carries the same number, an unknown outcome is never failed
by guess."""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.engine import Row

from channels.base import Channel, CreatePayout, PayoutState, PayoutStatus
from channels.errors import (
    ChannelError,
    ChannelFatal,
    ChannelOrderNotFound,
    ChannelRetryable,
    ChannelUnknownOutcome,
)
from core import context
from core import withdrawals as core
from core.states import WithdrawalStatus
from workers import settle
from workers.context import WorkerContext
from workers.queue import enqueue_notify, enqueue_withdraw

log = structlog.get_logger(__name__)

_STATUS = {
    PayoutState.PROCESSING: WithdrawalStatus.PROCESSING,
    PayoutState.SUCCEEDED: WithdrawalStatus.SUCCEEDED,
    PayoutState.FAILED: WithdrawalStatus.FAILED,
}


def payout_report(account_id: str, payout: PayoutStatus, *, source_id: str) -> core.PayoutReport:
    """A channel's payout status as the core's report (channels' types → core's types)."""
    return core.PayoutReport(
        channel_account_id=account_id,
        withdrawal_no=payout.out_payout_no,
        status=_STATUS[payout.state],
        source_id=source_id,
        amount_minor=payout.amount_minor,
        channel_payout_no=payout.channel_payout_no,
        succeeded_at=payout.succeeded_at,
        failure_code=payout.channel_state if payout.state is PayoutState.FAILED else None,
        failure_message=payout.failure_reason,
        payee_action=dict(payout.payee_action) or None,
    )


async def withdraw(ctx: dict[str, Any], withdrawal_no: str) -> str:
    """arq job: send one withdrawal's payout to its channel, idempotent."""
    w: WorkerContext = ctx["payfront"]
    job_try: int = ctx.get("job_try", 1)
    structlog.contextvars.bind_contextvars(withdrawal_no=withdrawal_no, job="withdraw")
    try:
        return await _withdraw(w, withdrawal_no, job_try)
    finally:
        structlog.contextvars.unbind_contextvars("withdrawal_no", "job")


async def _withdraw(w: WorkerContext, withdrawal_no: str, job_try: int) -> str:
    start, row = await core.start_withdrawal(w.db, withdrawal_no)
    if start is core.WithdrawalStart.NOTHING_TO_DO or row is None:
        return "nothing_to_do"
    context.bind_trace(row.trace_id)
    channel, _ = await w.channels.get(row.channel_account_id)
    try:
        if start is core.WithdrawalStart.RESUMED or job_try > 1:
            try:
                found = await _query(w, channel, row)
            except ChannelOrderNotFound:
                found = None  # it never arrived: send it (again, with the same number)
            if found is not None:
                return await _apply(w, row, found, source_id=f"query:{withdrawal_no}")
        asked = _create_payout(w, row)
        request = channel.build_payout(asked, now=settle.now())
        answer = await settle.exchange(
            w,
            row,
            channel,
            "payout",
            request,
            lambda r, at: channel.parse_payout(r, payout=asked, now=at),
        )
    except ChannelFatal as exc:
        log.warning("withdraw.refused", code=exc.code, message=exc.message)
        refused = PayoutStatus(
            out_payout_no=withdrawal_no,
            state=PayoutState.FAILED,
            channel_state=exc.code,
            failure_reason=exc.message,
        )
        return await _apply(w, row, refused, source_id=f"payout:{withdrawal_no}")
    except (ChannelRetryable, ChannelUnknownOutcome) as exc:
        return settle.retry_later(w, "withdraw", job_try, exc)
    return await _apply(w, row, answer, source_id=f"payout:{withdrawal_no}")


def _create_payout(w: WorkerContext, row: Row[Any]) -> CreatePayout:
    # Built from stored fields only, so every attempt sends identical parameters.
    return CreatePayout(
        out_payout_no=row.withdrawal_no,
        amount_minor=row.amount_minor,
        currency=row.currency,
        payee_id=row.payee_id,
        payee_type=row.payee_type,
        payee_name=row.payee_name,
        remark=row.remark,
        notify_url=w.notify_url(row.channel, row.channel_account_id),
    )


async def _query(w: WorkerContext, channel: Channel, row: Row[Any]) -> PayoutStatus:
    request = channel.build_payout_query(
        row.withdrawal_no, channel_payout_no=row.channel_payout_no, now=settle.now()
    )
    return await settle.exchange(
        w,
        row,
        channel,
        "payout_query",
        request,
        lambda r, at: channel.parse_payout_query(r, out_payout_no=row.withdrawal_no, now=at),
    )


async def _apply(w: WorkerContext, row: Row[Any], status: PayoutStatus, *, source_id: str) -> str:
    report = payout_report(row.channel_account_id, status, source_id=source_id)
    outcome, event_id = await core.apply_payout(w.db, report)
    if event_id is not None:
        await enqueue_notify(w.redis, w.queues, event_id)
    if outcome is core.PayoutOutcome.ANOMALY:
        log.error("withdraw.contradiction", reported=report.status, amount=report.amount_minor)
    log.info("withdraw.applied", outcome=outcome, status=report.status)
    return f"{report.status}:{outcome}"


async def check_withdrawal(ctx: dict[str, Any], withdrawal_no: str) -> str:
    """arq job: ask the channel about one withdrawal that has not finished."""
    w: WorkerContext = ctx["payfront"]
    structlog.contextvars.bind_contextvars(withdrawal_no=withdrawal_no, job="check_withdrawal")
    try:
        return await _check(w, withdrawal_no)
    except ChannelError as exc:
        log.warning("check_withdrawal.channel_error", code=exc.code, message=exc.message)
        return f"channel_error:{exc.code}"
    finally:
        structlog.contextvars.unbind_contextvars("withdrawal_no", "job")


async def _check(w: WorkerContext, withdrawal_no: str) -> str:
    row = await core.load_withdrawal(w.db, withdrawal_no)
    if row is None or row.status not in (
        WithdrawalStatus.SUBMITTING,
        WithdrawalStatus.PROCESSING,
    ):
        return "nothing_to_do"
    context.bind_trace(row.trace_id)
    channel, _ = await w.channels.get(row.channel_account_id)
    try:
        found = await _query(w, channel, row)
    except ChannelOrderNotFound:
        await core.mark_checked(w.db, withdrawal_no)
        if row.status == WithdrawalStatus.SUBMITTING:
            await enqueue_withdraw(w.redis, w.queues, withdrawal_no)
            return "resubmitted"
        log.warning("check_withdrawal.accepted_payout_not_found")
        return "not_found_at_channel"
    result = await _apply(w, row, found, source_id=f"query:{withdrawal_no}")
    await core.mark_checked(w.db, withdrawal_no)
    return result
