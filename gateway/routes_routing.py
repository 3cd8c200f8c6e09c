"""Merchant API: read and replace the routing table (docs/routing.md)."""

from __future__ import annotations

import orjson
from aiohttp import web

from channels.registry import CHANNELS
from core import routing
from gateway.routes_payments import json_response, merchant_of
from gateway.schemas import RoutingRulesPut, parse_body

routes = web.RouteTableDef()


def _answer(rules: tuple[routing.Rule, ...]) -> web.Response:
    body = {"object": "routing_rules", "rules": [routing.rule_object(rule) for rule in rules]}
    return json_response(200, orjson.dumps(body))


@routes.get("/v1/routing_rules")
async def read(request: web.Request) -> web.Response:
    state, merchant = await merchant_of(request)
    return _answer(await routing.load_rules(state.db, merchant.merchant_id, capabilities=CHANNELS))


@routes.put("/v1/routing_rules")
async def replace(request: web.Request) -> web.Response:
    """Replace the whole table (a PUT is idempotent by nature: no Idempotency-Key needed)."""
    state, merchant = await merchant_of(request)
    spec = parse_body(RoutingRulesPut, await request.read())
    specs = [routing.RuleSpec(**rule.model_dump()) for rule in spec.rules]
    rules = await routing.replace_rules(
        state.db, merchant.merchant_id, specs, capabilities=CHANNELS
    )
    # This gateway routes by the new table at once; the others within the cache's TTL.
    state.routing.put(merchant.merchant_id, rules)
    return _answer(rules)
