"""Refunds against the WeChat Pay sandbox, from both sides: the unmodified ``wechatpayv3``
client (which verifies every 2xx answer's signature and every callback's), and payfront's own
adapter talking to the running sandbox over HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from wechatpayv3 import WeChatPay as V3Client

from channels.base import CreateOrder, CreateRefund, HttpRequest, HttpResponse, RefundState
from channels.errors import ChannelFatal, ChannelOrderNotFound
from channels.wechatpay import WechatPay, WechatPayConfig
from tests.interop.harness import BackgroundSandbox, running_sandbox
from tests.interop.test_wechatpayv3_sandbox import Merchant, client_for, new_merchant, register


@pytest.fixture(scope="module")
def background_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundSandbox]:
    with running_sandbox(
        tmp_path_factory.mktemp("wechat-refunds"),
        route="/callbacks/wechatpay/{name}",
        answer=lambda: web.Response(status=204),
        seed=5,
    ) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def merchant(background_sandbox: BackgroundSandbox) -> tuple[Merchant, dict[str, Any]]:
    merchant = new_merchant("1900000555")
    return merchant, register(background_sandbox, merchant)


@pytest.fixture
def wxpay(
    background_sandbox: BackgroundSandbox, merchant: tuple[Merchant, dict[str, Any]]
) -> V3Client:
    credentials, registration = merchant
    client = client_for(
        background_sandbox,
        credentials,
        public_key=registration["platform_public_key_pem"],
        public_key_id=registration["platform_public_key_id"],
    )
    client._notify_url = background_sandbox.notify_url + "/library"
    return client


def pay(sandbox: BackgroundSandbox, mchid: str, out_trade_no: str) -> None:
    paid = sandbox.admin("POST", f"/sandbox/wechatpay/orders/{out_trade_no}/pay", {"mchid": mchid})
    assert paid.status_code == 200, paid.text


def test_library_refunds_and_queries_refunds(
    background_sandbox: BackgroundSandbox,
    wxpay: V3Client,
    merchant: tuple[Merchant, dict[str, Any]],
) -> None:
    code, message = wxpay.pay(
        description="QQ公仔", out_trade_no="V3_REFUND_01", amount={"total": 300}
    )
    assert code == 200, message
    pay(background_sandbox, merchant[0].mchid, "V3_REFUND_01")
    background_sandbox.inbox("library").get(timeout=5)  # TRANSACTION.SUCCESS

    code, message = wxpay.refund(
        out_refund_no="V3_R_01",
        out_trade_no="V3_REFUND_01",
        amount={"refund": 120, "total": 300, "currency": "CNY"},
        reason="退货",
    )
    assert code == 200, message  # the library verified the answer's signature
    accepted = json.loads(message)
    assert accepted["status"] == "PROCESSING"
    assert accepted["amount"]["refund"] == 120

    # The refund callback verifies and decrypts with the library's own callback code.
    delivery = background_sandbox.inbox("library").get(timeout=5)
    notification = wxpay.callback(delivery.headers, delivery.body)
    assert notification is not None
    assert notification["event_type"] == "REFUND.SUCCESS"
    resource = notification["resource"]
    assert resource["out_refund_no"] == "V3_R_01"
    assert resource["refund_status"] == "SUCCESS"
    assert resource["refund_id"] == accepted["refund_id"]
    assert resource["amount"] == {
        "total": 300,
        "refund": 120,
        "payer_total": 300,
        "payer_refund": 120,
    }
    tampered = delivery.body.replace(b"REFUND.SUCCESS", b"REFUND.CLOSED")
    assert wxpay.callback(delivery.headers, tampered) is None

    code, message = wxpay.query_refund(out_refund_no="V3_R_01")
    assert code == 200, message
    queried = json.loads(message)
    assert queried["status"] == "SUCCESS" and queried["success_time"] == resource["success_time"]

    code, message = wxpay.refund(
        out_refund_no="V3_R_02",
        out_trade_no="V3_REFUND_01",
        amount={"refund": 181, "total": 300, "currency": "CNY"},
    )
    assert code == 400
    assert json.loads(message)["code"] == "INVALID_REQUEST"
    code, message = wxpay.query_refund(out_refund_no="V3_R_02")
    assert code == 404 and json.loads(message)["code"] == "RESOURCE_NOT_EXISTS"


# -- payfront's adapter over HTTP ------------------------------------------------------------


def adapter_for(
    sandbox: BackgroundSandbox, merchant: Merchant, registration: dict[str, Any]
) -> WechatPay:
    private_key = serialization.load_pem_private_key(merchant.private_key_pem.encode(), None)
    platform_key = serialization.load_pem_public_key(
        registration["platform_public_key_pem"].encode()
    )
    assert isinstance(private_key, rsa.RSAPrivateKey)
    assert isinstance(platform_key, rsa.RSAPublicKey)
    return WechatPay(
        WechatPayConfig(
            mchid=merchant.mchid,
            appid=merchant.appid,
            merchant_serial_no=merchant.serial_no,
            merchant_private_key=private_key,
            apiv3_key=merchant.apiv3_key.encode(),
            platform_public_key=platform_key,
            platform_public_key_id=registration["platform_public_key_id"],
            base_url=sandbox.base_url,
        )
    )


def send(request: HttpRequest) -> HttpResponse:
    with httpx.Client(timeout=10) as client:
        answer = client.request(
            request.method, request.url, headers=dict(request.headers), content=request.body
        )
    return HttpResponse(answer.status_code, dict(answer.headers), answer.content)


def now() -> datetime:
    return datetime.now(UTC)


def test_adapter_refunds_against_the_sandbox(
    background_sandbox: BackgroundSandbox, merchant: tuple[Merchant, dict[str, Any]]
) -> None:
    channel = adapter_for(background_sandbox, *merchant)
    notify_url = background_sandbox.notify_url + "/adapter"
    order = CreateOrder(
        out_trade_no="PF_REFUND_01",
        amount_minor=1000,
        currency="CNY",
        description="payfront 退款测试",
        notify_url=notify_url,
        method="native",
    )
    prepay = channel.parse_create(send(channel.build_create(order, now=now())), now=now())
    assert prepay.credential["code_url"].startswith("weixin://")
    pay(background_sandbox, merchant[0].mchid, "PF_REFUND_01")
    paid = channel.parse_callback(*_delivery(background_sandbox, "adapter"), now=now())
    assert paid.trade is not None and paid.trade.amount_minor == 1000

    def refund(number: str, amount: int) -> CreateRefund:
        return CreateRefund(
            out_refund_no=number,
            out_trade_no="PF_REFUND_01",
            refund_minor=amount,
            total_minor=1000,
            currency="CNY",
            notify_url=notify_url,
            reason="partial",
        )

    first = channel.parse_refund(
        send(channel.build_refund(refund("PF_R_1", 300), now=now())), now=now()
    )
    assert (first.state, first.amount_minor) == (RefundState.PROCESSING, 300)
    second = channel.parse_refund(
        send(channel.build_refund(refund("PF_R_2", 600), now=now())), now=now()
    )
    assert (second.state, second.amount_minor) == (RefundState.PROCESSING, 600)
    # Sent again (a retry after a lost answer): the same refund, not a new one.
    repeated = channel.parse_refund(
        send(channel.build_refund(refund("PF_R_2", 600), now=now())), now=now()
    )
    assert repeated.channel_refund_no == second.channel_refund_no

    with pytest.raises(ChannelFatal) as caught:
        channel.parse_refund(
            send(channel.build_refund(refund("PF_R_3", 101), now=now())), now=now()
        )
    assert caught.value.code == "INVALID_REQUEST" and caught.value.http_status == 400

    for number, amount in (("PF_R_1", 300), ("PF_R_2", 600)):
        status = _until_final(channel, number)
        assert status.state is RefundState.SUCCEEDED and status.channel_state == "SUCCESS"
        assert status.amount_minor == amount and status.out_trade_no == "PF_REFUND_01"
        assert status.succeeded_at is not None

    # Both refund callbacks verify, decrypt and parse with the adapter.
    events = [
        channel.parse_callback(*_delivery(background_sandbox, "adapter"), now=now())
        for _ in range(2)
    ]
    assert sorted(
        (event.refund.out_refund_no, event.refund.amount_minor)
        for event in events
        if event.refund is not None
    ) == [("PF_R_1", 300), ("PF_R_2", 600)]
    assert all(event.trade is None and event.event_type == "REFUND.SUCCESS" for event in events)

    query = channel.build_refund_query("PF_R_9", out_trade_no="PF_REFUND_01", now=now())
    with pytest.raises(ChannelOrderNotFound):
        channel.parse_refund_query(send(query), out_refund_no="PF_R_9", now=now())

    trade = channel.parse_query(send(channel.build_query("PF_REFUND_01", now=now())), now=now())
    assert trade.channel_state == "REFUND"


def _delivery(sandbox: BackgroundSandbox, name: str) -> tuple[dict[str, str], bytes]:
    delivery = sandbox.inbox(name).get(timeout=5)
    return delivery.headers, delivery.body


def _until_final(channel: WechatPay, out_refund_no: str) -> Any:
    deadline = time.monotonic() + 5
    while True:
        request = channel.build_refund_query(out_refund_no, out_trade_no="PF_REFUND_01", now=now())
        status = channel.parse_refund_query(send(request), out_refund_no=out_refund_no, now=now())
        if status.state is not RefundState.PROCESSING or time.monotonic() > deadline:
            return status
        time.sleep(0.02)
