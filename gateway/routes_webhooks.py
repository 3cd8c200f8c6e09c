"""Merchant API: register the endpoints that receive signed event webhooks; read an event's
delivery log; send an event again."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from aiohttp import web

from core.merchants import add_webhook_endpoint
from core.views import iso
from core.webhook_log import event_with_deliveries, resend
from gateway.routes_payments import STATE, json_response, merchant_of, object_id
from gateway.schemas import WebhookEndpointCreate, parse_body
from workers.queue import Queues, enqueue_delivery

routes = web.RouteTableDef()


@routes.post("/v1/webhook_endpoints")
async def create_endpoint(request: web.Request) -> web.Response:
    """Answers the signing secret once; payfront keeps it encrypted."""
    state = request.app[STATE]
    merchant = await merchant_of(request, state)
    spec = parse_body(WebhookEndpointCreate, await request.read())
    endpoint_id, secret = await add_webhook_endpoint(
        state.db, state.vault, merchant_id=merchant.merchant_id, url=spec.url
    )
    body = {
        "object": "webhook_endpoint",
        "id": endpoint_id,
        "url": spec.url,
        "secret": secret,
        "enabled": True,
        "created_at": iso(datetime.now(UTC)),
    }
    return web.Response(status=201, body=orjson.dumps(body), content_type="application/json")


@routes.get("/v1/events/{event_id}")
async def read_event(request: web.Request) -> web.Response:
    state = request.app[STATE]
    merchant = await merchant_of(request, state)
    event = await event_with_deliveries(
        state.db, merchant.merchant_id, object_id(request, "event_id")
    )
    return json_response(200, orjson.dumps(event))


@routes.post("/v1/events/{event_id}/resend")
async def resend_event(request: web.Request) -> web.Response:
    """Deliver the event again now to every enabled endpoint that is not still retrying it."""
    state = request.app[STATE]
    merchant = await merchant_of(request, state)
    event_id = object_id(request, "event_id")
    due = await resend(state.db, merchant.merchant_id, event_id)
    # Committed as due now: the sweeper sends them even if these enqueues are lost.
    for delivery_id, attempt_no in due:
        await enqueue_delivery(state.redis, Queues.of(state.settings), delivery_id, attempt_no)
    event = await event_with_deliveries(state.db, merchant.merchant_id, event_id)
    return json_response(202, orjson.dumps(event))
