"""Tests for sdk/async_client.py: the asyncio client against the same scripted API."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import pytest

import sdk
from sdk import AsyncPayfrontClient

if TYPE_CHECKING:
    from conftest import FakeApi

JsonFactory = Callable[..., dict[str, Any]]
API_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
BASE_URL = "http://payfront.test"
CREDENTIAL = {"type": "wechatpay_native", "code_url": "weixin://wxpay/bizpayurl?pr=abc"}


@pytest.fixture
async def client(fake_api: FakeApi) -> AsyncIterator[AsyncPayfrontClient]:
    http_client = httpx.AsyncClient(transport=httpx.MockTransport(fake_api.handle))
    async with (
        http_client,
        AsyncPayfrontClient(API_KEY, base_url=BASE_URL, http_client=http_client) as c,
    ):
        yield c


async def create(client: AsyncPayfrontClient, **options: Any) -> sdk.Payment:
    return await client.create_payment(
        amount=100,
        currency="CNY",
        merchant_order_no="order-1001",
        description="Coffee beans",
        **options,
    )


async def test_create_payment_wire(
    client: AsyncPayfrontClient, fake_api: FakeApi, payment_json: JsonFactory
) -> None:
    fake_api.reply(201, payment_json())

    payment = await create(client, expires_in=600, metadata={"cart": "c_9"}, idempotency_key="k-1")

    (request,) = fake_api.requests
    assert request.method == "POST"
    assert str(request.url) == "http://payfront.test/v1/payments"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["Idempotency-Key"] == "k-1"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("payfront-python/")
    assert fake_api.json_body() == {
        "amount": 100,
        "currency": "CNY",
        "merchant_order_no": "order-1001",
        "channel": "wechatpay",
        "method": "native",
        "description": "Coffee beans",
        "expires_in": 600,
        "metadata": {"cart": "c_9"},
    }
    assert payment.pay_no == "pay_01JDX6Y1"
    assert payment.created_at == datetime(2026, 11, 25, 11, 30, tzinfo=UTC)


async def test_create_payment_generates_an_idempotency_key(
    client: AsyncPayfrontClient, fake_api: FakeApi, payment_json: JsonFactory
) -> None:
    fake_api.reply(201, payment_json())

    await create(client)
    await create(client)

    keys = [request.headers["Idempotency-Key"] for request in fake_api.requests]
    assert all(uuid.UUID(key).version == 4 for key in keys)
    assert keys[0] != keys[1]


async def test_replayed_create_returns_the_payment(
    client: AsyncPayfrontClient, fake_api: FakeApi, payment_json: JsonFactory
) -> None:
    fake_api.reply(200, payment_json(status="awaiting_payment"), {"Idempotent-Replayed": "true"})

    assert (await create(client, idempotency_key="k-1")).status == "awaiting_payment"


@pytest.mark.parametrize("failure", [httpx.ConnectError, httpx.ReadTimeout, httpx.ReadError])
async def test_create_payment_retries_once_with_the_same_key(
    client: AsyncPayfrontClient,
    fake_api: FakeApi,
    payment_json: JsonFactory,
    failure: type[httpx.TransportError],
) -> None:
    fake_api.fail(failure).reply(201, payment_json())

    payment = await create(client)

    first, retry = fake_api.requests
    assert first.headers["Idempotency-Key"] == retry.headers["Idempotency-Key"]
    assert first.content == retry.content
    assert payment.pay_no == "pay_01JDX6Y1"


async def test_second_connection_failure_raises_with_the_key(
    client: AsyncPayfrontClient, fake_api: FakeApi
) -> None:
    fake_api.fail(httpx.ConnectError)

    with pytest.raises(sdk.APIConnectionError) as raised:
        await create(client)

    assert len(fake_api.requests) == 2
    assert raised.value.idempotency_key == fake_api.requests[0].headers["Idempotency-Key"]
    assert isinstance(raised.value.__cause__, httpx.ConnectError)


async def test_http_errors_are_not_retried(
    client: AsyncPayfrontClient, fake_api: FakeApi, error_json: JsonFactory
) -> None:
    fake_api.reply(500, error_json("api_error", "internal_error"))

    with pytest.raises(sdk.APIError):
        await create(client)

    assert len(fake_api.requests) == 1


async def test_error_mapping(
    client: AsyncPayfrontClient,
    fake_api: FakeApi,
    error_json: JsonFactory,
    error_case: tuple[int, str, str, str],
) -> None:
    status, error_type, code, class_name = error_case
    fake_api.reply(status, error_json(error_type, code, "denied"), {"Request-Id": "req_h"})

    with pytest.raises(sdk.PayfrontError) as raised:
        await create(client, idempotency_key="k-7")

    assert type(raised.value) is getattr(sdk, class_name)
    assert (raised.value.status, raised.value.type, raised.value.code) == (status, error_type, code)
    assert raised.value.request_id == "req_body"
    assert raised.value.idempotency_key == "k-7"


async def test_error_without_json_body_uses_status_and_header(
    client: AsyncPayfrontClient, fake_api: FakeApi
) -> None:
    fake_api.reply(503, "upstream down", {"Request-Id": "req_h"})

    with pytest.raises(sdk.ServiceUnavailableError) as raised:
        await client.get_payment("pay_1")

    assert raised.value.request_id == "req_h"


async def test_get_payment(
    client: AsyncPayfrontClient, fake_api: FakeApi, payment_json: JsonFactory
) -> None:
    fake_api.reply(200, payment_json(status="paid", paid_at="2026-11-25T11:31:00Z"))

    payment = await client.get_payment("pay_01JDX6Y1")

    (request,) = fake_api.requests
    assert request.method == "GET"
    assert str(request.url) == "http://payfront.test/v1/payments/pay_01JDX6Y1"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert "Idempotency-Key" not in request.headers
    assert payment.paid_at == datetime(2026, 11, 25, 11, 31, tzinfo=UTC)


async def test_get_payment_not_found(
    client: AsyncPayfrontClient, fake_api: FakeApi, error_json: JsonFactory
) -> None:
    fake_api.reply(404, error_json("not_found_error", "resource_missing"))

    with pytest.raises(sdk.NotFoundError):
        await client.get_payment("pay_other_merchant")


async def test_get_token_long_polls_without_the_api_key(
    client: AsyncPayfrontClient, fake_api: FakeApi, token_json: JsonFactory
) -> None:
    fake_api.reply(200, token_json())

    token = await client.get_token("tok_01JDX6Y1", wait=5)

    (request,) = fake_api.requests
    assert request.method == "GET"
    assert request.url.path == "/v1/tokens/tok_01JDX6Y1"
    assert request.url.params["wait"] == "5"
    assert "Authorization" not in request.headers
    # The read timeout covers the time the server may hold the request.
    assert request.extensions["timeout"]["read"] == pytest.approx(10 + 5)
    assert token.status == "pending"


async def test_wait_for_credential_loops_until_the_credential_arrives(
    client: AsyncPayfrontClient, fake_api: FakeApi, token_json: JsonFactory
) -> None:
    fake_api.reply(200, token_json(status="pending"))
    fake_api.reply(200, token_json(status="prepaying"))
    fake_api.reply(200, token_json(status="awaiting_payment", credential=CREDENTIAL))

    token = await client.wait_for_credential("tok_01JDX6Y1", timeout=5)

    assert len(fake_api.requests) == 3
    waits = [float(request.url.params["wait"]) for request in fake_api.requests]
    assert all(0 < wait <= 5 for wait in waits)
    assert waits == sorted(waits, reverse=True)
    assert token.credential == sdk.Credential(**CREDENTIAL)


async def test_wait_for_credential_caps_each_poll_at_30_seconds(
    client: AsyncPayfrontClient, fake_api: FakeApi, token_json: JsonFactory
) -> None:
    fake_api.reply(200, token_json(status="awaiting_payment", credential=CREDENTIAL))

    await client.wait_for_credential("tok_01JDX6Y1", timeout=120)

    assert fake_api.requests[0].url.params["wait"] == "30"


async def test_wait_for_credential_returns_a_failure(
    client: AsyncPayfrontClient, fake_api: FakeApi, token_json: JsonFactory
) -> None:
    failure = {"code": "channel_rejected", "message": "merchant suspended"}
    fake_api.reply(200, token_json(status="prepay_failed", failure=failure))

    token = await client.wait_for_credential("tok_01JDX6Y1")

    assert token.failure == sdk.Failure(**failure)


async def test_wait_for_credential_times_out(
    client: AsyncPayfrontClient, fake_api: FakeApi, token_json: JsonFactory
) -> None:
    fake_api.reply(200, token_json(status="pending"))

    with pytest.raises(sdk.PayfrontTimeout):
        await client.wait_for_credential("tok_01JDX6Y1", timeout=0.05)

    assert fake_api.requests


async def test_supplied_http_client_is_left_open(fake_api: FakeApi) -> None:
    http_client = httpx.AsyncClient(transport=httpx.MockTransport(fake_api.handle))

    async with AsyncPayfrontClient(API_KEY, http_client=http_client):
        pass

    assert not http_client.is_closed
    await http_client.aclose()


async def test_own_http_client_is_closed() -> None:
    client = AsyncPayfrontClient(API_KEY, timeout=3)
    await client.close()

    with pytest.raises(RuntimeError):
        await client._http.get("http://payfront.test/")


async def test_aclose_is_an_alias_for_close() -> None:
    client = AsyncPayfrontClient(API_KEY)
    await client.aclose()

    assert client._http.is_closed
