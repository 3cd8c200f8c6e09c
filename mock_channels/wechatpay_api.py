"""The WeChat Pay API v3 routes (mounted under ``/v3``): what ``wechatpayv3`` and payfront's
adapter call. One middleware authenticates, injects faults and signs every answer."""

from __future__ import annotations

import datetime as dt
import logging
import secrets

from aiohttp import web
from aiohttp.typedefs import Handler

from mock_channels import wechatpay_aftersale as aftersale
from mock_channels.wechatpay_auth import authenticate
from mock_channels.wechatpay_errors import ApiError, json_response
from mock_channels.wechatpay_sandbox import WECHATPAY_SANDBOX, WeChatPaySandbox
from mock_channels.wechatpay_state import Merchant

logger = logging.getLogger(__name__)

_MERCHANT = web.RequestKey("wechatpay_merchant", Merchant)
# Bill files are not signed ("该接口响应的信息请求头中不包含微信接口响应的签名值").
UNSIGNED_ROUTES = frozenset({"billdownload"})


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _merchant(request: web.Request) -> Merchant:
    return request[_MERCHANT]


def _signed(
    sandbox: WeChatPaySandbox, response: web.Response, merchant: Merchant | None
) -> web.Response:
    body = response.body if isinstance(response.body, bytes) else b""
    response.headers.update(sandbox.signature_headers(body, merchant))
    response.headers["Request-ID"] = secrets.token_hex(16).upper()
    return response


def _from_http_exception(exc: web.HTTPException) -> web.Response:
    code = "NOT_FOUND" if exc.status == 404 else "INVALID_REQUEST"
    return json_response(exc.status, {"code": code, "message": exc.reason})


@web.middleware
async def v3_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    sandbox = request.config_dict[WECHATPAY_SANDBOX]
    body = await request.read()
    try:
        merchant = authenticate(
            sandbox.merchants,
            request.method,
            request.raw_path,
            request.headers.get("Authorization"),
            body,
        )
    except ApiError as exc:
        return _signed(sandbox, json_response(exc.status, exc.payload()), None)

    plan = sandbox.faults.plan_for(merchant.mchid)
    try:
        await sandbox.faults_before_acting(plan)
    except ApiError as exc:
        return _signed(sandbox, json_response(exc.status, exc.payload()), merchant)

    request[_MERCHANT] = merchant
    try:
        response = await handler(request)
        assert isinstance(response, web.Response)
    except ApiError as exc:
        response = json_response(exc.status, exc.payload())
    except web.HTTPException as exc:
        response = _from_http_exception(exc)
    except Exception:
        logger.exception("WeChat Pay sandbox failed on %s %s", request.method, request.path)
        response = json_response(500, {"code": "SYSTEM_ERROR", "message": "系统异常"})
    if sandbox.faults.strikes(plan.timeout_rate):
        # The request has been acted on; the client only sees its own timeout.
        await sandbox.hang()
    if request.match_info.route.name in UNSIGNED_ROUTES and response.status == 200:
        response.headers["Request-ID"] = secrets.token_hex(16).upper()
        return response
    return _signed(sandbox, response, merchant)


async def create_transaction(request: web.Request) -> web.Response:
    sandbox = request.config_dict[WECHATPAY_SANDBOX]
    credential = sandbox.create_transaction(
        _merchant(request), request.match_info["product"], await request.read(), _now()
    )
    return json_response(200, dict(credential))


async def query_by_out_trade_no(request: web.Request) -> web.Response:
    sandbox = request.config_dict[WECHATPAY_SANDBOX]
    transaction = sandbox.query(
        _merchant(request),
        request.query.get("mchid"),
        _now(),
        out_trade_no=request.match_info["out_trade_no"],
    )
    return json_response(200, transaction)


async def query_by_transaction_id(request: web.Request) -> web.Response:
    sandbox = request.config_dict[WECHATPAY_SANDBOX]
    transaction = sandbox.query(
        _merchant(request),
        request.query.get("mchid"),
        _now(),
        transaction_id=request.match_info["transaction_id"],
    )
    return json_response(200, transaction)


async def close_order(request: web.Request) -> web.Response:
    sandbox = request.config_dict[WECHATPAY_SANDBOX]
    sandbox.close(
        _merchant(request), request.match_info["out_trade_no"], await request.read(), _now()
    )
    return json_response(204, None)


async def certificates(request: web.Request) -> web.Response:
    sandbox = request.config_dict[WECHATPAY_SANDBOX]
    return json_response(200, sandbox.certificates(_merchant(request)))


async def create_refund(request: web.Request) -> web.Response:
    sandbox = request.config_dict[WECHATPAY_SANDBOX]
    refund = aftersale.create_refund(sandbox, _merchant(request), await request.read(), _now())
    return json_response(200, refund)


async def query_refund(request: web.Request) -> web.Response:
    sandbox = request.config_dict[WECHATPAY_SANDBOX]
    out_refund_no = request.match_info["out_refund_no"]
    return json_response(
        200, aftersale.query_refund(sandbox, _merchant(request), out_refund_no, _now())
    )


async def tradebill(request: web.Request) -> web.Response:
    sandbox = request.config_dict[WECHATPAY_SANDBOX]
    # The download URL points back at the address this client reached the sandbox by.
    base_url = f"{request.scheme}://{request.host}"
    answer = aftersale.tradebill(sandbox, _merchant(request), dict(request.query), base_url)
    return json_response(200, answer)


async def download_bill(request: web.Request) -> web.Response:
    sandbox = request.config_dict[WECHATPAY_SANDBOX]
    content = aftersale.download_bill(sandbox, _merchant(request), request.query.get("token"))
    return web.Response(status=200, body=content, content_type="application/octet-stream")


async def create_transfer(request: web.Request) -> web.Response:
    sandbox = request.config_dict[WECHATPAY_SANDBOX]
    serial = request.headers.get("Wechatpay-Serial")
    answer = sandbox.create_transfer(_merchant(request), await request.read(), serial, _now())
    return json_response(200, answer)


async def query_transfer(request: web.Request) -> web.Response:
    sandbox = request.config_dict[WECHATPAY_SANDBOX]
    transfer = sandbox.transfers.get(_merchant(request).mchid, request.match_info["out_bill_no"])
    if transfer is None:
        raise ApiError(404, "NOT_FOUND", "记录不存在")
    return json_response(200, transfer.query_resource())


def build_v3_app() -> web.Application:
    app = web.Application(middlewares=[v3_middleware])
    app.router.add_post("/pay/transactions/{product:native|jsapi|app|h5}", create_transaction)
    app.router.add_get("/pay/transactions/out-trade-no/{out_trade_no}", query_by_out_trade_no)
    app.router.add_get("/pay/transactions/id/{transaction_id}", query_by_transaction_id)
    app.router.add_post("/pay/transactions/out-trade-no/{out_trade_no}/close", close_order)
    app.router.add_get("/certificates", certificates)
    app.router.add_post("/refund/domestic/refunds", create_refund)
    app.router.add_get("/refund/domestic/refunds/{out_refund_no}", query_refund)
    app.router.add_get("/bill/tradebill", tradebill)
    app.router.add_get("/billdownload/file", download_bill, name="billdownload")
    app.router.add_post("/fund-app/mch-transfer/transfer-bills", create_transfer)
    app.router.add_get(
        "/fund-app/mch-transfer/transfer-bills/out-bill-no/{out_bill_no}", query_transfer
    )
    return app
