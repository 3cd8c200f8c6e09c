"""Merchant API for reconciliation: one review list of differences (from daily statement
runs and, at once, from callbacks and queries), their resolution (audited), and the runs'
summaries."""

from __future__ import annotations

import re
from datetime import date

import orjson
from aiohttp import web

from core.errors import InvalidRequest
from core.idempotency import IdempotencyClaim
from core.reconcile.review import (
    ReviewFilter,
    check_filter,
    get_difference,
    list_differences,
    resolve_difference,
)
from core.reconcile.runs import list_runs
from core.resolutions import Decision
from gateway.idempotency import idempotent
from gateway.routes_payments import json_response, merchant_of, object_id
from gateway.schemas import AnomalyResolve, parse_body

routes = web.RouteTableDef()
MAX_LIST = 100
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text) if _DATE.match(text) else _bad_day()
    except ValueError:
        return _bad_day()


def _bad_day() -> date:
    raise InvalidRequest("date must be a day YYYY-MM-DD", code="parameter_invalid", param="date")


def _limit(request: web.Request) -> int:
    try:
        return int(request.query.get("limit", str(MAX_LIST)))
    except ValueError:
        raise InvalidRequest("limit must be an integer", param="limit") from None


def _account(request: web.Request) -> str | None:
    account = request.query.get("channel_account")
    if account is not None and not 1 <= len(account) <= 64:
        raise InvalidRequest("channel_account is 1 to 64 characters", param="channel_account")
    return account


@routes.get("/v1/reconciliation/differences")
async def list_(request: web.Request) -> web.Response:
    state, merchant = await merchant_of(request)
    query = request.query
    wanted = ReviewFilter(
        status=query.get("status"),
        source=query.get("source"),
        kind=query.get("kind"),
        business_date=_day(query["date"]) if "date" in query else None,
        channel_account_id=_account(request),
        limit=_limit(request),
    )
    check_filter(wanted.status, wanted.source, wanted.kind, wanted.limit)
    found = await list_differences(state.db, merchant.merchant_id, wanted)
    return json_response(200, orjson.dumps({"object": "list", "data": found}))


@routes.get("/v1/reconciliation/differences/{difference_id}")
async def read(request: web.Request) -> web.Response:
    state, merchant = await merchant_of(request)
    found = await get_difference(
        state.db, merchant.merchant_id, object_id(request, "difference_id")
    )
    return json_response(200, orjson.dumps(found))


@routes.post("/v1/reconciliation/differences/{difference_id}/resolve")
async def resolve(request: web.Request) -> web.Response:
    state, merchant = await merchant_of(request)
    difference_id = object_id(request, "difference_id")
    body = await request.read()
    spec = parse_body(AnomalyResolve, body)
    decision = Decision(spec.action, spec.actor, spec.reason, dict(spec.evidence))

    async def write(claim: IdempotencyClaim | None) -> web.Response:
        answer, replayed = await resolve_difference(
            state.db, merchant, difference_id, decision, claim
        )
        headers = {"Idempotent-Replayed": "true"} if replayed else {}
        return json_response(200, answer, **headers)

    return await idempotent(
        request,
        state,
        merchant,
        body,
        write,
        scope=f"POST /v1/reconciliation/differences/{difference_id}/resolve",
    )


@routes.get("/v1/reconciliation/runs")
async def runs(request: web.Request) -> web.Response:
    state, merchant = await merchant_of(request)
    limit = _limit(request)
    if not 1 <= limit <= MAX_LIST:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIST}", param="limit")
    found = await list_runs(
        state.db,
        merchant.merchant_id,
        business_date=_day(request.query["date"]) if "date" in request.query else None,
        channel_account_id=_account(request),
        limit=limit,
    )
    return json_response(200, orjson.dumps({"object": "list", "data": found}))
