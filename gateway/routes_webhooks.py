"""Merchant API: register the endpoints that receive signed event webhooks; read an event's
delivery log; send an event again."""

from __future__ import annotations

import orjson
from aiohttp import web

from core.idempotency import IdempotencyClaim
from core.merchants import register_webhook_endpoint
from core.webhook_log import event_with_deliveries, resend
from gateway.idempotency import idempotent
from gateway.routes_payments import json_response, merchant_of, object_id
from gateway.schemas import WebhookEndpointCreate, parse_body
from workers.queue import Queues, enqueue_delivery

routes = web.RouteTableDef()


@routes.post("/v1/webhook_endpoints")
async def create_endpoint(request: web.Request) -> web.Response:
    """Answers the signing secret once (a replay under the same Idempotency-Key answers it
    again); payfront keeps it encrypted."""
    state, merchant = await merchant_of(request)
    body = await request.read()
    spec = parse_body(WebhookEndpointCreate, body)

    async def register(claim: IdempotencyClaim | None) -> web.Response:
        answer, replayed = await register_webhook_endpoint(
            state.db, state.vault, merchant_id=merchant.merchant_id, url=spec.url, claim=claim
        )
        extra = {"Idempotent-Replayed": "true"} if replayed else {}
        return json_response(201, answer, **extra)

    return await idempotent(
        request, state, merchant, body, register, scope="POST /v1/webhook_endpoints"
    )


@routes.get("/v1/events/{event_id}")
async def read_event(request: web.Request) -> web.Response:
    state, merchant = await merchant_of(request)
    event = await event_with_deliveries(
        state.db, merchant.merchant_id, object_id(request, "event_id")
    )
    return json_response(200, orjson.dumps(event))


@routes.post("/v1/events/{event_id}/resend")
async def resend_event(request: web.Request) -> web.Response:
    """Deliver the event again now to every enabled endpoint that is not still retrying it."""
    state, merchant = await merchant_of(request)
    event_id = object_id(request, "event_id")
    body = await request.read()

    async def write(claim: IdempotencyClaim | None) -> web.Response:
        due, answer, replayed = await resend(state.db, merchant.merchant_id, event_id, claim)
        # Committed as due now: the sweeper sends them even if these enqueues are lost.
        for delivery_id, attempt_no in due:
            await enqueue_delivery(state.redis, Queues.of(state.settings), delivery_id, attempt_no)
        extra = {"Idempotent-Replayed": "true"} if replayed else {}
        return json_response(202, answer, **extra)

    return await idempotent(
        request, state, merchant, body, write, scope=f"POST /v1/events/{event_id}/resend"
    )
