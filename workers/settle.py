"""What prepay and the compensation job share: asking the channel about one order, applying
a payment it reports, and announcing a change after its commit."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Row

from channels.base import Channel, HttpRequest, HttpResponse, TradeStatus
from channels.registry import account_identity
from channels.transport import send
from core import context, wakeups
from core import pay as pay_core
from workers.context import WorkerContext
from workers.queue import enqueue_notify
from workers.reports import payment_report


def now() -> datetime:
    return datetime.now(UTC)


async def call(w: WorkerContext, request: HttpRequest) -> HttpResponse:
    """Send one channel request, carrying the payment's trace."""
    return await send(w.http, request, traceparent=context.outbound_traceparent())


async def query(w: WorkerContext, channel: Channel, pay: Row[Any]) -> TradeStatus:
    """The channel's view of one order (raises ``ChannelOrderNotFound`` and other errors)."""
    request = channel.build_query(pay.pay_no, channel_trade_no=pay.channel_trade_no, now=now())
    return channel.parse_query(await call(w, request), now=now())


async def apply_paid(w: WorkerContext, pay: Row[Any], status: TradeStatus) -> str:
    """Apply a payment the channel reported on query, cross-checked like a callback."""
    _, credentials = await w.channels.get(pay.channel_account_id)
    report = payment_report(
        pay.channel_account_id,
        status,
        source_id=f"query:{pay.pay_no}",
        expected_ids=account_identity(pay.channel, credentials),
    )
    outcome, event_id = await pay_core.apply_payment(w.db, report)
    await announce(w, pay.pay_no, event_id)
    return f"paid_at_channel:{outcome}"


async def announce(w: WorkerContext, pay_no: str, event_id: str | None) -> None:
    """After a commit: wake long-polls on the token, and send the event's webhooks now
    (the outbox row would get them sent by the sweeper anyway)."""
    await wakeups.publish(w.redis, pay_no)
    if event_id is not None:
        await enqueue_notify(w.redis, w.settings.queue_name, event_id)
