"""The Alipay OpenAPI gateway (``/gateway.do``): read the parameters from either transport,
authenticate (common parameters, RSA2 signature), inject faults, answer signed.

Both transports are accepted: python-alipay-sdk's GET with every parameter in the query
string, and the official SDKs' POST with the common parameters in the URL and ``biz_content``
in the form body. Answers are ``{"<method>_response":{...},"sign":"..."}``, ``sign`` last and
computed over the exact bytes of the response member. ``alipay.trade.page.pay`` and
``alipay.trade.wap.pay`` open a small cashier page instead (JSON when asked for).
"""

from __future__ import annotations

import datetime as dt
import html
import logging
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from mock_channels import alipay_errors as errors
from mock_channels.alipay_crypto import content_to_sign, rsa2_sign, rsa2_verify
from mock_channels.alipay_errors import GatewayError
from mock_channels.alipay_models import TIME_FORMAT, fen_to_yuan
from mock_channels.alipay_sandbox import (
    ALIPAY_SANDBOX,
    API_METHODS,
    CASHIER_METHODS,
    AlipaySandbox,
)
from mock_channels.alipay_state import App, Trade

logger = logging.getLogger(__name__)

CHARSETS = {"utf-8": "utf-8", "utf8": "utf-8", "gbk": "gbk", "gb2312": "gbk"}
MAX_FIELDS = 200


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def response_key(api_method: str | None) -> str:
    if api_method in API_METHODS:
        return api_method.replace(".", "_") + "_response"
    return "error_response"


def render(
    key: str,
    content: dict[str, Any],
    signer: rsa.RSAPrivateKey | None,
    cert_sn: str | None = None,
) -> web.Response:
    """The answer's bytes: the member serialised once, signed over exactly those bytes. A
    certificate-mode app's answers also name the Alipay public key certificate (``cert_sn``)."""
    member = orjson.dumps({k: v for k, v in content.items() if v is not None})
    body = b'{"' + key.encode("ascii") + b'":' + member
    if cert_sn is not None:
        body += b',"alipay_cert_sn":"' + cert_sn.encode("ascii") + b'"'
    if signer is not None:
        body += b',"sign":"' + rsa2_sign(signer, member).encode("ascii") + b'"'
    # Alipay's gateway labels its JSON answers text/html.
    return web.Response(body=body + b"}", content_type="text/html", charset="utf-8")


# -- reading a request ----------------------------------------------------------------------


def _form_fields(text: str, codec: str) -> list[tuple[str, str]]:
    return parse_qsl(
        text, keep_blank_values=True, encoding=codec, errors="strict", max_num_fields=MAX_FIELDS
    )


async def read_params(request: web.Request) -> tuple[dict[str, str], str]:
    """Every parameter (URL query and form body) as sent, and the codec ``charset`` names."""
    raw_query = request.rel_url.raw_query_string
    body = await request.read()
    is_form = request.content_type == "application/x-www-form-urlencoded"
    charset_error = errors.invalid("isv.invalid-charset", "字符集错误", signed=False)
    try:
        # Latin-1 reads any byte: enough to find the ASCII charset before decoding the rest.
        probe = _form_fields(raw_query, "latin-1")
        if is_form:
            probe += _form_fields(body.decode("latin-1"), "latin-1")
    except ValueError:  # too many fields
        raise errors.invalid("isv.invalid-parameter", "参数过多", signed=False) from None
    charset = next((v for k, v in probe if k == "charset"), None) or request.charset or "utf-8"
    codec = CHARSETS.get(charset.strip().lower())
    if codec is None:
        raise charset_error
    try:
        pairs = _form_fields(raw_query, codec)
        if is_form:
            pairs += _form_fields(body.decode(codec), codec)
    except ValueError:  # not text in that charset
        raise charset_error from None
    params: dict[str, str] = {}
    for key, value in pairs:
        if params.setdefault(key, value) != value:
            raise errors.invalid("isv.invalid-parameter", f"参数 {key} 重复", signed=False)
    return params, codec


def authenticate(apps: dict[str, App], params: dict[str, str], codec: str) -> App:
    """Check the common parameters and the signature, in the order the gateway reports them."""
    method = params.get("method")
    if not method:
        raise errors.missing("method")
    if method not in API_METHODS | CASHIER_METHODS:
        raise errors.invalid("isv.invalid-method", "不存在的方法名", signed=False)
    app_id = params.get("app_id")
    if not app_id:
        raise errors.missing("app_id")
    app = apps.get(app_id)
    if app is None:
        raise errors.invalid("isv.invalid-app-id", "无效的AppID参数", signed=False)
    # From here on the app is known, so the answer is signed.
    for required in ("sign_type", "sign", "timestamp", "version"):
        if not params.get(required):
            raise errors.missing(required, signed=True)
    if params["sign_type"] != "RSA2":
        raise errors.invalid("isv.invalid-signature-type", "无效的签名类型")
    try:
        dt.datetime.strptime(params["timestamp"], TIME_FORMAT)
    except ValueError:
        raise errors.invalid("isv.invalid-timestamp", "非法的时间戳参数") from None
    if params["version"] != "1.0":
        raise errors.invalid("isv.invalid-parameter", "version 仅支持 1.0")
    if params.get("format") and params["format"].upper() != "JSON":
        raise errors.invalid("isv.invalid-format", "无效的数据格式")
    content = content_to_sign(params.items(), exclude=("sign",), skip_empty=True)
    if not rsa2_verify(app.public_key, content.encode(codec), params["sign"]):
        raise errors.invalid_signature(content)
    return app


# -- the cashier ----------------------------------------------------------------------------


def _wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def cashier_page(request: web.Request, trade: Trade) -> web.Response:
    view = {
        "verified": True,
        "method": trade.api_method,
        "app_id": trade.app_id,
        "out_trade_no": trade.out_trade_no,
        "total_amount": fen_to_yuan(trade.total_fen),
        "subject": trade.subject,
        "status": trade.status.value,
    }
    if _wants_json(request):
        return web.json_response(view)
    pay_path = f"/sandbox/alipay/orders/{trade.out_trade_no}/pay"
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>支付宝 · 收银台 (sandbox)"
        "</title></head><body><h1>支付宝收银台 · payfront sandbox</h1>"
        f"<p>{html.escape(trade.subject)}</p><p>¥ {fen_to_yuan(trade.total_fen)}</p>"
        f"<p>订单号 {html.escape(trade.out_trade_no)} · {trade.status.value}</p>"
        f"<p>To pay: <code>POST {html.escape(pay_path)}</code> "
        '<code>{"outcome": "success"}</code></p></body></html>'
    )
    return web.Response(text=page, content_type="text/html", charset="utf-8")


def cashier_error(request: web.Request, error: GatewayError) -> web.Response:
    if _wants_json(request):
        return web.json_response(error.content(), status=400)
    short_code = error.sub_code.split(".", 1)[-1]
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>支付宝 · 错误</title></head>"
        "<body><p>调试错误，请回到请求来源地，重新发起请求。</p>"
        f"<p>错误代码 {html.escape(short_code)} 错误原因: {html.escape(error.sub_msg)}</p>"
        "</body></html>"
    )
    return web.Response(text=page, content_type="text/html", charset="utf-8")


# -- the route ------------------------------------------------------------------------------


async def gateway(request: web.Request) -> web.StreamResponse:
    sandbox: AlipaySandbox = request.config_dict[ALIPAY_SANDBOX]
    try:
        params, codec = await read_params(request)
    except GatewayError as exc:
        return render("error_response", exc.content(), None)
    method = params.get("method")
    is_cashier = method in CASHIER_METHODS
    key = response_key(method)
    try:
        app = authenticate(sandbox.apps, params, codec)
    except GatewayError as exc:
        if is_cashier:
            return cashier_error(request, exc)
        return render(key, exc.content(), sandbox.key if exc.signed else None)
    assert method is not None
    if is_cashier:
        try:
            trade = sandbox.create(app, method, params, _now())
        except GatewayError as exc:
            return cashier_error(request, exc)
        return cashier_page(request, trade)

    plan = sandbox.faults.plan_for(app.app_id)
    try:
        await sandbox.faults_before_acting(plan)
        content = sandbox.call(app, method, params, _now(), origin=str(request.url.origin()))
    except GatewayError as exc:
        content = exc.content()
    except Exception:
        logger.exception("Alipay sandbox failed on %s", method)
        content = errors.system_error().content()
    else:
        if sandbox.faults.strikes(plan.timeout_rate):
            # The request has been acted on; the client only sees its own timeout.
            await sandbox.hang()
    return render(key, content, sandbox.key, sandbox.payouts.alipay_cert_sn(app.app_id))


def add_gateway_routes(app: web.Application, path: str) -> None:
    app.router.add_get(path, gateway)
    app.router.add_post(path, gateway)
