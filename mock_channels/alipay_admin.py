"""The sandbox-only admin API of the Alipay emulator (mounted under ``/sandbox/alipay``):
register apps, play the buyer, inspect orders and their notifications, set faults.

Plain JSON, unsigned and unauthenticated: it exists only in the sandbox.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, ValidationError

from mock_channels.alipay_models import PayOrder, RegisterApp
from mock_channels.alipay_sandbox import ALIPAY_SANDBOX, AdminError
from mock_channels.faults import FaultPlan

_Body = TypeVar("_Body", bound=BaseModel)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _parse(request: web.Request, model: type[_Body]) -> _Body:
    try:
        return model.model_validate_json(await request.read())
    except ValidationError as exc:
        issues: list[dict[str, Any]] = [
            {"field": ".".join(map(str, e["loc"])), "issue": e["msg"]}
            for e in exc.errors(include_url=False, include_input=False, include_context=False)
        ]
        raise AdminError(400, "INVALID_PARAMETER", f"invalid request body: {issues}") from None


@web.middleware
async def admin_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except AdminError as exc:
        return web.json_response({"code": exc.code, "message": exc.message}, status=exc.status)


async def register_app(request: web.Request) -> web.Response:
    body = await _parse(request, RegisterApp)
    return web.json_response(await request.config_dict[ALIPAY_SANDBOX].register_app(body))


async def pay_order(request: web.Request) -> web.Response:
    body = await _parse(request, PayOrder)
    sandbox = request.config_dict[ALIPAY_SANDBOX]
    return web.json_response(sandbox.pay(request.match_info["out_trade_no"], body, _now()))


async def get_order(request: web.Request) -> web.Response:
    sandbox = request.config_dict[ALIPAY_SANDBOX]
    view = sandbox.order_view(
        request.query.get("app_id"), request.match_info["out_trade_no"], _now()
    )
    return web.json_response(view)


async def get_faults(request: web.Request) -> web.Response:
    sandbox = request.config_dict[ALIPAY_SANDBOX]
    return web.json_response(sandbox.faults.plan_for(request.match_info["app_id"]).model_dump())


async def put_faults(request: web.Request) -> web.Response:
    plan = await _parse(request, FaultPlan)
    request.config_dict[ALIPAY_SANDBOX].faults.set_plan(request.match_info["app_id"], plan)
    return web.json_response(plan.model_dump())


async def delete_faults(request: web.Request) -> web.Response:
    request.config_dict[ALIPAY_SANDBOX].faults.clear(request.match_info["app_id"])
    return web.Response(status=204)


def build_admin_app() -> web.Application:
    app = web.Application(middlewares=[admin_errors])
    app.router.add_post("/apps", register_app)
    app.router.add_post("/orders/{out_trade_no}/pay", pay_order)
    app.router.add_get("/orders/{out_trade_no}", get_order)
    app.router.add_get("/faults/{app_id}", get_faults)
    app.router.add_put("/faults/{app_id}", put_faults)
    app.router.add_delete("/faults/{app_id}", delete_faults)
    return app
