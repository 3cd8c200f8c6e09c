"""Callbacks that fail verification but name an order we hold.

Such a callback never changes anything. It may be a genuine one that we could not verify (a
rotated key, a proxy that altered the body), so it may ask the channel about that order, at
a bounded rate: the existing ``check_order`` job, at most once per order per
``PAYFRONT_UNVERIFIED_CHECK_INTERVAL_S`` and ``PAYFRONT_UNVERIFIED_CHECKS_PER_MINUTE`` per
channel account. A forger can thus make us query an order now and then, which is what the
sweeper does anyway, and no more.

The claimed order number is read without trusting it: from WeChat Pay's encrypted resource
only if it decrypts with the account's APIv3 key, from Alipay's form or Stripe's event as
sent.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping

import orjson
import structlog
from pydantic import ValidationError
from redis.exceptions import RedisError

from channels import wechatpay_wire
from channels.alipay_sign import MalformedForm, parse_notify_form
from channels.errors import CallbackRejected
from channels.stripe_wire import PAY_NO_METADATA_KEY
from channels.wechatpay_auth import decrypt_resource
from core import pay as pay_core
from core.metrics import UNVERIFIED_CALLBACKS
from core.states import PayStatus
from gateway.state import GatewayState
from workers.queue import Queues, enqueue_check

log = structlog.get_logger(__name__)
_PAY_NO = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def claimed_pay_no(channel: str, credentials: Mapping[str, str], body: bytes) -> str | None:
    """The order number an unverified callback claims to be about, or None."""
    try:
        if channel == "wechatpay":
            envelope = wechatpay_wire.load(wechatpay_wire.CallbackEnvelope, body)
            apiv3_key = credentials.get("apiv3_key", "").encode()
            if envelope is None or len(apiv3_key) != 32:
                return None
            claimed = orjson.loads(decrypt_resource(apiv3_key, envelope.resource))
            value = claimed.get("out_trade_no") if isinstance(claimed, dict) else None
        elif channel == "alipay":
            value = dict(parse_notify_form(body).fields).get("out_trade_no")
        elif channel == "stripe":
            event = orjson.loads(body)
            value = event["data"]["object"]["metadata"][PAY_NO_METADATA_KEY]
        else:
            return None
    except (
        CallbackRejected,
        MalformedForm,
        ValidationError,
        orjson.JSONDecodeError,
        KeyError,
        TypeError,
        ValueError,
    ):
        return None
    return value if isinstance(value, str) and _PAY_NO.match(value) else None


async def follow_up(
    state: GatewayState, channel: str, account_id: str, credentials: Mapping[str, str], body: bytes
) -> str:
    """Maybe enqueue a check of the claimed order; returns what was done (also counted).

    Best effort: whatever goes wrong here, the callback is still answered as refused.
    """
    try:
        outcome = await _follow_up(state, channel, account_id, credentials, body)
    except Exception:
        log.exception("callback.unverified_follow_up_failed", channel_account=account_id)
        outcome = "error"
    UNVERIFIED_CALLBACKS.labels(channel, outcome).inc()
    if outcome == "check_enqueued":
        log.warning("callback.unverified_check", channel_account=account_id)
    return outcome


async def _follow_up(
    state: GatewayState, channel: str, account_id: str, credentials: Mapping[str, str], body: bytes
) -> str:
    settings = state.settings
    if settings.unverified_checks_per_minute <= 0:
        return "off"
    pay_no = claimed_pay_no(channel, credentials, body)
    if pay_no is None:
        return "no_order_named"
    prefix = f"{settings.queue_name}:unverified:{account_id}"
    try:
        # Once per order per interval, decided before anything else is asked.
        first = await state.redis.set(
            f"{prefix}:order:{pay_no}",
            b"1",
            nx=True,
            px=max(1, int(settings.unverified_check_interval_s * 1000)),
        )
        if not first:
            return "throttled_order"
        pay = await pay_core.load_pay_order(state.db, pay_no)
        if (
            pay is None
            or pay.channel_account_id != account_id
            or pay.status != PayStatus.AWAITING_PAYMENT
        ):
            return "not_checkable"
        minute_key = f"{prefix}:minute:{int(time.time() // 60)}"
        async with state.redis.pipeline(transaction=False) as pipe:
            pipe.incr(minute_key)
            pipe.expire(minute_key, 120)
            count, _ = await pipe.execute()
        if int(count) > settings.unverified_checks_per_minute:
            return "throttled_account"
        await enqueue_check(state.redis, Queues.of(settings), pay_no)
    except RedisError:
        return "redis_unavailable"
    return "check_enqueued"
