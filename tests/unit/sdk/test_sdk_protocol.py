"""Tests for sdk/protocol.py, the sans-I/O core: requests as data, responses to models/errors."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import sdk
from sdk.errors import error_class_for
from sdk.protocol import CredentialWait, RequestBuilder, error_from_response

JsonFactory = Callable[..., dict[str, Any]]
API_KEY = "sk_test_abc"


def encode(body: Any) -> bytes:
    return json.dumps(body).encode()


def test_create_payment_request() -> None:
    call = RequestBuilder(API_KEY, "http://api.test/").create_payment(
        amount=100,
        currency="CNY",
        merchant_order_no="order-1",
        description="咖啡豆",
        expires_in=900,
        metadata={"cart": "c_1"},
        idempotency_key="idem-1",
    )
    request = call.request

    assert request.method == "POST"
    assert request.url == "http://api.test/v1/payments"
    assert request.headers["Authorization"] == "Bearer sk_test_abc"
    assert request.headers["Idempotency-Key"] == "idem-1"
    assert request.headers["Content-Type"] == "application/json"
    assert request.idempotency_key == "idem-1"
    assert request.content is not None
    assert json.loads(request.content) == {
        "amount": 100,
        "currency": "CNY",
        "merchant_order_no": "order-1",
        "channel": "wechatpay",
        "method": "native",
        "description": "咖啡豆",
        "expires_in": 900,
        "metadata": {"cart": "c_1"},
    }


def test_create_payment_omits_unset_options_and_generates_a_uuid4_key() -> None:
    builder = RequestBuilder(API_KEY)
    first = builder.create_payment(
        amount=1, currency="CNY", merchant_order_no="o", description="d"
    ).request
    second = builder.create_payment(
        amount=1, currency="CNY", merchant_order_no="o", description="d"
    ).request

    assert first.content is not None
    assert set(json.loads(first.content)) == {
        "amount",
        "currency",
        "merchant_order_no",
        "channel",
        "method",
        "description",
    }
    assert first.url == "http://127.0.0.1:8080/v1/payments"
    assert uuid.UUID(first.headers["Idempotency-Key"]).version == 4
    assert first.headers["Idempotency-Key"] != second.headers["Idempotency-Key"]


def test_identifiers_are_quoted_into_one_path_segment() -> None:
    builder = RequestBuilder(API_KEY, "http://api.test")

    assert builder.get_payment("pay_1").request.url == "http://api.test/v1/payments/pay_1"
    assert (
        builder.get_payment("../tokens/x").request.url
        == "http://api.test/v1/payments/..%2Ftokens%2Fx"
    )
    with pytest.raises(ValueError):
        builder.get_payment("")


def test_get_token_is_unauthenticated_and_formats_wait() -> None:
    builder = RequestBuilder(API_KEY, "http://api.test")

    polled = builder.get_token("tok_1", wait=9.99712).request
    immediate = builder.get_token("tok_1").request

    assert "Authorization" not in polled.headers
    assert polled.url == "http://api.test/v1/tokens/tok_1"
    assert polled.params == {"wait": "9.997"}
    assert polled.long_poll_seconds == pytest.approx(9.99712)
    assert builder.get_token("tok_1", wait=30).request.params == {"wait": "30"}
    assert immediate.params == {}
    assert immediate.long_poll_seconds == 0


@pytest.mark.parametrize("wait", [-1, 30.5, float("nan")])
def test_get_token_rejects_waits_the_server_would_not_honour(wait: float) -> None:
    with pytest.raises(ValueError, match="wait"):
        RequestBuilder(API_KEY).get_token("tok_1", wait=wait)


def test_empty_api_key_is_rejected() -> None:
    with pytest.raises(ValueError):
        RequestBuilder("")


def test_repr_hides_the_api_key() -> None:
    assert "4eC39" not in repr(RequestBuilder("sk_test_4eC39HqLyjWDarjtT1zdp7dc"))


def test_error_mapping_by_type(
    error_case: tuple[int, str, str, str], error_json: JsonFactory
) -> None:
    status, error_type, code, class_name = error_case

    error = error_from_response(
        status, {"Request-Id": "req_header"}, encode(error_json(error_type, code, "bad thing"))
    )

    assert type(error) is getattr(sdk, class_name)
    assert error.status == status
    assert error.type == error_type
    assert error.code == code
    assert error.message == "bad thing"
    assert error.request_id == "req_body"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, sdk.InvalidRequestError),
        (413, sdk.InvalidRequestError),
        (422, sdk.InvalidRequestError),
        (401, sdk.AuthenticationError),
        (404, sdk.NotFoundError),
        (409, sdk.ConflictError),
        (429, sdk.RateLimitError),
        (500, sdk.APIError),
        (502, sdk.APIError),
        (503, sdk.ServiceUnavailableError),
    ],
)
def test_error_mapping_falls_back_on_status(status: int, expected: type[Exception]) -> None:
    error = error_from_response(status, {"request-id": "req_header"}, b"<html>Bad Gateway</html>")

    assert type(error) is expected
    assert error.request_id == "req_header"
    assert str(status) in error.message


def test_unknown_error_type_falls_back_on_status(error_json: JsonFactory) -> None:
    assert error_class_for("brand_new_error", 404) is sdk.NotFoundError
    error = error_from_response(409, {}, encode(error_json("brand_new_error", "x")))
    assert type(error) is sdk.ConflictError


def test_service_unavailable_is_an_api_error() -> None:
    assert issubclass(sdk.ServiceUnavailableError, sdk.APIError)


def test_error_str_carries_the_details(error_json: JsonFactory) -> None:
    error = error_from_response(
        409, {}, encode(error_json("conflict_error", "merchant_order_no_taken", "taken"))
    )

    assert str(error) == "taken (status=409, code=merchant_order_no_taken, request_id=req_body)"


def test_success_response_is_parsed(payment_json: JsonFactory) -> None:
    call = RequestBuilder(API_KEY).get_payment("pay_01JDX6Y1")

    payment = call.handle_response(200, {}, encode(payment_json()))

    assert payment.pay_no == "pay_01JDX6Y1"


@pytest.mark.parametrize(
    "content", [b"not json", b"[1, 2]", encode({"object": "payment"})], ids=str
)
def test_unexpected_success_body_is_an_api_error(content: bytes) -> None:
    call = RequestBuilder(API_KEY).get_payment("pay_1")

    with pytest.raises(sdk.APIError) as raised:
        call.handle_response(200, {"Request-Id": "req_1"}, content)

    assert raised.value.request_id == "req_1"


def test_errors_of_create_payment_carry_its_idempotency_key(error_json: JsonFactory) -> None:
    call = RequestBuilder(API_KEY).create_payment(
        amount=1, currency="CNY", merchant_order_no="o", description="d"
    )

    with pytest.raises(sdk.RateLimitError) as raised:
        call.handle_response(429, {}, encode(error_json("rate_limit_error", "rate_limited")))

    assert raised.value.idempotency_key == call.request.headers["Idempotency-Key"]
    assert call.connection_error(OSError("reset")).idempotency_key == raised.value.idempotency_key


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_credential_wait_polls_for_the_time_left_capped_at_30(
    token_json: JsonFactory,
) -> None:
    clock = FakeClock()
    credential_wait = CredentialWait("tok_1", 45, clock=clock)
    pending = sdk.Token.from_json(token_json(status="pending"))

    assert credential_wait.next_wait() == 30
    clock.now += 30
    assert credential_wait.outcome(pending) is None
    assert credential_wait.next_wait() == 15
    clock.now += 15
    with pytest.raises(sdk.PayfrontTimeout):
        credential_wait.outcome(pending)
    assert credential_wait.next_wait() == 0


def test_credential_wait_returns_a_settled_token_even_past_the_deadline(
    token_json: JsonFactory,
) -> None:
    clock = FakeClock()
    credential_wait = CredentialWait("tok_1", 1, clock=clock)
    clock.now += 5
    failed = sdk.Token.from_json(
        token_json(status="prepay_failed", failure={"code": "declined", "message": "no"})
    )

    assert credential_wait.outcome(failed) is failed


def test_credential_wait_rejects_negative_timeouts() -> None:
    with pytest.raises(ValueError):
        CredentialWait("tok_1", -1)


def test_sdk_imports_nothing_from_the_server() -> None:
    repo_root = Path(__file__).resolve().parents[3]
    script = (
        "import sys, sdk\n"
        "server = {'core', 'gateway', 'workers', 'channels', 'mock_channels', 'payfront',"
        " 'pydantic', 'orjson'}\n"
        "loaded = server & {name.partition('.')[0] for name in sys.modules}\n"
        "assert not loaded, loaded\n"
    )

    subprocess.run([sys.executable, "-c", script], cwd=repo_root, check=True)
