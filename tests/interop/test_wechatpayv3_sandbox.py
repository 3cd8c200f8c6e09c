"""The unmodified ``wechatpayv3`` client against the WeChat Pay sandbox.

The library is synchronous (``requests``), so the sandbox and a callback receiver run on their
own event loop in a background thread. The library verifies every 2xx answer's signature and
every callback's, so these tests fail if the sandbox signs, encrypts or frames anything the way
WeChat would not.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from wechatpayv3 import WeChatPay, WeChatPayType

from tests.interop.harness import BackgroundSandbox, running_sandbox


@pytest.fixture(scope="module")
def background_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundSandbox]:
    with running_sandbox(
        tmp_path_factory.mktemp("wechat-sandbox"),
        route="/callbacks/wechatpay/main",
        answer=lambda: web.Response(status=204),
        seed=3,
    ) as sandbox:
        yield sandbox


@dataclass
class Merchant:
    mchid: str
    appid: str
    serial_no: str
    private_key_pem: str
    public_key_pem: str
    apiv3_key: str


def new_merchant(mchid: str) -> Merchant:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return Merchant(
        mchid=mchid,
        appid="wxd678efh567hg6787",
        serial_no=secrets.token_hex(20).upper(),
        private_key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        public_key_pem=key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
        apiv3_key=secrets.token_hex(16),
    )


def register(
    sandbox: BackgroundSandbox, merchant: Merchant, platform_mode: str = "public_key"
) -> dict[str, Any]:
    response = sandbox.admin(
        "POST",
        "/sandbox/wechatpay/merchants",
        {
            "mchid": merchant.mchid,
            "appid": merchant.appid,
            "merchant_serial_no": merchant.serial_no,
            "merchant_public_key_pem": merchant.public_key_pem,
            "apiv3_key": merchant.apiv3_key,
            "platform_mode": platform_mode,
        },
    )
    assert response.status_code == 200, response.text
    registration: dict[str, Any] = response.json()
    return registration


def client_for(
    sandbox: BackgroundSandbox,
    merchant: Merchant,
    *,
    public_key: str | None = None,
    public_key_id: str | None = None,
) -> WeChatPay:
    wxpay = WeChatPay(
        wechatpay_type=WeChatPayType.NATIVE,
        mchid=merchant.mchid,
        private_key=merchant.private_key_pem,
        cert_serial_no=merchant.serial_no,
        appid=merchant.appid,
        apiv3_key=merchant.apiv3_key,
        notify_url=sandbox.notify_url,
        public_key=public_key,
        public_key_id=public_key_id,
        timeout=(5, 10),
    )
    # The library has no base-URL option (see docs/PROTOCOLS.md).
    wxpay._core._gate_way = sandbox.base_url
    return wxpay


@pytest.fixture(scope="module")
def merchant(background_sandbox: BackgroundSandbox) -> tuple[Merchant, dict[str, Any]]:
    merchant = new_merchant("1900000109")
    return merchant, register(background_sandbox, merchant)


@pytest.fixture
def wxpay(
    background_sandbox: BackgroundSandbox, merchant: tuple[Merchant, dict[str, Any]]
) -> WeChatPay:
    credentials, registration = merchant
    return client_for(
        background_sandbox,
        credentials,
        public_key=registration["platform_public_key_pem"],
        public_key_id=registration["platform_public_key_id"],
    )


def test_native_create_query_close(wxpay: WeChatPay) -> None:
    code, message = wxpay.pay(
        description="Image形象店-深圳腾大-QQ公仔",
        out_trade_no="INTEROP_CLOSE_01",
        amount={"total": 1},
        attach="自定义数据",
    )
    assert code == 200, message
    assert json.loads(message)["code_url"].startswith("weixin://wxpay/bizpayurl?pr=")

    code, message = wxpay.query(out_trade_no="INTEROP_CLOSE_01")
    assert code == 200, message
    assert json.loads(message)["trade_state"] == "NOTPAY"

    code, message = wxpay.close(out_trade_no="INTEROP_CLOSE_01")
    assert code == 204, message
    code, message = wxpay.query(out_trade_no="INTEROP_CLOSE_01")
    assert json.loads(message)["trade_state"] == "CLOSED"


def test_same_order_again_and_changed(wxpay: WeChatPay) -> None:
    first = wxpay.pay(description="QQ公仔", out_trade_no="INTEROP_IDEM_01", amount={"total": 5})
    again = wxpay.pay(description="QQ公仔", out_trade_no="INTEROP_IDEM_01", amount={"total": 5})
    assert first == again
    code, message = wxpay.pay(
        description="QQ公仔", out_trade_no="INTEROP_IDEM_01", amount={"total": 6}
    )
    assert code == 403
    assert json.loads(message)["code"] == "OUT_TRADE_NO_USED"


def test_payment_callback_is_accepted_by_the_library(
    background_sandbox: BackgroundSandbox,
    wxpay: WeChatPay,
    merchant: tuple[Merchant, dict[str, Any]],
) -> None:
    code, message = wxpay.pay(
        description="QQ公仔", out_trade_no="INTEROP_PAID_01", amount={"total": 888}
    )
    assert code == 200, message
    paid = background_sandbox.admin(
        "POST",
        "/sandbox/wechatpay/orders/INTEROP_PAID_01/pay",
        {"mchid": merchant[0].mchid, "outcome": "success"},
    )
    assert paid.status_code == 200, paid.text

    delivery = background_sandbox.deliveries.get(timeout=5)
    notification = wxpay.callback(delivery.headers, delivery.body)
    assert notification is not None
    assert notification["event_type"] == "TRANSACTION.SUCCESS"
    transaction = notification["resource"]
    assert transaction["out_trade_no"] == "INTEROP_PAID_01"
    assert transaction["trade_state"] == "SUCCESS"
    assert transaction["amount"]["total"] == 888

    # The library's own query of the paid order, by both numbers, verifies as well.
    code, message = wxpay.query(transaction_id=transaction["transaction_id"])
    assert code == 200, message
    assert json.loads(message) == transaction

    # A tampered callback is refused by the library.
    tampered = delivery.body.replace(b"TRANSACTION.SUCCESS", b"TRANSACTION.SUCCES5")
    assert wxpay.callback(delivery.headers, tampered) is None


def test_library_refuses_answers_signed_with_another_key(
    background_sandbox: BackgroundSandbox, merchant: tuple[Merchant, dict[str, Any]]
) -> None:
    credentials, registration = merchant
    stranger = new_merchant("1900000999")
    wxpay = client_for(
        background_sandbox,
        credentials,
        public_key=stranger.public_key_pem,
        public_key_id=registration["platform_public_key_id"],
    )
    with pytest.raises(Exception, match="failed to verify the signature"):
        wxpay.query(out_trade_no="INTEROP_CLOSE_01")


def self_signed_pem(common_name: str) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def test_certificate_mode_client(background_sandbox: BackgroundSandbox, tmp_path: Path) -> None:
    # Certificate mode: the library starts from the certificates in cert_dir (here an unrelated
    # one, so construction makes no network call), meets an unknown Wechatpay-Serial on the
    # first answer, downloads /v3/certificates from the sandbox, decrypts it with the APIv3 key
    # and verifies the answer against the certificate it found.
    merchant = new_merchant("1900000333")
    registration = register(background_sandbox, merchant, platform_mode="certificate")
    cert_dir = tmp_path / "certs"
    cert_dir.mkdir()
    (cert_dir / "old.pem").write_text(self_signed_pem("an old platform certificate"))
    wxpay = WeChatPay(
        wechatpay_type=WeChatPayType.NATIVE,
        mchid=merchant.mchid,
        private_key=merchant.private_key_pem,
        cert_serial_no=merchant.serial_no,
        appid=merchant.appid,
        apiv3_key=merchant.apiv3_key,
        notify_url=background_sandbox.notify_url,
        cert_dir=str(cert_dir),
        timeout=(5, 10),
    )
    wxpay._core._gate_way = background_sandbox.base_url

    code, message = wxpay.pay(
        description="QQ公仔", out_trade_no="INTEROP_CERT_01", amount={"total": 2}
    )
    assert code == 200, message
    assert (cert_dir / f"{registration['platform_serial_no']}.pem").exists()
    code, message = wxpay.query(out_trade_no="INTEROP_CERT_01")
    assert (code, json.loads(message)["trade_state"]) == (200, "NOTPAY")
