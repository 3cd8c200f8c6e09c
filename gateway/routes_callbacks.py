"""Channel callbacks: verify, normalise, apply by compare-and-set, answer as the channel expects."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import structlog
from aiohttp import web
from redis.exceptions import RedisError

from channels.base import Channel, HttpResponse, PayoutStatus, RefundStatus, TradeState
from channels.errors import CallbackIgnored, CallbackRejected
from channels.registry import account_identity
from core.receipts import ApplyOutcome, apply_payment
from core.refunds import RefundOutcome, apply_refund
from core.withdrawals import PayoutOutcome, apply_payout
from gateway import unverified_callbacks
from gateway.state import LANES, GatewayState
from workers.queue import Queues, enqueue_notify, enqueue_notify_and_wake
from workers.reports import payment_report, refund_report
from workers.withdraw import payout_report

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()
_ACCOUNT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def _render(answer: HttpResponse) -> web.Response:
    return web.Response(status=answer.status, body=answer.body, headers=dict(answer.headers))


@routes.post("/callbacks/{channel}/{account}")
async def callback(request: web.Request) -> web.Response:
    """A live-mode channel account's callbacks."""
    return await _callback(request, request.app[LANES].live)


@routes.post("/test/callbacks/{channel}/{account}")
async def test_callback(request: web.Request) -> web.Response:
    """A test-mode (sandbox) channel account's callbacks: looked up in, and applied to, the
    shadow database only (the notify URL a test-mode worker sends carries this path)."""
    return await _callback(request, request.app[LANES].test)


async def _callback(request: web.Request, state: GatewayState) -> web.Response:
    channel_name, account_id = request.match_info["channel"], request.match_info["account"]
    structlog.contextvars.bind_contextvars(channel=channel_name, channel_account=account_id)
    try:
        if not _ACCOUNT_ID.match(account_id):
            raise LookupError(account_id)  # no account has such an id: not a database question
        channel, credentials = await state.channels.get(account_id)
    except LookupError:
        raise web.HTTPNotFound(reason="unknown channel account") from None
    if channel.name != channel_name:
        raise web.HTTPNotFound(reason="unknown channel account")
    body = await request.read()
    try:
        event = channel.parse_callback(request.headers, body, now=datetime.now(UTC))
    except CallbackIgnored as ignored:
        log.info("callback.ignored", channel_event=ignored.event_id, type=ignored.event_type)
        return _render(channel.ack_success())
    except CallbackRejected as exc:
        # Nothing changes; the channel is told to try again (a genuine one will verify).
        log.warning("callback.rejected", reason=exc.reason, detail=exc.message)
        # It may still name an order of ours: ask the channel about it, rate-limited.
        await unverified_callbacks.follow_up(state, channel_name, account_id, credentials, body)
        return _render(channel.ack_failure(exc.message))
    if event.refund is not None:
        return await _refund_callback(state, channel, account_id, event.event_id, event.refund)
    if event.payout is not None:
        return await _payout_callback(state, channel, account_id, event.event_id, event.payout)
    trade = event.trade
    if trade is None:
        log.warning("callback.empty", channel_event=event.event_id)
        return _render(channel.ack_success())
    structlog.contextvars.bind_contextvars(pay_no=trade.out_trade_no, channel_event=event.event_id)
    if trade.state is not TradeState.PAID:
        log.info("callback.ignored", channel_state=trade.channel_state)
        return _render(channel.ack_success())
    report = payment_report(
        account_id,
        trade,
        source_id=event.event_id,
        expected_ids=account_identity(channel_name, credentials),
    )
    outcome, event_id = await apply_payment(state.db, report)
    log.info("callback.applied", outcome=outcome)
    if outcome is ApplyOutcome.UNKNOWN_ORDER:
        return _render(channel.ack_failure("unknown out_trade_no"))
    if event_id is not None:
        try:
            # The wake-up and the webhook job in one round trip.
            await enqueue_notify_and_wake(
                state.redis, Queues.of(state.settings), event_id, trade.out_trade_no
            )
        except RedisError:
            # Committed already: the outbox row gets the webhook sent once Redis is back,
            # and long-polls fall back to re-reading.
            log.warning("callback.announce_failed")
    # Applied, duplicate, or recorded as an anomaly: acknowledged all the same, since the
    # channel re-sending the same data would change nothing.
    return _render(channel.ack_success())


async def _refund_callback(
    state: GatewayState, channel: Channel, account_id: str, event_id: str, refund: RefundStatus
) -> web.Response:
    structlog.contextvars.bind_contextvars(
        refund_no=refund.out_refund_no, pay_no=refund.out_trade_no, channel_event=event_id
    )
    report = refund_report(account_id, refund, source_id=event_id)
    outcome, merchant_event = await apply_refund(state.db, report)
    log.info("callback.refund_applied", outcome=outcome, status=report.status)
    if outcome is RefundOutcome.UNKNOWN_REFUND:
        return _render(channel.ack_failure("unknown out_refund_no"))
    if merchant_event is not None:
        try:
            await enqueue_notify(state.redis, Queues.of(state.settings), merchant_event)
        except RedisError:
            log.warning("callback.announce_failed")
    return _render(channel.ack_success())


async def _payout_callback(
    state: GatewayState, channel: Channel, account_id: str, event_id: str, payout: PayoutStatus
) -> web.Response:
    structlog.contextvars.bind_contextvars(
        withdrawal_no=payout.out_payout_no, channel_event=event_id
    )
    report = payout_report(account_id, payout, source_id=event_id)
    outcome, merchant_event = await apply_payout(state.db, report)
    log.info("callback.payout_applied", outcome=outcome, status=report.status)
    if outcome is PayoutOutcome.UNKNOWN:
        return _render(channel.ack_failure("unknown payout number"))
    if merchant_event is not None:
        try:
            await enqueue_notify(state.redis, Queues.of(state.settings), merchant_event)
        except RedisError:
            log.warning("callback.announce_failed")
    return _render(channel.ack_success())
