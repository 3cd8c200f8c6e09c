"""WeChat Pay v3 error answers: an HTTP status plus ``{code, message, detail?}``, and the JSON
helpers every emulator route uses to produce exactly the bytes it signs."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from mock_channels.wechatpay_models import FieldIssue


class ApiError(Exception):
    """A WeChat-style error answer: an HTTP status plus ``{code, message, detail?}``."""

    def __init__(
        self, status: int, code: str, message: str, detail: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail

    def payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            payload["detail"] = self.detail
        return payload


def param_error(issue: FieldIssue) -> ApiError:
    return ApiError(400, "PARAM_ERROR", issue.message(), issue.detail())


def sign_error(field: str, issue: str) -> ApiError:
    detail = {"location": "authorization", "field": field, "issue": issue}
    return ApiError(401, "SIGN_ERROR", f"错误的签名，验签失败：{issue}", detail)


def order_not_exist() -> ApiError:
    return ApiError(404, "ORDER_NOT_EXIST", "订单不存在")


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise param_error(FieldIssue(field="", issue=f"请求体不是合法的JSON：{exc}")) from None
    if not isinstance(data, dict):
        raise param_error(FieldIssue(field="", issue="请求体必须是JSON对象"))
    return data


def json_response(status: int, payload: dict[str, Any] | None) -> web.Response:
    """One serialisation of the body: these exact bytes are signed and sent."""
    if payload is None:
        return web.Response(status=status)
    return web.Response(
        status=status,
        body=orjson.dumps(payload),
        content_type="application/json",
        charset="utf-8",
    )
