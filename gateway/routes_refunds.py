"""Merchant API: refund a paid payment, read refunds."""

from __future__ import annotations

import orjson
import structlog
from aiohttp import web
from redis.exceptions import RedisError

from core.idempotency import IdempotencyClaim
from core.merchants import MerchantAuth
from core.refunds import NewRefund, create_refund, get_refund, list_refunds
from gateway.idempotency import idempotent
from gateway.routes_payments import json_response, merchant_of, object_id
from gateway.schemas import RefundCreate, parse_body
from gateway.state import GatewayState
from workers.queue import Queues, enqueue_refund

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()


@routes.post("/v1/payments/{pay_no}/refunds")
async def create(request: web.Request) -> web.Response:
    state, merchant = await merchant_of(request)
    pay_no = object_id(request, "pay_no")
    body = await request.read()
    spec = parse_body(RefundCreate, body)
    new = NewRefund(
        pay_no=pay_no,
        amount_minor=spec.amount,
        reason=spec.reason,
        merchant_refund_no=spec.merchant_refund_no,
        metadata=spec.metadata,
    )
    return await idempotent(
        request,
        state,
        merchant,
        body,
        lambda claim: _create(state, merchant, new, claim),
        scope=f"POST /v1/payments/{pay_no}/refunds",
    )


async def _create(
    state: GatewayState, merchant: MerchantAuth, new: NewRefund, claim: IdempotencyClaim | None
) -> web.Response:
    created = await create_refund(state.db, merchant, new, claim=claim)
    if created.replayed:
        return json_response(created.status, created.body, **{"Idempotent-Replayed": "true"})
    structlog.contextvars.bind_contextvars(pay_no=new.pay_no, refund_no=created.refund_no)
    try:
        await enqueue_refund(state.redis, Queues.of(state.settings), created.refund_no)
    except RedisError:
        # Committed with its outbox row: the sweeper enqueues the job once Redis is back.
        log.warning("refund.enqueue_failed")
    return json_response(created.status, created.body)


@routes.get("/v1/payments/{pay_no}/refunds")
async def list_for_payment(request: web.Request) -> web.Response:
    state, merchant = await merchant_of(request)
    refunds = await list_refunds(state.db, merchant.merchant_id, object_id(request, "pay_no"))
    return json_response(200, orjson.dumps({"object": "list", "data": refunds}))


@routes.get("/v1/refunds/{refund_no}")
async def read(request: web.Request) -> web.Response:
    state, merchant = await merchant_of(request)
    refund = await get_refund(state.db, merchant.merchant_id, object_id(request, "refund_no"))
    return json_response(200, orjson.dumps(refund))
