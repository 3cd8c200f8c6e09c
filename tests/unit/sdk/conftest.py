"""Fixtures for the SDK tests: canned API objects and a scripted fake payfront API."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

API_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
BASE_URL = "http://payfront.test"


def make_payment_json(**overrides: Any) -> dict[str, Any]:
    """A payment object as the API renders it, with ``overrides`` applied."""
    payment: dict[str, Any] = {
        "object": "payment",
        "pay_no": "pay_01JDX6Y1",
        "trade_no": "trd_01JDX6Y1",
        "token": "tok_01JDX6Y1",
        "status": "pending",
        "amount": 100,
        "currency": "CNY",
        "merchant_order_no": "order-1001",
        "channel": "wechatpay",
        "method": "native",
        "description": "Coffee beans",
        "metadata": {},
        "credential": None,
        "failure": None,
        "expires_at": "2026-11-25T12:00:00Z",
        "created_at": "2026-11-25T11:30:00Z",
        "paid_at": None,
        "livemode": False,
    }
    payment.update(overrides)
    return payment


def make_token_json(**overrides: Any) -> dict[str, Any]:
    """A token object as the API renders it, with ``overrides`` applied."""
    token: dict[str, Any] = {
        "object": "token",
        "token": "tok_01JDX6Y1",
        "pay_no": "pay_01JDX6Y1",
        "status": "pending",
        "amount": 100,
        "currency": "CNY",
        "description": "Coffee beans",
        "expires_at": "2026-11-25T12:00:00Z",
        "credential": None,
        "failure": None,
    }
    token.update(overrides)
    return token


def make_error_json(error_type: str, code: str, message: str = "nope") -> dict[str, Any]:
    """An API error body."""
    return {
        "error": {
            "type": error_type,
            "code": code,
            "message": message,
            "param": None,
            "request_id": "req_body",
        }
    }


PAID_CREDENTIAL = {"type": "wechatpay_native", "code_url": "weixin://wxpay/bizpayurl?pr=abc"}

ResponseStep = httpx.Response | type[httpx.TransportError]


class FakeApi:
    """A scripted payfront API behind ``httpx.MockTransport`` that records every request.

    Steps are served in order; the last one repeats, so "always pending" needs one step.
    A step that is a ``TransportError`` class is raised instead of answering.
    """

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self._steps: list[ResponseStep] = []

    def reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> FakeApi:
        self._steps.append(
            httpx.Response(status, content=json.dumps(body).encode(), headers=headers)
        )
        return self

    def fail(self, error: type[httpx.TransportError]) -> FakeApi:
        self._steps.append(error)
        return self

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self._steps.pop(0) if len(self._steps) > 1 else self._steps[0]
        if isinstance(step, type):
            raise step("scripted transport failure", request=request)
        return httpx.Response(step.status_code, headers=step.headers, content=step.content)

    def json_body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


@pytest.fixture
def fake_api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def payment_json() -> Callable[..., dict[str, Any]]:
    return make_payment_json


@pytest.fixture
def token_json() -> Callable[..., dict[str, Any]]:
    return make_token_json


@pytest.fixture
def error_json() -> Callable[..., dict[str, Any]]:
    return make_error_json


# (HTTP status, error type, error code, name of the sdk exception it must raise)
ERROR_CASES = [
    (400, "invalid_request_error", "parameter_invalid", "InvalidRequestError"),
    (413, "invalid_request_error", "body_too_large", "InvalidRequestError"),
    (401, "authentication_error", "invalid_api_key", "AuthenticationError"),
    (409, "idempotency_error", "idempotency_key_in_use", "IdempotencyError"),
    (422, "idempotency_error", "idempotency_key_reused", "IdempotencyError"),
    (409, "conflict_error", "merchant_order_no_taken", "ConflictError"),
    (404, "not_found_error", "resource_missing", "NotFoundError"),
    (429, "rate_limit_error", "rate_limited", "RateLimitError"),
    (500, "api_error", "internal_error", "APIError"),
    (503, "service_unavailable_error", "overloaded", "ServiceUnavailableError"),
]


@pytest.fixture(params=ERROR_CASES, ids=[case[2] for case in ERROR_CASES])
def error_case(request: pytest.FixtureRequest) -> tuple[int, str, str, str]:
    case: tuple[int, str, str, str] = request.param
    return case
