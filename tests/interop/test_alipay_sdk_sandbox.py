"""The unmodified ``python-alipay-sdk`` against the Alipay sandbox, and its signing code against
payfront's adapter.

The library is synchronous (``urlopen``), so the sandbox and a notify receiver run on their own
event loop in a background thread. The library verifies every answer's signature over the span
it locates in the raw text, so these tests fail if the sandbox signs or frames an answer the
way Alipay would not; its ``verify()`` checks the sandbox's notifications.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote_plus

import httpx
import pytest
from aiohttp import web
from alipay import AliPay
from alipay.exceptions import AliPayValidationError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from channels.alipay import Alipay, AlipayConfig
from channels.base import TradeState
from channels.errors import CallbackRejected
from tests.interop.harness import BackgroundSandbox, running_sandbox

APP_ID = "2021000122671234"


@pytest.fixture(scope="module")
def background_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundSandbox]:
    with running_sandbox(
        tmp_path_factory.mktemp("alipay-sandbox"),
        route="/callbacks/alipay/main",
        answer=lambda: web.Response(text="success"),
        seed=5,
    ) as sandbox:
        yield sandbox


def _pems(key: rsa.RSAPrivateKey) -> tuple[str, str]:
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
    return private, public


@dataclass
class App:
    private_key_pem: str
    registration: dict[str, Any]


@pytest.fixture(scope="module")
def app(background_sandbox: BackgroundSandbox) -> App:
    private, public = _pems(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    answer = background_sandbox.admin(
        "POST", "/sandbox/alipay/apps", {"app_id": APP_ID, "app_public_key_pem": public}
    )
    assert answer.status_code == 200, answer.text
    return App(private, answer.json())


def client_for(sandbox: BackgroundSandbox, app: App, alipay_public_key_pem: str) -> AliPay:
    client = AliPay(
        appid=APP_ID,
        app_notify_url=sandbox.notify_url,
        app_private_key_string=app.private_key_pem,
        alipay_public_key_string=alipay_public_key_pem,
        sign_type="RSA2",
    )
    # The library's own way to another gateway (docs/PROTOCOLS.md).
    client._gateway = f"{sandbox.base_url}/gateway.do"
    return client


@pytest.fixture
def client(background_sandbox: BackgroundSandbox, app: App) -> AliPay:
    return client_for(background_sandbox, app, app.registration["alipay_public_key_pem"])


def scan(sandbox: BackgroundSandbox, out_trade_no: str, outcome: str = "scan") -> None:
    answer = sandbox.admin(
        "POST", f"/sandbox/alipay/orders/{out_trade_no}/pay", {"outcome": outcome}
    )
    assert answer.status_code == 200, answer.text


def test_precreate_query_close(background_sandbox: BackgroundSandbox, client: AliPay) -> None:
    created = client.api_alipay_trade_precreate(
        subject="测试订单 Image形象店", out_trade_no="INTEROP_ALI_01", total_amount="0.01"
    )
    assert created["code"] == "10000", created
    assert created["qr_code"].startswith("https://qr.alipay.com/")

    # A precreated trade does not exist until the buyer scans.
    assert client.api_alipay_trade_query(out_trade_no="INTEROP_ALI_01")["sub_code"] == (
        "ACQ.TRADE_NOT_EXIST"
    )
    assert client.api_alipay_trade_close(out_trade_no="INTEROP_ALI_01")["sub_code"] == (
        "ACQ.TRADE_NOT_EXIST"
    )
    scan(background_sandbox, "INTEROP_ALI_01")
    queried = client.api_alipay_trade_query(out_trade_no="INTEROP_ALI_01")
    assert (queried["code"], queried["trade_status"]) == ("10000", "WAIT_BUYER_PAY")
    assert queried["total_amount"] == "0.01"

    closed = client.api_alipay_trade_close(out_trade_no="INTEROP_ALI_01")
    assert closed["code"] == "10000" and closed["trade_no"] == queried["trade_no"]
    by_trade_no = client.api_alipay_trade_query(trade_no=queried["trade_no"])
    assert by_trade_no["trade_status"] == "TRADE_CLOSED"


def test_same_order_again_and_changed(client: AliPay) -> None:
    first = client.api_alipay_trade_precreate(
        subject="QQ公仔", out_trade_no="INTEROP_ALI_IDEM", total_amount=12.5
    )
    again = client.api_alipay_trade_precreate(
        subject="QQ公仔", out_trade_no="INTEROP_ALI_IDEM", total_amount="12.50"
    )
    assert first["code"] == again["code"] == "10000"
    assert first["qr_code"] == again["qr_code"]
    changed = client.api_alipay_trade_precreate(
        subject="QQ公仔", out_trade_no="INTEROP_ALI_IDEM", total_amount="12.51"
    )
    assert (changed["code"], changed["sub_code"]) == ("40004", "ACQ.CONTEXT_INCONSISTENT")


def test_paid_notification_is_verified_by_the_library_and_the_adapter(
    background_sandbox: BackgroundSandbox, client: AliPay, app: App
) -> None:
    created = client.api_alipay_trade_precreate(
        subject="大乐透", out_trade_no="INTEROP_ALI_PAID", total_amount="88.88"
    )
    assert created["code"] == "10000", created
    scan(background_sandbox, "INTEROP_ALI_PAID", outcome="success")

    delivery = background_sandbox.deliveries.get(timeout=5)
    assert delivery.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    data = dict(parse_qsl(delivery.body.decode(), keep_blank_values=True))
    signature = data.pop("sign")
    assert client.verify(dict(data), signature)
    assert not client.verify(data | {"total_amount": "0.01"}, signature)
    assert data["trade_status"] == "TRADE_SUCCESS" and data["total_amount"] == "88.88"

    # payfront's adapter reads the same bytes the same way.
    adapter = Alipay(
        AlipayConfig.from_credentials(
            {
                "app_id": APP_ID,
                "app_private_key_pem": app.private_key_pem,
                "alipay_public_key_pem": app.registration["alipay_public_key_pem"],
            }
        )
    )
    event = adapter.parse_callback(delivery.headers, delivery.body, now=datetime.now(UTC))
    assert event.event_id == data["notify_id"]
    assert event.trade.state is TradeState.PAID and event.trade.amount_minor == 8888

    queried = client.api_alipay_trade_query(out_trade_no="INTEROP_ALI_PAID")
    assert queried["trade_status"] == "TRADE_SUCCESS"
    assert queried["trade_no"] == data["trade_no"]
    repeated = client.api_alipay_trade_precreate(
        subject="大乐透", out_trade_no="INTEROP_ALI_PAID", total_amount="88.88"
    )
    assert repeated["sub_code"] == "ACQ.TRADE_HAS_SUCCESS"


def test_library_refuses_answers_signed_with_another_key(
    background_sandbox: BackgroundSandbox, app: App
) -> None:
    _, stranger = _pems(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    client = client_for(background_sandbox, app, stranger)
    with pytest.raises(AliPayValidationError):
        client.api_alipay_trade_query(out_trade_no="INTEROP_ALI_01")


def test_sandbox_refuses_requests_signed_with_another_key(
    background_sandbox: BackgroundSandbox, app: App
) -> None:
    private, _ = _pems(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    impostor = App(private, app.registration)
    client = client_for(background_sandbox, impostor, app.registration["alipay_public_key_pem"])
    answer = client.api_alipay_trade_query(out_trade_no="INTEROP_ALI_01")
    assert (answer["code"], answer["sub_code"]) == ("40002", "isv.invalid-signature")


def test_page_pay_url_from_the_library_opens_the_cashier(
    background_sandbox: BackgroundSandbox, client: AliPay
) -> None:
    query_string = client.api_alipay_trade_page_pay(
        subject="测试", out_trade_no="INTEROP_ALI_PAGE", total_amount="1.00"
    )
    url = f"{background_sandbox.base_url}/gateway.do?{query_string}"
    opened = httpx.get(url, headers={"Accept": "application/json"}, timeout=10)
    assert opened.status_code == 200, opened.text
    assert opened.json()["verified"] is True
    tampered = httpx.get(
        url.replace("INTEROP_ALI_PAGE", "INTEROP_ALI_PAGX"),
        headers={"Accept": "application/json"},
        timeout=10,
    )
    assert tampered.json()["sub_code"] == "isv.invalid-signature"


def test_notify_signed_by_the_library_is_accepted_by_the_adapter() -> None:
    alipay_private, alipay_public = _pems(
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    app_private, _ = _pems(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    # The library signing as Alipay does: its private key is Alipay's here.
    signer = AliPay(
        appid=APP_ID,
        app_private_key_string=alipay_private,
        alipay_public_key_string=alipay_public,
    )
    fields = {
        "notify_id": "2026112500222120531056380529774436",
        "notify_type": "trade_status_sync",
        "notify_time": "2026-11-25 12:05:32",
        "charset": "utf-8",
        "version": "1.0",
        "app_id": APP_ID,
        "trade_status": "TRADE_SUCCESS",
        "out_trade_no": "pay0001",
        "trade_no": "2026112522001404070200176844",
        "total_amount": "0.01",
        "subject": "大乐透 2.1",
        "fund_bill_list": json.dumps([{"amount": "0.01", "fundChannel": "ALIPAYACCOUNT"}]),
        "gmt_payment": "2026-11-25 12:05:31",
    }
    unsigned = "&".join(f"{k}={v}" for k, v in signer._ordered_data(dict(fields)))
    body = "&".join(
        f"{k}={quote_plus(v)}"
        for k, v in [*fields.items(), ("sign_type", "RSA2"), ("sign", signer._sign(unsigned))]
    ).encode()
    adapter = Alipay(
        AlipayConfig.from_credentials(
            {
                "app_id": APP_ID,
                "app_private_key_pem": app_private,
                "alipay_public_key_pem": alipay_public,
            }
        )
    )
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    event = adapter.parse_callback(headers, body, now=datetime.now(UTC))
    assert event.trade.amount_minor == 1 and event.trade.out_trade_no == "pay0001"
    with pytest.raises(CallbackRejected):
        adapter.parse_callback(headers, body.replace(b"0.01", b"0.02", 1), now=datetime.now(UTC))
