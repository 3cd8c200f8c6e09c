"""The sandbox-only admin API of the Alipay emulator (mounted under ``/sandbox/alipay``):
register apps, play the buyer, inspect orders and their notifications, set faults.

Plain JSON, unsigned and unauthenticated: it exists only in the sandbox.
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from mock_channels.alipay_models import PayOrder, RegisterApp
from mock_channels.alipay_payouts import TopUp
from mock_channels.alipay_sandbox import ALIPAY_SANDBOX, AdminError
from mock_channels.common import BodyParser, error_middleware, utc_now
from mock_channels.faults import FaultPlan


def _invalid_body(issues: list[dict[str, str]]) -> AdminError:
    return AdminError(400, "INVALID_PARAMETER", f"invalid request body: {issues}")


_parse = BodyParser(_invalid_body)


admin_errors = error_middleware(
    AdminError,
    lambda exc: web.json_response({"code": exc.code, "message": exc.message}, status=exc.status),
)


async def register_app(request: web.Request) -> web.Response:
    body = await _parse(request, RegisterApp)
    return web.json_response(await request.config_dict[ALIPAY_SANDBOX].register_app(body))


async def pay_order(request: web.Request) -> web.Response:
    body = await _parse(request, PayOrder)
    sandbox = request.config_dict[ALIPAY_SANDBOX]
    return web.json_response(sandbox.pay(request.match_info["out_trade_no"], body, utc_now()))


async def get_order(request: web.Request) -> web.Response:
    sandbox = request.config_dict[ALIPAY_SANDBOX]
    view = sandbox.order_view(
        request.query.get("app_id"), request.match_info["out_trade_no"], utc_now()
    )
    return web.json_response(view)


async def download_bill(request: web.Request) -> web.Response:
    """The file behind a ``bill_download_url`` (Alipay's link: unsigned, valid 30 seconds)."""
    sandbox = request.config_dict[ALIPAY_SANDBOX]
    bill = sandbox.bills.take(request.query.get("fileId", ""), utc_now())
    if bill is None:
        return web.Response(status=404, text="file not found or link expired")
    return web.Response(
        body=bill.data,
        content_type="application/zip",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(bill.name)}"},
    )


async def cert_mode(request: web.Request) -> web.Response:
    """Put an app in public-key-certificate mode: its certificates and SNs."""
    sandbox = request.config_dict[ALIPAY_SANDBOX]
    app = sandbox.apps.get(request.match_info["app_id"])
    if app is None:
        raise AdminError(404, "APP_NOT_EXIST", "no such app")
    return web.json_response(sandbox.payouts.cert_mode(app, sandbox.key.public_key()))


async def top_up(request: web.Request) -> web.Response:
    body = await _parse(request, TopUp)
    sandbox = request.config_dict[ALIPAY_SANDBOX]
    app_id = request.match_info["app_id"]
    if app_id not in sandbox.apps:
        raise AdminError(404, "APP_NOT_EXIST", "no such app")
    sandbox.payouts.top_ups[app_id] = sandbox.payouts.top_ups.get(app_id, 0) + body.amount
    return web.json_response({"app_id": app_id, "balance": sandbox.payouts.balance(app_id)})


async def get_balance(request: web.Request) -> web.Response:
    sandbox = request.config_dict[ALIPAY_SANDBOX]
    app_id = request.match_info["app_id"]
    return web.json_response({"app_id": app_id, "balance": sandbox.payouts.balance(app_id)})


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
    app.router.add_get("/downloadBillFile.resource", download_bill)
    app.router.add_post("/apps/{app_id}/cert-mode", cert_mode)
    app.router.add_post("/apps/{app_id}/balance", top_up)
    app.router.add_get("/apps/{app_id}/balance", get_balance)
    app.router.add_get("/faults/{app_id}", get_faults)
    app.router.add_put("/faults/{app_id}", put_faults)
    app.router.add_delete("/faults/{app_id}", delete_faults)
    return app
