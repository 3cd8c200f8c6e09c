"""Verification of merchants' v3 request signatures (the ``Authorization`` header)."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping

from mock_channels.wechatpay_crypto import SIGNATURE_TYPE, request_signing_string, rsa_verify
from mock_channels.wechatpay_errors import sign_error
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
