"""Merchant API: a trade with its attempts; a new attempt at another channel; the merchant's
policies for money it was not asked for."""

from __future__ import annotations

import orjson
import structlog
from aiohttp import web
from redis.exceptions import RedisError

from channels.registry import CHANNELS
from core import receipts
from core.attempts import NewAttempt, create_attempt, get_trade
from core.errors import InvalidRequest
from core.idempotency import IdempotencyClaim
from core.merchants import MerchantAuth
from gateway.idempotency import idempotent
from gateway.routes_payments import json_response, merchant_of, object_id
from gateway.schemas import AttemptCreate, PoliciesPut, parse_body
from gateway.state import GatewayState
from workers.queue import Queues, enqueue_prepay

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()


@routes.get("/v1/trades/{trade_no}")
async def read_trade(request: web.Request) -> web.Response:
    state, merchant = await merchant_of(request)
    trade = await get_trade(state.db, merchant.merchant_id, object_id(request, "trade_no"))
    return json_response(200, orjson.dumps(trade))


@routes.post("/v1/trades/{trade_no}/attempts")
async def new_attempt(request: web.Request) -> web.Response:
    state, merchant = await merchant_of(request)
    trade_no = object_id(request, "trade_no")
    body = await request.read()
    spec = parse_body(AttemptCreate, body)
    channel = CHANNELS.get(spec.channel)
    if channel is None:
        raise InvalidRequest(
            "channel must be one of: " + ", ".join(sorted(CHANNELS)),
            code="channel_not_supported",
            param="channel",
        )
    if spec.method not in channel.methods:
        raise InvalidRequest(
            f"{spec.channel} methods are: " + ", ".join(sorted(channel.methods)),
            code="method_not_supported",
            param="method",
        )
    new = NewAttempt(trade_no, spec.channel, spec.method, spec.expires_in)
    return await idempotent(
        request,
        state,
        merchant,
        body,
        lambda claim: _create(state, merchant, new, claim),
        scope=f"POST /v1/trades/{trade_no}/attempts",
    )


async def _create(
    state: GatewayState, merchant: MerchantAuth, new: NewAttempt, claim: IdempotencyClaim | None
) -> web.Response:
    account_id = await state.accounts.lookup(state.db, merchant.merchant_id, new.channel)
    created = await create_attempt(
        state.db, merchant, new, claim=claim, channel_account_id=account_id
    )
    if created.replayed:
        return json_response(created.status, created.body, **{"Idempotent-Replayed": "true"})
    structlog.contextvars.bind_contextvars(pay_no=created.pay_no, trade_no=new.trade_no)
    try:
        await enqueue_prepay(state.redis, Queues.of(state.settings), created.pay_no)
    except RedisError:
        log.warning("prepay.enqueue_failed")  # the outbox row gets it enqueued later
    return json_response(created.status, created.body)


@routes.get("/v1/policies")
async def read_policies(request: web.Request) -> web.Response:
    state, merchant = await merchant_of(request)
    policies = await receipts.get_policies(state.db, merchant.merchant_id)
    return json_response(200, orjson.dumps(policies))


@routes.put("/v1/policies")
async def put_policies(request: web.Request) -> web.Response:
    state, merchant = await merchant_of(request)
    spec = parse_body(PoliciesPut, await request.read())
    await receipts.set_policies(
        state.db,
        merchant.merchant_id,
        partial_payment=spec.partial_payment,
        late_payment=spec.late_payment,
    )
    policies = await receipts.get_policies(state.db, merchant.merchant_id)
    return json_response(200, orjson.dumps(policies))
