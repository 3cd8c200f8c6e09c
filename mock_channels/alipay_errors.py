"""Alipay gateway error answers: a ``code``/``msg`` pair from the public error table plus a
``sub_code``/``sub_msg`` (opendocs.alipay.com/open/common/105806, and each API's own table)."""

from __future__ import annotations

import html
from typing import Any

# Public codes and their msg, as the gateway writes them.
MSG = {
    "10000": "Success",
    "20000": "Service Currently Unavailable",
    "20001": "Insufficient Token Permissions",
    "40001": "Missing Required Arguments",
    "40002": "Invalid Arguments",
    "40004": "Business Failed",
    "40006": "Insufficient Permissions",
}


class GatewayError(Exception):
    """An answer with a code other than 10000. ``signed`` is False where Alipay cannot or does
    not sign (no known app); ``extra`` holds fields some APIs add to their failures."""

    def __init__(
        self,
        code: str,
        sub_code: str,
        sub_msg: str,
        *,
        signed: bool = True,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code} {sub_code}: {sub_msg}")
        self.code = code
        self.sub_code = sub_code
        self.sub_msg = sub_msg
        self.signed = signed
        self.extra = extra or {}

    def content(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "msg": MSG[self.code],
            "sub_code": self.sub_code,
            "sub_msg": self.sub_msg,
            **self.extra,
        }


def missing(param: str, *, signed: bool = False) -> GatewayError:
    names = {
        "method": ("isv.missing-method", "缺少方法名参数"),
        "app_id": ("isv.missing-app-id", "缺少AppID参数"),
        "sign": ("isv.missing-signature", "缺少签名参数"),
        "sign_type": ("isv.missing-signature-type", "缺少签名类型参数"),
        "timestamp": ("isv.missing-timestamp", "缺少时间戳参数"),
        "version": ("isv.missing-version", "缺少版本参数"),
    }
    sub_code, sub_msg = names[param]
    return GatewayError("40001", sub_code, sub_msg, signed=signed)


def invalid(sub_code: str, sub_msg: str, *, signed: bool = True) -> GatewayError:
    return GatewayError("40002", sub_code, sub_msg, signed=signed)


def invalid_signature(content: str) -> GatewayError:
    # Alipay shows the string it verified, HTML-escaped, so a developer can compare.
    return invalid(
        "isv.invalid-signature",
        "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为："
        + html.escape(content),
    )


def business(sub_code: str, sub_msg: str, **extra: Any) -> GatewayError:
    return GatewayError("40004", sub_code, sub_msg, extra=extra)


def system_error() -> GatewayError:
    return business("ACQ.SYSTEM_ERROR", "系统错误")


def unavailable() -> GatewayError:
    return GatewayError("20000", "isp.unknow-error", "服务暂不可用（业务系统不可用）")


def trade_not_exist(**extra: Any) -> GatewayError:
    return business("ACQ.TRADE_NOT_EXIST", "交易不存在", **extra)


def invalid_parameter(sub_msg: str) -> GatewayError:
    return business("ACQ.INVALID_PARAMETER", sub_msg)
