"""Transfers (payouts) against the running Alipay sandbox, in public-key-certificate mode, from
both sides: the unmodified ``python-alipay-sdk`` (``DCAliPay``, its certificate-mode client,
whose ``api_alipay_fund_trans_uni_transfer`` sends the certificate SNs and verifies every
answer) and payfront's adapter over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from alipay import AliPay, DCAliPay
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from channels.alipay import Alipay, from_credentials
from channels.base import CreatePayout, PayoutState
from channels.errors import ChannelFatal, ChannelOrderNotFound, ChannelRetryable
from tests.interop.harness import BackgroundSandbox, running_sandbox
from tests.interop.test_alipay_refunds_interop import send

APP_ID = "2021000122670001"
# python-alipay-sdk reads certificates with pyOpenSSL APIs that now warn.
pytestmark = pytest.mark.filterwarnings("ignore:X509:DeprecationWarning")


@pytest.fixture(scope="module")
def background_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundSandbox]:
    with running_sandbox(
        tmp_path_factory.mktemp("alipay-payout-sandbox"),
        route="/callbacks/alipay/{name}",
        answer=lambda: web.Response(text="success"),
        seed=17,
    ) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def app(background_sandbox: BackgroundSandbox) -> dict[str, str]:
    """A registered app put in certificate mode: its private key and its three certificates."""
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
    registered = background_sandbox.admin(
        "POST", "/sandbox/alipay/apps", {"app_id": APP_ID, "app_public_key_pem": public}
    )
    assert registered.status_code == 200, registered.text
    certificates = background_sandbox.admin("POST", f"/sandbox/alipay/apps/{APP_ID}/cert-mode")
    assert certificates.status_code == 200, certificates.text
    return {"private": private, "alipay_public": registered.json()["alipay_public_key_pem"]} | {
        k: v for k, v in certificates.json().items() if k.endswith("_pem")
    }


def top_up(sandbox: BackgroundSandbox, amount: int) -> None:
    answer = sandbox.admin("POST", f"/sandbox/alipay/apps/{APP_ID}/balance", {"amount": amount})
    assert answer.status_code == 200, answer.text


def library(sandbox: BackgroundSandbox, app: dict[str, str]) -> DCAliPay:
    client = DCAliPay(
        appid=APP_ID,
        app_private_key_string=app["private"],
        app_public_key_cert_string=app["app_cert_pem"],
        alipay_public_key_cert_string=app["alipay_cert_pem"],
        alipay_root_cert_string=app["alipay_root_cert_pem"],
    )
    client._gateway = f"{sandbox.base_url}/gateway.do"
    return client


def adapter(sandbox: BackgroundSandbox, app: dict[str, str]) -> Alipay:
    return from_credentials(
        {
            "app_id": APP_ID,
            "app_private_key_pem": app["private"],
            "app_cert_pem": app["app_cert_pem"],
            "alipay_cert_pem": app["alipay_cert_pem"],
            "alipay_root_cert_pem": app["alipay_root_cert_pem"],
            "gateway_url": f"{sandbox.base_url}/gateway.do",
        }
    )


def test_library_transfers_in_certificate_mode(
    background_sandbox: BackgroundSandbox, app: dict[str, str]
) -> None:
    client = library(background_sandbox, app)
    top_up(background_sandbox, 500)
    answer = client.api_alipay_fund_trans_uni_transfer(
        out_biz_no="LIB_T_1",
        identity_type="ALIPAY_LOGON_ID",
        identity="payee@example.com",
        trans_amount="3.00",
        name="张三",
        order_title="钱包提现",
    )  # the library verified the answer's signature with the Alipay certificate's key
    assert answer["code"] == "10000" and answer["status"] == "SUCCESS"
    again = client.api_alipay_fund_trans_uni_transfer(
        out_biz_no="LIB_T_1",
        identity_type="ALIPAY_LOGON_ID",
        identity="payee@example.com",
        trans_amount="3.00",
        name="张三",
        order_title="钱包提现",
    )
    assert again["order_id"] == answer["order_id"]
    short = client.api_alipay_fund_trans_uni_transfer(
        out_biz_no="LIB_T_2",
        identity_type="ALIPAY_USER_ID",
        identity="2088101117955611",
        trans_amount="2.01",
    )
    assert short["code"] == "40004" and short["sub_code"] == "PAYER_BALANCE_NOT_ENOUGH"
    queried = client.server_api(
        "alipay.fund.trans.common.query",
        {
            "product_code": "TRANS_ACCOUNT_NO_PWD",
            "biz_scene": "DIRECT_TRANSFER",
            "out_biz_no": "LIB_T_1",
        },
    )
    assert queried["status"] == "SUCCESS" and queried["trans_amount"] == "3.00"


def test_public_key_mode_is_refused(
    background_sandbox: BackgroundSandbox, app: dict[str, str]
) -> None:
    """The plain client (no certificate SNs) cannot transfer: Alipay's rule, kept here."""
    client = AliPay(
        appid=APP_ID,
        app_notify_url=None,
        app_private_key_string=app["private"],
        alipay_public_key_string=app["alipay_public"],
    )
    client._gateway = f"{background_sandbox.base_url}/gateway.do"
    refused = client.server_api(
        "alipay.fund.trans.uni.transfer",
        {
            "out_biz_no": "PK_1",
            "trans_amount": "1.00",
            "product_code": "TRANS_ACCOUNT_NO_PWD",
            "biz_scene": "DIRECT_TRANSFER",
            "payee_info": {"identity": "2088101117955611", "identity_type": "ALIPAY_USER_ID"},
        },
    )  # signed, so the library hands the refusal back
    assert refused["code"] == "40001" and refused["sub_code"] == "isv.missing-app-cert-sn"


def test_adapter_pays_out_against_the_sandbox(
    background_sandbox: BackgroundSandbox, app: dict[str, str]
) -> None:
    channel = adapter(background_sandbox, app)
    top_up(background_sandbox, 1_000)

    def payout(number: str, amount: int, **overrides: Any) -> CreatePayout:
        fields: dict[str, Any] = {
            "out_payout_no": number,
            "amount_minor": amount,
            "currency": "CNY",
            "payee_id": "payee@example.com",
            "payee_name": "李四",
            "remark": "钱包提现",
        }
        fields.update(overrides)
        return CreatePayout(**fields)

    first = payout("PF_T_1", 800)
    made = channel.parse_payout(
        send(channel.build_payout(first, now=_now())), payout=first, now=_now()
    )
    assert made.state is PayoutState.SUCCEEDED and made.channel_payout_no
    repeated = channel.parse_payout(
        send(channel.build_payout(first, now=_now())), payout=first, now=_now()
    )
    assert repeated.channel_payout_no == made.channel_payout_no

    over = payout("PF_T_2", 10_000)
    with pytest.raises(ChannelRetryable) as refused:
        channel.parse_payout(send(channel.build_payout(over, now=_now())), payout=over, now=_now())
    assert refused.value.code == "PAYER_BALANCE_NOT_ENOUGH"
    nobody = payout("PF_T_3", 10, payee_id="notexist@example.com")
    with pytest.raises(ChannelFatal) as refused_payee:
        channel.parse_payout(
            send(channel.build_payout(nobody, now=_now())), payout=nobody, now=_now()
        )
    assert refused_payee.value.code == "PAYEE_NOT_EXIST"

    found = channel.parse_payout_query(
        send(channel.build_payout_query("PF_T_1", now=_now())), out_payout_no="PF_T_1", now=_now()
    )
    assert found.state is PayoutState.SUCCEEDED and found.amount_minor == 800
    with pytest.raises(ChannelOrderNotFound):
        channel.parse_payout_query(
            send(channel.build_payout_query("PF_T_9", now=_now())),
            out_payout_no="PF_T_9",
            now=_now(),
        )


def _now() -> Any:
    import datetime as dt

    return dt.datetime.now(dt.UTC)
