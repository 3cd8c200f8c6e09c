"""The SDK's balance and settlement calls, sync and async, against the scripted fake API."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

import httpx
import pytest

import sdk
from sdk import AsyncPayfrontClient, PayfrontClient

if TYPE_CHECKING:
    from conftest import FakeApi

API_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
BASE_URL = "http://payfront.test"

BALANCE: dict[str, Any] = {
    "object": "balance",
    "livemode": False,
    "pending": [{"currency": "CNY", "amount": 9_940}, {"currency": "USD", "amount": -59}],
    "available": [{"currency": "CNY", "amount": 0}, {"currency": "USD", "amount": 0}],
}
SETTLEMENT: dict[str, Any] = {
    "object": "settlement",
    "date": "2026-11-26",
    "timezone": "Asia/Shanghai",
    "currency": "CNY",
    "collected": 12_000,
    "refunded": 5_000,
    "fees": 42,
    "payable": 6_958,
    "payment_count": 2,
    "refund_count": 1,
    "livemode": False,
}


def test_get_balance(fake_api: FakeApi) -> None:
    fake_api.reply(200, BALANCE)
    http_client = httpx.Client(transport=httpx.MockTransport(fake_api.handle))
    with http_client, PayfrontClient(API_KEY, base_url=BASE_URL, http_client=http_client) as c:
        balance = c.get_balance()
    (request,) = fake_api.requests
    assert request.method == "GET"
    assert str(request.url) == "http://payfront.test/v1/balance"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert balance == sdk.Balance(
        livemode=False, pending={"CNY": 9_940, "USD": -59}, available={"CNY": 0, "USD": 0}
    )


def test_get_settlement(fake_api: FakeApi) -> None:
    fake_api.reply(200, SETTLEMENT)
    http_client = httpx.Client(transport=httpx.MockTransport(fake_api.handle))
    with http_client, PayfrontClient(API_KEY, base_url=BASE_URL, http_client=http_client) as c:
        settlement = c.get_settlement(date(2026, 11, 26), "CNY")
    (request,) = fake_api.requests
    assert str(request.url) == "http://payfront.test/v1/settlements?date=2026-11-26&currency=CNY"
    assert settlement.date == date(2026, 11, 26)
    assert (settlement.collected, settlement.refunded, settlement.fees) == (12_000, 5_000, 42)
    assert settlement.payable == settlement.collected - settlement.refunded - settlement.fees
    assert (settlement.payment_count, settlement.refund_count) == (2, 1)


async def test_async_balance_and_settlement(fake_api: FakeApi) -> None:
    fake_api.reply(200, BALANCE).reply(200, SETTLEMENT)
    http_client = httpx.AsyncClient(transport=httpx.MockTransport(fake_api.handle))
    async with (
        http_client,
        AsyncPayfrontClient(API_KEY, base_url=BASE_URL, http_client=http_client) as c,
    ):
        balance = await c.get_balance()
        settlement = await c.get_settlement(date(2026, 11, 26), "CNY")
    assert balance.pending["CNY"] == 9_940
    assert settlement.payable == 6_958
    assert [str(r.url) for r in fake_api.requests] == [
        "http://payfront.test/v1/balance",
        "http://payfront.test/v1/settlements?date=2026-11-26&currency=CNY",
    ]


def test_settlement_errors_are_raised(fake_api: FakeApi) -> None:
    fake_api.reply(
        400,
        {
            "error": {
                "type": "invalid_request_error",
                "code": "parameter_invalid",
                "message": "currency must be an ISO 4217 code such as CNY",
                "param": "currency",
                "request_id": "req_1",
            }
        },
    )
    http_client = httpx.Client(transport=httpx.MockTransport(fake_api.handle))
    with http_client, PayfrontClient(API_KEY, base_url=BASE_URL, http_client=http_client) as c:
        with pytest.raises(sdk.InvalidRequestError):
            c.get_settlement(date(2026, 11, 26), "cny")
        with pytest.raises(ValueError):
            c.get_settlement(date(2026, 11, 26), "")


@pytest.mark.parametrize(
    "body",
    [
        {**BALANCE, "object": "payment"},
        {**BALANCE, "pending": {"CNY": 1}},
        {**BALANCE, "pending": [{"currency": "CNY", "amount": "1"}]},
    ],
)
def test_malformed_balance_is_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        sdk.Balance.from_json(body)
