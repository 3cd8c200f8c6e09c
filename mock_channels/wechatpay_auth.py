"""Verification of merchants' signatures: v3 requests (the ``Authorization`` header) and the
parameters a merchant's front-end pays a JSAPI or App order with."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping

from mock_channels.wechatpay_crypto import SIGNATURE_TYPE, request_signing_string, rsa_verify
from mock_channels.wechatpay_errors import ApiError, sign_error
from mock_channels.wechatpay_state import Merchant

# WeChat refuses a request whose timestamp is more than five minutes off.
MAX_CLOCK_SKEW_S = 300
_AUTH_PARAM = re.compile(r'([A-Za-z_]+)="([^"]*)"')
_AUTH_FIELDS = ("mchid", "nonce_str", "signature", "timestamp", "serial_no")


def authenticate(
    merchants: Mapping[str, Merchant],
    method: str,
    path_with_query: str,
    authorization: str | None,
    body: bytes,
) -> Merchant:
    """Verify ``Authorization: WECHATPAY2-SHA256-RSA2048 k="v",…`` (parameters in any order)
    over the raw path-with-query and body bytes; raise 401 SIGN_ERROR on any mismatch."""
    if not authorization:
        raise sign_error("authorization", "缺少 Authorization 请求头")
    schema, _, params_text = authorization.strip().partition(" ")
    if schema != SIGNATURE_TYPE:
        raise sign_error("authorization", f"认证类型必须是 {SIGNATURE_TYPE}")
    params = dict(_AUTH_PARAM.findall(params_text))
    for name in _AUTH_FIELDS:
        if not params.get(name):
            raise sign_error(name, f"Authorization 缺少 {name}")
    merchant = merchants.get(params["mchid"])
    if merchant is None:
        raise sign_error("mchid", "商户号未注册")
    if params["serial_no"].upper() != merchant.merchant_serial_no.upper():
        raise sign_error("serial_no", "商户证书序列号有误")
    timestamp = params["timestamp"]
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > MAX_CLOCK_SKEW_S:
        raise sign_error("timestamp", "请求时间戳与当前时间相差超过5分钟")
    message = request_signing_string(method, path_with_query, timestamp, params["nonce_str"], body)
    if not rsa_verify(merchant.public_key, message, params["signature"]):
        raise sign_error("signature", "签名与请求内容不匹配")
    return merchant


def check_payment_params(
    merchant: Merchant, prepay_id: str | None, params: Mapping[str, str]
) -> None:
    """Verify what a merchant's front-end pays with, as WeChat's client does: JSAPI's
    ``wx.requestPayment`` parameters (``paySign`` over appId, timeStamp, nonceStr, package)
    or the App SDK's ``PayReq`` (``sign`` over appid, timestamp, noncestr, prepayid), each
    line ended by ``\\n``, RSA-SHA256 with the merchant's API key. Raises 400
    ``INVALID_PAYMENT_PARAMS``."""

    def refuse(issue: str) -> ApiError:
        return ApiError(400, "INVALID_PAYMENT_PARAMS", issue)

    if prepay_id is None:
        raise refuse("the order has no prepay_id (not a JSAPI or App order)")
    if "paySign" in params:
        fields = ("appId", "timeStamp", "nonceStr", "package", "signType", "paySign")
        app_id, timestamp, nonce, package, sign_type, signature = (
            params.get(name, "") for name in fields
        )
        if package != f"prepay_id={prepay_id}" or sign_type != "RSA":
            raise refuse("package must be prepay_id=<the order's prepay_id>, signType RSA")
        signed = (app_id, timestamp, nonce, package)
    elif "sign" in params:
        fields = ("appid", "timestamp", "noncestr", "prepayid", "partnerid", "sign")
        app_id, timestamp, nonce, prepayid, partner_id, signature = (
            params.get(name, "") for name in fields
        )
        if prepayid != prepay_id or partner_id != merchant.mchid:
            raise refuse("prepayid must be the order's, partnerid the merchant's mchid")
        signed = (app_id, timestamp, nonce, prepayid)
    else:
        raise refuse("neither paySign (JSAPI) nor sign (App) is present")
    if app_id != merchant.appid:
        raise refuse("the appid is not the merchant's")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 2 * 3600:
        raise refuse("the timestamp is not the current time")  # a prepay_id lives two hours
    message = "".join(part + "\n" for part in signed).encode()
    if not rsa_verify(merchant.public_key, message, signature):
        raise refuse("the signature does not verify with the merchant's API key")
