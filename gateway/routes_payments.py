"""Merchant API: create and read payments; the shopper's token look-up (long-poll)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import replace

import orjson
import structlog
from aiohttp import web
from redis.exceptions import RedisError

from channels.registry import CHANNELS
from core import routing
from core.errors import AuthenticationFailed, InvalidRequest, NotFound
from core.idempotency import IdempotencyClaim, StoredAnswer, stored_answer
from core.merchants import MerchantAuth
from core.payments import NewPayment, create_payment, get_payment, get_token
from core.states import PAY_WAITING
from gateway.idempotency import idempotent
from gateway.ratelimit import check_rate
from gateway.schemas import PaymentCreate, RechargeCreate, parse_body
from gateway.state import LANES, GatewayState
from workers.queue import Queues, enqueue_prepay

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()
FALLBACK_POLL_S = 1.0


# Our pay numbers and tokens are base36 / base64url: anything else names nothing, and is
# answered without asking the database.
_OBJECT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_API_KEY = re.compile(r"^sk_(test|live)_[A-Za-z0-9_-]{1,200}$")


def object_id(request: web.Request, name: str) -> str:
    value = request.match_info[name]
    if not _OBJECT_ID.match(value):
        raise NotFound(f"no {name} {value!r}", param=name)
    return value


def json_response(status: int, body: bytes, **headers: str) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


async def merchant_of(request: web.Request) -> tuple[GatewayState, MerchantAuth]:
    """The merchant an API key names, and the mode it works in: a ``sk_test_`` key is
    looked up in, and works only on, the shadow database; a ``sk_live_`` key the live one."""
    header = request.headers.get("Authorization", "")
    scheme, _, api_key = header.partition(" ")
    if scheme.lower() != "bearer" or not api_key.startswith(("sk_test_", "sk_live_")):
        raise AuthenticationFailed("provide a secret API key as 'Authorization: Bearer sk_...'")
    api_key = api_key.strip()
    if not _API_KEY.match(api_key):
        # Our keys are base64url; anything else (bytes over 0x7f included) names no key.
        raise AuthenticationFailed("invalid API key")
    state = request.app[LANES].for_api_key(api_key)
    merchant = await state.auth.lookup(state.db, api_key)
    if merchant is None or merchant.livemode != (state.settings.mode == "live"):
        raise AuthenticationFailed("invalid API key")
    structlog.contextvars.bind_contextvars(merchant_id=merchant.merchant_id)
    await check_rate(state.redis, merchant.merchant_id, state.settings.rate_limit_per_s)
    return state, merchant


@routes.post("/v1/payments")
async def create(request: web.Request) -> web.Response:
    return await _start(request, PaymentCreate, scope="")


@routes.post("/v1/recharges")
async def create_recharge(request: web.Request) -> web.Response:
    """A payment that tops up the wallet of ``owner`` when paid (core.wallets)."""
    return await _start(request, RechargeCreate, scope="POST /v1/recharges")


async def _start(request: web.Request, model: type[PaymentCreate], *, scope: str) -> web.Response:
    state, merchant = await merchant_of(request)
    body = await request.read()
    spec = parse_body(model, body)
    _check_channel_can_take(spec)
    new = NewPayment(
        amount_minor=spec.amount,
        currency=spec.currency,
        merchant_order_no=spec.merchant_order_no,
        # Empty: the routing rules choose (in _create, so a replay is not routed again).
        channel=spec.channel or "",
        method=spec.method or "",
        description=spec.description,
        expires_in_s=spec.expires_in,
        metadata=spec.metadata,
        payer_id=spec.payer_id,
        client_ip=str(spec.client_ip) if spec.client_ip is not None else None,
        recharge_owner=spec.owner if isinstance(spec, RechargeCreate) else None,
    )
    return await idempotent(
        request,
        state,
        merchant,
        body,
        lambda claim: _create(state, merchant, new, claim),
        scope=scope,
    )


def _check_channel_can_take(spec: PaymentCreate) -> None:
    """Refuse, before anything is written, what the named channel cannot do."""
    if spec.channel is None:
        if spec.method is not None and spec.method not in routing.KINDS:
            raise InvalidRequest(
                "without a channel, method names a kind of payment: " + ", ".join(routing.KINDS),
                code="method_not_supported",
                param="method",
            )
        return
    if spec.method is None:
        raise InvalidRequest(
            "method: required when channel is given", code="parameter_invalid", param="method"
        )
    channel = CHANNELS.get(spec.channel)
    if channel is None:
        known = ", ".join(sorted(CHANNELS))
        raise InvalidRequest(
            f"channel must be one of: {known}", code="channel_not_supported", param="channel"
        )
    if spec.method not in channel.methods:
        known = ", ".join(sorted(channel.methods))
        raise InvalidRequest(
            f"{spec.channel} methods are: {known}", code="method_not_supported", param="method"
        )
    if spec.currency not in channel.currencies:
        raise InvalidRequest(
            f"{spec.channel} does not accept {spec.currency}",
            code="currency_not_supported",
            param="currency",
        )


async def _create(
    state: GatewayState, merchant: MerchantAuth, new: NewPayment, claim: IdempotencyClaim | None
) -> web.Response:
    try:
        new, account_id = await _route(state, merchant, new)
    except (routing.NoRoute, routing.ChannelUnavailable):
        # Refused before writing; but a retry of a request that was answered before gets
        # that answer, as with any Idempotency-Key.
        answer = await _stored_answer(state, merchant, claim)
        if answer is None:
            raise
        return json_response(answer.status, answer.body, **{"Idempotent-Replayed": "true"})
    created = await create_payment(
        state.db, merchant, new, claim=claim, channel_account_id=account_id
    )
    if created.replayed:
        return json_response(created.status, created.body, **{"Idempotent-Replayed": "true"})
    structlog.contextvars.bind_contextvars(pay_no=created.pay_no)
    try:
        await enqueue_prepay(state.redis, Queues.of(state.settings), created.pay_no)
    except RedisError:
        # The order and its outbox row are committed: a worker's sweeper enqueues the job
        # once Redis is back. The merchant gets its token now either way.
        log.warning("prepay.enqueue_failed")
    return json_response(created.status, created.body)


async def _route(
    state: GatewayState, merchant: MerchantAuth, new: NewPayment
) -> tuple[NewPayment, str]:
    """The channel account (and, when routed, channel and method) of a new payment, from
    in-process caches only; an account whose circuit is open is skipped or refused fast."""
    if new.channel:
        account_id = await state.accounts.lookup(state.db, merchant.merchant_id, new.channel)
        if state.circuits.is_open(account_id):
            raise routing.ChannelUnavailable(
                f"the {new.channel} channel account is failing; retry in "
                f"{state.circuits.wait_s(account_id):.0f}s or name another channel",
                param="channel",
            )
        return new, account_id
    rules = await state.routing.rules(state.db, merchant.merchant_id)
    route = routing.choose(
        rules,
        currency=new.currency,
        amount_minor=new.amount_minor,
        kind=new.method or None,
        is_open=state.circuits.is_open,
    )
    return replace(new, channel=route.channel, method=route.method), route.channel_account_id


async def _stored_answer(
    state: GatewayState, merchant: MerchantAuth, claim: IdempotencyClaim | None
) -> StoredAnswer | None:
    if claim is None:
        return None
    async with state.db.read() as conn:
        return await conn.run_sync(stored_answer, merchant.merchant_id, claim)


@routes.get("/v1/payments/{pay_no}")
async def read(request: web.Request) -> web.Response:
    state, merchant = await merchant_of(request)
    payment = await get_payment(state.db, merchant.merchant_id, object_id(request, "pay_no"))
    return json_response(200, orjson.dumps(payment))


@routes.get("/v1/tokens/{token}")
async def token(request: web.Request) -> web.Response:
    """Possession of the token is the credential: no API key (the shopper's front-end)."""
    token_value = object_id(request, "token")
    state = request.app[LANES].for_token(token_value)
    try:
        wait = float(request.query.get("wait", "0"))
    except ValueError:
        raise InvalidRequest("wait must be a number of seconds", param="wait") from None
    if not 0 <= wait <= state.settings.token_max_wait_s:
        raise InvalidRequest(
            f"wait must be between 0 and {state.settings.token_max_wait_s:g}", param="wait"
        )
    status, view = await get_token(state.db, token_value)
    deadline = time.monotonic() + wait
    while status in PAY_WAITING and time.monotonic() < deadline:
        with state.hub.waiter(view["pay_no"]) as woken:
            # Read again after subscribing, so a change in between is not missed.
            status, view = await get_token(state.db, token_value)
            if status not in PAY_WAITING:
                break
            # Without the Redis subscription, re-read every second instead of waiting blind.
            timeout = deadline - time.monotonic()
            if not state.hub.connected:
                timeout = min(timeout, FALLBACK_POLL_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), timeout)
        status, view = await get_token(state.db, token_value)
    return json_response(
        200, orjson.dumps(view), **{"Access-Control-Allow-Origin": "*", "Cache-Control": "no-store"}
    )
