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
from core import attempts, context
from core import pay as pay_core
from core import prepay as prepay_core
from core.states import PayStatus, TradeStatus
from workers import limits, settle
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
    begun = await prepay_core.begin_prepay(w.db, pay_no)
    start, pay = begun.start, begun.pay
    if start is prepay_core.PrepayStart.NOTHING_TO_DO or pay is None:
        return "nothing_to_do"
    context.bind_trace(pay.trace_id)
    channel, _ = await w.channels.get(pay.channel_account_id)
    try:
        moot = await _settle_earlier_attempts(w, begun)
        if moot is not None:
            return moot
        if start is prepay_core.PrepayStart.RESUMED or job_try > 1:
            settled = await _settle_by_query(w, channel, pay)
            if settled is not None:
                return settled
        order = _create_order(w, pay)
        request = channel.build_create(order, now=settle.now())
        if isinstance(request, PrepayResult):
            result = request  # nothing to send: e.g. a redirect URL signed locally
        else:
            result = await settle.exchange(
                w,
                pay,
                channel,
                "create",
                request,
                lambda r, at: channel.parse_create(r, order=order, now=at),
            )
    except limits.CircuitOpen as exc:
        # The account's circuit is open: nothing is sent. An order nothing was ever sent for
        # fails now (the merchant hears at once and may pay by another channel); one an
        # earlier try may have created at the channel, or one waiting for a half-open
        # probe, is retried after the wait.
        if start is prepay_core.PrepayStart.FRESH and job_try == 1 and not exc.probing:
            return await _fail(w, pay_no, exc)
        if job_try >= w.settings.prepay_max_tries:
            # An earlier try may have reached the channel: unknown, not failed.
            return await _outcome_lost(w, pay_no, exc)
        backoff = min(w.settings.prepay_retry_base_s * 2 ** (job_try - 1), 300.0)
        # Open: until the cool-down ends. Half-open: the probe answers within seconds.
        delay = backoff if exc.probing else max(exc.wait_s, backoff)
        log.warning("prepay.circuit_open", defer_s=delay)
        raise Retry(defer=delay) from exc
    except ChannelAlreadyPaid:
        return await _settle_by_query(w, channel, pay) or "already_paid"
    except ChannelFatal as exc:
        return await _fail(w, pay_no, exc)
    except (ChannelRetryable, ChannelUnknownOutcome) as exc:
        if job_try >= w.settings.prepay_max_tries:
            if isinstance(exc, ChannelUnknownOutcome):
                # The last create may have reached the channel: not failed, but unknown
                # until a check job (or a person) finds out.
                return await _outcome_lost(w, pay_no, exc)
            return await _fail(w, pay_no, exc)
        delay = min(w.settings.prepay_retry_base_s * 2 ** (job_try - 1), 300.0)
        log.warning("prepay.retry", code=exc.code, message=exc.message, defer_s=delay)
        raise Retry(defer=delay) from exc
    credential = {"type": f"{pay.channel}_{pay.method}", **result.credential}
    await prepay_core.credential_ready(w.db, pay_no, credential, result.channel_trade_no)
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
        payer_id=pay.payer_id,
        client_ip=pay.client_ip,
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


async def _settle_earlier_attempts(w: WorkerContext, begun: prepay_core.PrepayBegun) -> str | None:
    """Before a new attempt of a trade reaches its channel, every earlier attempt that may
    still be paid is settled at its own channel: paid there → applied (the trade is paid);
    open there → closed there, then superseded here; never sent → superseded. Returns why
    this attempt has nothing to do, or None to go on. The trade and its open attempts come
    from the transaction that started this prepay; the trade is read again only after
    earlier attempts were settled."""
    pay, trade = begun.pay, begun.trade
    assert pay is not None and trade is not None
    if trade.current_pay_no not in (None, pay.pay_no):
        # A newer attempt replaced this one; its job settles this one at the channel.
        return "replaced_by_newer_attempt"
    for old in begun.earlier_open:
        if old.status != PayStatus.PENDING:
            await _close_at_channel(w, old)
        moved = await pay_core.supersede(w.db, old.pay_no)
        await settle.announce(w, old.pay_no, moved.event_id if moved else None)
    if begun.earlier_open:
        trade = await attempts.trade_of(w.db, pay.trade_no)
    if trade.status in (TradeStatus.OPEN, TradeStatus.FAILED):
        return None
    moved = await pay_core.prepay_failed(
        w.db, pay.pay_no, "TRADE_ALREADY_SETTLED", f"the trade is {trade.status}"
    )
    await settle.announce(w, pay.pay_no, moved.event_id if moved else None)
    return "trade_already_settled"


async def _close_at_channel(w: WorkerContext, old: Row[Any]) -> None:
    """Ask the earlier attempt's channel; apply a payment found there, else close it there.
    A channel that cannot answer now raises: this job is retried later."""
    channel, _ = await w.channels.get(old.channel_account_id)
    try:
        status = await settle.query(w, channel, old)
    except ChannelOrderNotFound:
        return  # never created there (or not yet scanned, for Alipay QR): nothing to close
    if status.state is TradeState.PAID:
        await settle.apply_paid(w, old, status)
        return
    if status.state in (TradeState.CLOSED, TradeState.FAILED):
        return
    request = channel.build_close(
        old.pay_no, channel_trade_no=old.channel_trade_no, now=settle.now()
    )
    try:
        await settle.exchange(
            w, old, channel, "close", request, lambda r, at: channel.parse_close(r, now=at)
        )
    except ChannelAlreadyPaid as exc:
        # Paid between the query and the close: the next try's query applies it.
        raise ChannelRetryable("EARLIER_ATTEMPT_PAID", "an earlier attempt was just paid") from exc
    except ChannelFatal as exc:
        log.info("prepay.earlier_attempt_not_closable", code=exc.code, pay_no=old.pay_no)


async def _outcome_lost(w: WorkerContext, pay_no: str, exc: ChannelError) -> str:
    log.warning("prepay.outcome_lost", code=exc.code, message=exc.message)
    await pay_core.outcome_lost(w.db, pay_no, exc.code, exc.message)
    await settle.announce(w, pay_no, None)
    return "unknown"


async def _fail(w: WorkerContext, pay_no: str, exc: ChannelError) -> str:
    log.warning("prepay.failed", code=exc.code, message=exc.message)
    moved = await pay_core.prepay_failed(w.db, pay_no, exc.code, exc.message)
    await settle.announce(w, pay_no, moved.event_id if moved else None)
    return "prepay_failed"
