"""Merchant API for what automation could not settle: anomalies (read, resolve) and
payments whose channel answer was lost (settle by hand). Every decision is audited."""

from __future__ import annotations

import contextlib

import orjson
from aiohttp import web
from redis.exceptions import RedisError

from core import pay as pay_core
from core.errors import InvalidRequest
from core.idempotency import IdempotencyClaim
from core.resolutions import Decision, get_anomaly, list_anomalies, resolve_anomaly
from gateway.idempotency import idempotent
from gateway.routes_payments import json_response, merchant_of, object_id
from gateway.schemas import AnomalyResolve, PaymentResolve, parse_body
from workers.queue import Queues, enqueue_notify

routes = web.RouteTableDef()
MAX_LIST = 100


@routes.get("/v1/anomalies")
async def list_(request: web.Request) -> web.Response:
    state, merchant = await merchant_of(request)
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
    state, merchant = await merchant_of(request)
    anomaly = await get_anomaly(state.db, merchant.merchant_id, object_id(request, "anomaly_id"))
    return json_response(200, orjson.dumps(anomaly))


@routes.post("/v1/anomalies/{anomaly_id}/resolve")
async def resolve(request: web.Request) -> web.Response:
    state, merchant = await merchant_of(request)
    anomaly_id = object_id(request, "anomaly_id")
    body = await request.read()
    spec = parse_body(AnomalyResolve, body)
    decision = Decision(spec.action, spec.actor, spec.reason, dict(spec.evidence))

    async def write(claim: IdempotencyClaim | None) -> web.Response:
        answer, replayed = await resolve_anomaly(state.db, merchant, anomaly_id, decision, claim)
        return json_response(200, answer, **_replay_header(replayed))

    return await idempotent(
        request, state, merchant, body, write, scope=f"POST /v1/anomalies/{anomaly_id}/resolve"
    )


@routes.post("/v1/payments/{pay_no}/resolve")
async def resolve_payment(request: web.Request) -> web.Response:
    state, merchant = await merchant_of(request)
    pay_no = object_id(request, "pay_no")
    body = await request.read()
    spec = parse_body(PaymentResolve, body)
    decision = Decision(spec.action, spec.actor, spec.reason, dict(spec.evidence))

    async def write(claim: IdempotencyClaim | None) -> web.Response:
        answer, event_id, replayed = await pay_core.resolve_unknown(
            state.db, merchant, pay_no, decision, claim
        )
        if event_id is not None:
            # Committed with its outbox row: the sweeper sends it if this enqueue is lost.
            with contextlib.suppress(RedisError):
                await enqueue_notify(state.redis, Queues.of(state.settings), event_id)
        return json_response(200, answer, **_replay_header(replayed))

    return await idempotent(
        request, state, merchant, body, write, scope=f"POST /v1/payments/{pay_no}/resolve"
    )


def _replay_header(replayed: bool) -> dict[str, str]:
    return {"Idempotent-Replayed": "true"} if replayed else {}
