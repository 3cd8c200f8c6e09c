"""The sandbox-only admin API of the WeChat emulator (mounted under ``/sandbox/wechatpay``):
register merchants, play the shopper, inspect orders and their callbacks, set faults.

Plain JSON, unsigned and unauthenticated: it exists only in the sandbox.
"""

from __future__ import annotations

from aiohttp import web

from mock_channels import wechatpay_aftersale as aftersale
from mock_channels.common import BodyParser, error_middleware, utc_now
from mock_channels.faults import FaultPlan
from mock_channels.statement_edits import StatementEdit
from mock_channels.wechatpay_errors import ApiError, json_response
from mock_channels.wechatpay_models import PayOrder, RefundMode, RegisterMerchant, SettleRefund
from mock_channels.wechatpay_payouts import (
    BillState,
    ConfirmTransfer,
    OperatingBalance,
    Transfer,
    TransferMode,
)
from mock_channels.wechatpay_sandbox import WECHATPAY_SANDBOX


def _invalid_body(issues: list[dict[str, str]]) -> ApiError:
    return ApiError(400, "PARAM_ERROR", "invalid request body", {"errors": issues})


_parse = BodyParser(_invalid_body)


admin_errors = error_middleware(ApiError, lambda exc: json_response(exc.status, exc.payload()))


async def register_merchant(request: web.Request) -> web.Response:
    body = await _parse(request, RegisterMerchant)
    registered = await request.config_dict[WECHATPAY_SANDBOX].register_merchant(body)
    return json_response(200, dict(registered))


async def pay_order(request: web.Request) -> web.Response:
    body = await _parse(request, PayOrder)
    sandbox = request.config_dict[WECHATPAY_SANDBOX]
    return json_response(200, sandbox.pay(request.match_info["out_trade_no"], body, utc_now()))


async def get_order(request: web.Request) -> web.Response:
    mchid = request.query.get("mchid")
    sandbox = request.config_dict[WECHATPAY_SANDBOX]
    return json_response(
        200, sandbox.order_view(mchid, request.match_info["out_trade_no"], utc_now())
    )


async def get_refund(request: web.Request) -> web.Response:
    sandbox = request.config_dict[WECHATPAY_SANDBOX]
    view = aftersale.refund_view(
        sandbox, request.query.get("mchid"), request.match_info["out_refund_no"], utc_now()
    )
    return json_response(200, view)


async def settle_refund(request: web.Request) -> web.Response:
    body = await _parse(request, SettleRefund)
    sandbox = request.config_dict[WECHATPAY_SANDBOX]
    view = aftersale.settle_refund(sandbox, request.match_info["out_refund_no"], body, utc_now())
    return json_response(200, view)


async def put_refund_mode(request: web.Request) -> web.Response:
    body = await _parse(request, RefundMode)
    sandbox = request.config_dict[WECHATPAY_SANDBOX]
    return json_response(200, aftersale.set_refund_mode(sandbox, request.match_info["mchid"], body))


def _admin_transfer(request: web.Request, mchid: str | None) -> Transfer:
    sandbox = request.config_dict[WECHATPAY_SANDBOX]
    out_bill_no = request.match_info["out_bill_no"]
    found = (
        [t for t in [sandbox.transfers.get(mchid, out_bill_no)] if t is not None]
        if mchid
        else sandbox.transfers.find(out_bill_no)
    )
    if len(found) > 1:
        raise ApiError(409, "AMBIGUOUS", "several merchants have this bill; give mchid")
    if not found:
        raise ApiError(404, "NOT_FOUND", "no such transfer bill")
    return found[0]


async def get_transfer(request: web.Request) -> web.Response:
    transfer = _admin_transfer(request, request.query.get("mchid"))
    return json_response(200, transfer.admin_view())


async def confirm_transfer(request: web.Request) -> web.Response:
    """The payee confirms (or fails to receive) a WAIT_USER_CONFIRM bill; its callback goes."""
    body = await _parse(request, ConfirmTransfer)
    sandbox = request.config_dict[WECHATPAY_SANDBOX]
    transfer = _admin_transfer(request, body.mchid)
    outcome = BillState.SUCCESS if body.outcome == "success" else BillState.FAIL
    merchant = sandbox.merchants[transfer.mchid]
    sandbox.transfers.settle(merchant, transfer, outcome, utc_now(), body.fail_reason)
    return json_response(200, transfer.admin_view())


async def get_balance(request: web.Request) -> web.Response:
    sandbox = request.config_dict[WECHATPAY_SANDBOX]
    mchid = request.match_info["mchid"]
    return json_response(
        200, {"mchid": mchid, "available": sandbox.transfers.balances.get(mchid, 0)}
    )


async def put_balance(request: web.Request) -> web.Response:
    body = await _parse(request, OperatingBalance)
    sandbox = request.config_dict[WECHATPAY_SANDBOX]
    mchid = request.match_info["mchid"]
    if mchid not in sandbox.merchants:
        raise ApiError(404, "MCH_NOT_EXISTS", "no such merchant")
    sandbox.transfers.balances[mchid] = body.available
    return json_response(200, {"mchid": mchid, "available": body.available})


async def put_transfer_mode(request: web.Request) -> web.Response:
    body = await _parse(request, TransferMode)
    sandbox = request.config_dict[WECHATPAY_SANDBOX]
    mchid = request.match_info["mchid"]
    if mchid not in sandbox.merchants:
        raise ApiError(404, "MCH_NOT_EXISTS", "no such merchant")
    sandbox.transfers.modes[mchid] = body.payee
    return json_response(200, {"mchid": mchid, "payee": body.payee})


async def get_faults(request: web.Request) -> web.Response:
    sandbox = request.config_dict[WECHATPAY_SANDBOX]
    return json_response(200, sandbox.faults.plan_for(request.match_info["mchid"]).model_dump())


async def put_faults(request: web.Request) -> web.Response:
    plan = await _parse(request, FaultPlan)
    request.config_dict[WECHATPAY_SANDBOX].faults.set_plan(request.match_info["mchid"], plan)
    return json_response(200, plan.model_dump())


async def delete_faults(request: web.Request) -> web.Response:
    request.config_dict[WECHATPAY_SANDBOX].faults.clear(request.match_info["mchid"])
    return json_response(204, None)


async def put_statement_edit(request: web.Request) -> web.Response:
    """Change (or leave out) one order's or refund's line on the merchant's trade bills."""
    edit = await _parse(request, StatementEdit)
    sandbox = request.config_dict[WECHATPAY_SANDBOX]
    mchid, number = request.match_info["mchid"], request.match_info["number"]
    if mchid not in sandbox.merchants:
        raise ApiError(404, "MCH_NOT_EXISTS", "no such merchant")
    sandbox.statement_edits.set(mchid, number, edit)
    return json_response(200, {"mchid": mchid, "number": number, **edit.model_dump()})


async def delete_statement_edit(request: web.Request) -> web.Response:
    sandbox = request.config_dict[WECHATPAY_SANDBOX]
    sandbox.statement_edits.clear(request.match_info["mchid"], request.match_info["number"])
    return json_response(204, None)


def build_admin_app() -> web.Application:
    app = web.Application(middlewares=[admin_errors])
    app.router.add_post("/merchants", register_merchant)
    app.router.add_post("/orders/{out_trade_no}/pay", pay_order)
    app.router.add_get("/orders/{out_trade_no}", get_order)
    app.router.add_get("/refunds/{out_refund_no}", get_refund)
    app.router.add_post("/refunds/{out_refund_no}/settle", settle_refund)
    app.router.add_put("/refund-mode/{mchid}", put_refund_mode)
    app.router.add_get("/transfers/{out_bill_no}", get_transfer)
    app.router.add_post("/transfers/{out_bill_no}/confirm", confirm_transfer)
    app.router.add_get("/balance/{mchid}", get_balance)
    app.router.add_put("/balance/{mchid}", put_balance)
    app.router.add_put("/transfer-mode/{mchid}", put_transfer_mode)
    app.router.add_get("/faults/{mchid}", get_faults)
    app.router.add_put("/faults/{mchid}", put_faults)
    app.router.add_delete("/faults/{mchid}", delete_faults)
    app.router.add_put("/statement-edits/{mchid}/{number}", put_statement_edit)
    app.router.add_delete("/statement-edits/{mchid}/{number}", delete_statement_edit)
    return app
