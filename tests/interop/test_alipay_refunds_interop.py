"""Refunds and bills against the running Alipay sandbox, from both sides: the unmodified
``python-alipay-sdk`` (which verifies every answer's signature over the span it locates in the
raw text, and the notifications with its ``verify``) and payfront's adapter over real HTTP.

The library is synchronous (``urlopen``), so the sandbox and a notify receiver run on their own
event loop in a background thread (``tests.interop.harness``).
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from aiohttp import web
from alipay import AliPay
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from channels.alipay import Alipay, AlipayConfig
from channels.base import (
    CreateOrder,
    CreateRefund,
    HttpRequest,
    HttpResponse,
    RefundState,
    StatementLineKind,
)
from channels.errors import ChannelFatal, ChannelOrderNotFound
from tests.interop.harness import BackgroundSandbox, Delivery, running_sandbox

APP_ID = "2021000122679876"
BEIJING = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture(scope="module")
def background_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundSandbox]:
    with running_sandbox(
        tmp_path_factory.mktemp("alipay-refund-sandbox"),
        route="/callbacks/alipay/{name}",
        answer=lambda: web.Response(text="success"),
        seed=11,
    ) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def keys(background_sandbox: BackgroundSandbox) -> dict[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    answer = background_sandbox.admin(
        "POST",
        "/sandbox/alipay/apps",
        {"app_id": APP_ID, "app_public_key_pem": public, "fee_rate": "0.006"},
    )
    assert answer.status_code == 200, answer.text
    return {"private": private, "alipay_public": answer.json()["alipay_public_key_pem"]}


def library(sandbox: BackgroundSandbox, keys: dict[str, str], inbox: str) -> AliPay:
    client = AliPay(
        appid=APP_ID,
        app_notify_url=f"{sandbox.notify_url}/{inbox}",
        app_private_key_string=keys["private"],
        alipay_public_key_string=keys["alipay_public"],
        sign_type="RSA2",
    )
    client._gateway = f"{sandbox.base_url}/gateway.do"
    return client


def adapter(sandbox: BackgroundSandbox, keys: dict[str, str]) -> Alipay:
    return Alipay(
        AlipayConfig.from_credentials(
            {
                "app_id": APP_ID,
                "app_private_key_pem": keys["private"],
                "alipay_public_key_pem": keys["alipay_public"],
                "gateway_url": f"{sandbox.base_url}/gateway.do",
            }
        )
    )


def send(request: HttpRequest) -> HttpResponse:
    with httpx.Client(timeout=10) as client:
        answer = client.request(
            request.method, request.url, headers=dict(request.headers), content=request.body
        )
    return HttpResponse(answer.status_code, dict(answer.headers), answer.content)


def pay(sandbox: BackgroundSandbox, out_trade_no: str) -> None:
    answer = sandbox.admin("POST", f"/sandbox/alipay/orders/{out_trade_no}/pay", {})
    assert answer.status_code == 200, answer.text


def form(delivery: Delivery) -> dict[str, str]:
    return dict(parse_qsl(delivery.body.decode(), keep_blank_values=True))


def next_refund_notify(sandbox: BackgroundSandbox, inbox: str) -> Delivery:
    while True:
        delivery = sandbox.inbox(inbox).get(timeout=5)
        if "out_biz_no" in form(delivery):
            return delivery


def test_library_refunds_and_queries(
    background_sandbox: BackgroundSandbox, keys: dict[str, str]
) -> None:
    client = library(background_sandbox, keys, "lib")
    created = client.api_alipay_trade_precreate(
        subject="退款测试", out_trade_no="INTEROP_REF_LIB", total_amount="30.00"
    )
    assert created["code"] == "10000", created
    pay(background_sandbox, "INTEROP_REF_LIB")

    # The library verifies each answer's signature (it raises AliPayValidationError if not).
    first = client.api_alipay_trade_refund(
        refund_amount="10.00", out_trade_no="INTEROP_REF_LIB", out_request_no="LIB_R1"
    )
    assert (first["code"], first["fund_change"], first["refund_fee"]) == ("10000", "Y", "10.00")
    repeat = client.api_alipay_trade_refund(
        refund_amount=10.0, out_trade_no="INTEROP_REF_LIB", out_request_no="LIB_R1"
    )
    assert (repeat["code"], repeat["fund_change"]) == ("10000", "N")
    over = client.api_alipay_trade_refund(
        refund_amount="20.01", out_trade_no="INTEROP_REF_LIB", out_request_no="LIB_R2"
    )
    assert (over["code"], over["sub_code"]) == ("40004", "ACQ.REASON_TRADE_REFUND_FEE_ERR")

    found = client.api_alipay_trade_fastpay_refund_query("LIB_R1", out_trade_no="INTEROP_REF_LIB")
    assert (found["code"], found["refund_status"], found["refund_amount"]) == (
        "10000",
        "REFUND_SUCCESS",
        "10.00",
    )
    by_trade_no = client.api_alipay_trade_fastpay_refund_query("LIB_R1", trade_no=first["trade_no"])
    assert by_trade_no["out_request_no"] == "LIB_R1"
    missing = client.api_alipay_trade_fastpay_refund_query("LIB_R9", out_trade_no="INTEROP_REF_LIB")
    assert missing == {"code": "10000", "msg": "Success"}


def test_library_verifies_the_refund_notification(
    background_sandbox: BackgroundSandbox, keys: dict[str, str]
) -> None:
    client = library(background_sandbox, keys, "notify")
    client.api_alipay_trade_precreate(
        subject="通知", out_trade_no="INTEROP_REF_NOTIFY", total_amount="8.00"
    )
    pay(background_sandbox, "INTEROP_REF_NOTIFY")
    client.api_alipay_trade_refund(
        refund_amount="8.00", out_trade_no="INTEROP_REF_NOTIFY", out_request_no="N_R1"
    )
    delivery = next_refund_notify(background_sandbox, "notify")
    data = form(delivery)
    signature = data.pop("sign")
    assert client.verify(dict(data), signature)
    assert not client.verify(data | {"refund_fee": "0.01"}, signature)
    assert (data["trade_status"], data["out_biz_no"], data["refund_fee"]) == (
        "TRADE_CLOSED",
        "N_R1",
        "8.00",
    )

    event = adapter(background_sandbox, keys).parse_callback(
        delivery.headers, delivery.body, now=dt.datetime.now(dt.UTC)
    )
    assert event.trade is None and event.refund is not None
    assert (event.refund.out_refund_no, event.refund.state) == ("N_R1", RefundState.SUCCEEDED)


def test_adapter_refunds_over_http(
    background_sandbox: BackgroundSandbox, keys: dict[str, str]
) -> None:
    channel = adapter(background_sandbox, keys)
    now = dt.datetime.now(dt.UTC)
    order = CreateOrder(
        out_trade_no="INTEROP_REF_ADAPTER",
        amount_minor=10000,
        currency="CNY",
        description="往返退款",
        notify_url=f"{background_sandbox.notify_url}/adapter",
        method="qr",
        expires_at=now + dt.timedelta(minutes=15),
    )
    created = channel.build_create(order, now=now)
    assert isinstance(created, HttpRequest)
    assert channel.parse_create(send(created), now=now).credential["qr_code"]
    pay(background_sandbox, "INTEROP_REF_ADAPTER")

    def refund(number: str, amount: int) -> CreateRefund:
        return CreateRefund(
            out_refund_no=number,
            out_trade_no="INTEROP_REF_ADAPTER",
            refund_minor=amount,
            total_minor=10000,
            currency="CNY",
            notify_url=order.notify_url,
            reason="部分退款",
        )

    for number, amount in [("A_R1", 3000), ("A_R2", 2500)]:
        request = refund(number, amount)
        status = channel.parse_refund(
            send(channel.build_refund(request, now=now)), now=now, refund=request
        )
        assert (status.state, status.out_refund_no, status.amount_minor) == (
            RefundState.SUCCEEDED,
            number,
            amount,
        )
    # A retry of the same refund: accepted, no money moved, the query tells the state.
    repeated = channel.parse_refund(
        send(channel.build_refund(refund("A_R2", 2500), now=now)), now=now
    )
    assert repeated.state is RefundState.PROCESSING
    # 45.00 remain: 45.01 is refused for good with Alipay's code.
    with pytest.raises(ChannelFatal) as refused:
        channel.parse_refund(send(channel.build_refund(refund("A_R3", 4501), now=now)), now=now)
    assert refused.value.code == "ACQ.REASON_TRADE_REFUND_FEE_ERR"

    for number, amount in [("A_R1", 3000), ("A_R2", 2500)]:
        queried = channel.parse_refund_query(
            send(channel.build_refund_query(number, out_trade_no="INTEROP_REF_ADAPTER", now=now)),
            out_refund_no=number,
            now=now,
        )
        assert (queried.state, queried.channel_state, queried.amount_minor) == (
            RefundState.SUCCEEDED,
            "REFUND_SUCCESS",
            amount,
        )
        assert queried.succeeded_at is not None
    with pytest.raises(ChannelOrderNotFound):
        channel.parse_refund_query(
            send(channel.build_refund_query("A_R3", out_trade_no="INTEROP_REF_ADAPTER", now=now)),
            out_refund_no="A_R3",
            now=now,
        )
    received = {
        event.refund.out_refund_no
        for event in (
            channel.parse_callback(delivery.headers, delivery.body, now=now)
            for delivery in (next_refund_notify(background_sandbox, "adapter") for _ in range(2))
        )
        if event.refund is not None
    }
    assert received == {"A_R1", "A_R2"}


def test_bills_from_the_library_and_the_adapter(
    background_sandbox: BackgroundSandbox, keys: dict[str, str]
) -> None:
    client = library(background_sandbox, keys, "bills")
    client.api_alipay_trade_precreate(
        subject="账单", out_trade_no="INTEROP_BILL", total_amount="200.00"
    )
    pay(background_sandbox, "INTEROP_BILL")
    client.api_alipay_trade_refund(
        refund_amount="50.00", out_trade_no="INTEROP_BILL", out_request_no="BILL_R1"
    )
    today = dt.datetime.now(BEIJING).date()
    # The library's generic call verifies the signed download-URL answer.
    located: dict[str, Any] = client.server_api(
        "alipay.data.dataservice.bill.downloadurl.query",
        {"bill_type": "trade", "bill_date": today.isoformat()},
    )
    assert located["code"] == "10000"
    archive = zipfile.ZipFile(io.BytesIO(httpx.get(located["bill_download_url"]).content))
    assert all(not info.flag_bits & 0x800 for info in archive.infolist())  # GBK names

    channel = adapter(background_sandbox, keys)
    now = dt.datetime.now(dt.UTC)
    page = channel.parse_statement(
        send(channel.build_statement(today, now=now)), cursor={}, now=now
    )
    assert page.next_request is not None and page.lines == ()
    final = channel.parse_statement(send(page.next_request), cursor=page.cursor, now=now)
    assert final.next_request is None
    ours = [line for line in final.lines if line.out_trade_no == "INTEROP_BILL"]
    assert [
        (line.kind, line.amount_minor, line.fee_minor, line.out_refund_no) for line in ours
    ] == [
        (StatementLineKind.PAYMENT, 20000, 120, None),
        (StatementLineKind.REFUND, 5000, 30, "BILL_R1"),
    ]
    assert ours[0].channel_trade_no and ours[0].channel_trade_no == ours[1].channel_trade_no
    yesterday = today - dt.timedelta(days=1)
    empty = channel.parse_statement(
        send(channel.build_statement(yesterday, now=now)),
        cursor={},
        now=dt.datetime.combine(today, dt.time(10), BEIJING),
    )
    assert (empty.lines, empty.next_request) == ((), None)
