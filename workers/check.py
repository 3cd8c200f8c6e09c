"""The compensation job for one order awaiting payment (or in ``unknown``): ask the channel,
apply what it says.

Catches lost callbacks (paid at the channel, no callback here), expiry (close at the channel
first, so the shopper can no longer pay, then close here), and lost create answers (paid →
paid; no order there → failed; an unpaid order there → closed there, then here). Safe to run
twice.
"""

from __future__ import annotations

from typing import Any

import structlog

from channels.base import TradeState
from channels.errors import ChannelAlreadyPaid, ChannelError, ChannelOrderNotFound
from core import context
from core import pay as pay_core
from core.states import PayStatus
from workers import settle
from workers.context import WorkerContext

log = structlog.get_logger(__name__)


async def check_order(ctx: dict[str, Any], pay_no: str) -> str:
    """arq job: reconcile one awaiting order with its channel."""
    w: WorkerContext = ctx["payfront"]
    structlog.contextvars.bind_contextvars(pay_no=pay_no, job="check_order")
    try:
        return await _check(w, pay_no)
    except ChannelError as exc:
        # The channel could not answer; the next sweep asks again.
        log.warning("check.channel_error", code=exc.code, message=exc.message)
        return f"channel_error:{exc.code}"
    finally:
        structlog.contextvars.unbind_contextvars("pay_no", "job")


async def _check(w: WorkerContext, pay_no: str) -> str:
    pay = await pay_core.load_pay_order(w.db, pay_no)
    if pay is None or pay.status not in (PayStatus.AWAITING_PAYMENT, PayStatus.UNKNOWN):
        return "nothing_to_do"
    context.bind_trace(pay.trace_id)
    channel, _ = await w.channels.get(pay.channel_account_id)
    try:
        status = await settle.query(w, channel, pay)
    except ChannelOrderNotFound:
        status = None
    if status is not None and status.state is TradeState.PAID:
        log.warning("check.paid_without_callback")
        return await settle.apply_paid(w, pay, status)
    if pay.status == PayStatus.UNKNOWN and status is None:
        # The lost create never made an order there: it failed.
        moved = await pay_core.prepay_failed(
            w.db, pay_no, "NOT_CREATED_AT_CHANNEL", "the channel has no such order"
        )
        await settle.announce(w, pay_no, moved.event_id if moved else None)
        return "not_created"
    expired = pay.expires_at <= settle.now()
    closed_there = status is not None and status.state in (TradeState.CLOSED, TradeState.FAILED)
    # An order in unknown exists there unpaid, but the shopper never got its credential:
    # close it (no one can pay it through us).
    must_close = expired or pay.status == PayStatus.UNKNOWN
    if not closed_there and not must_close:
        await pay_core.mark_checked(w.db, pay_no)
        return "still_awaiting" if status is not None else "not_found_at_channel"
    if status is not None and not closed_there:
        try:
            request = channel.build_close(
                pay_no, channel_trade_no=pay.channel_trade_no, now=settle.now()
            )
            await settle.exchange(
                w, pay, channel, "close", request, lambda r, at: channel.parse_close(r, now=at)
            )
        except ChannelAlreadyPaid:
            # Paid between our query and the close: the next check applies it.
            return "paid_while_closing"
    moved = await pay_core.close(w.db, pay_no)
    await settle.announce(w, pay_no, moved.event_id if moved else None)
    log.info("check.closed", expired=expired, closed_at_channel=closed_there)
    return "closed"
