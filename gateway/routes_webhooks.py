"""Merchant API: register the endpoints that receive signed event webhooks."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from aiohttp import web

from core.merchants import add_webhook_endpoint
from core.views import iso
from gateway.routes_payments import STATE, merchant_of
from gateway.schemas import WebhookEndpointCreate, parse_body

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
