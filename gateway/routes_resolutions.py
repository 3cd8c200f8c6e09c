"""Merchant API for what automation could not settle: anomalies (read, resolve) and
payments whose channel answer was lost (settle by hand). Every decision is audited."""

from __future__ import annotations

import orjson
from aiohttp import web

from core import pay as pay_core
from core.errors import InvalidRequest
from core.payments import get_payment
from core.resolutions import Decision, get_anomaly, list_anomalies, resolve_anomaly
from gateway.routes_payments import STATE, json_response, merchant_of, object_id
from gateway.schemas import AnomalyResolve, PaymentResolve, parse_body
from workers.queue import Queues, enqueue_notify

routes = web.RouteTableDef()
MAX_LIST = 100


@routes.get("/v1/anomalies")
async def list_(request: web.Request) -> web.Response:
    state = request.app[STATE]
    merchant = await merchant_of(request, state)
    status = request.query.get("status")
    if status not in (None, "open", "resolved"):
        raise InvalidRequest("status must be 'open' or 'resolved'", param="status")
    try:
        limit = int(request.query.get("limit", str(MAX_LIST)))
    except ValueError:
        raise InvalidRequest("limit must be an integer", param="limit") from None
    if not 1 <= limit <= MAX_LIST:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIST}", param="limit")
    found = await list_anomalies(
        state.db,
        merchant.merchant_id,
        status=status,
        pay_no=request.query.get("pay_no"),
        limit=limit,
    )
    return json_response(200, orjson.dumps({"object": "list", "data": found}))


@routes.get("/v1/anomalies/{anomaly_id}")
async def read(request: web.Request) -> web.Response:
    state = request.app[STATE]
    merchant = await merchant_of(request, state)
    anomaly = await get_anomaly(state.db, merchant.merchant_id, object_id(request, "anomaly_id"))
    return json_response(200, orjson.dumps(anomaly))


@routes.post("/v1/anomalies/{anomaly_id}/resolve")
async def resolve(request: web.Request) -> web.Response:
    state = request.app[STATE]
    merchant = await merchant_of(request, state)
    spec = parse_body(AnomalyResolve, await request.read())
    decision = Decision(spec.action, spec.actor, spec.reason, dict(spec.evidence))
    anomaly = await resolve_anomaly(state.db, merchant, object_id(request, "anomaly_id"), decision)
    return json_response(200, orjson.dumps(anomaly))


@routes.post("/v1/payments/{pay_no}/resolve")
async def resolve_payment(request: web.Request) -> web.Response:
    state = request.app[STATE]
    merchant = await merchant_of(request, state)
    pay_no = object_id(request, "pay_no")
    spec = parse_body(PaymentResolve, await request.read())
    decision = Decision(spec.action, spec.actor, spec.reason, dict(spec.evidence))
    moved = await pay_core.resolve_unknown(state.db, merchant, pay_no, decision)
    if moved.event_id is not None:
        # Committed with its outbox row: the sweeper sends it if this enqueue is lost.
        await enqueue_notify(state.redis, Queues.of(state.settings), moved.event_id)
    payment = await get_payment(state.db, merchant.merchant_id, pay_no)
    return json_response(200, orjson.dumps(payment))
