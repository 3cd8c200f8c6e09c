"""Tests for the Alipay adapter's payouts (channels/alipay.py + alipay_payouts): the
public-key-certificate mode (SNs computed as python-alipay-sdk computes them, sent and signed
with every request), the transfer and transfer-query requests, every status and error class.

Certificates and answers are made here at test time, independently of the adapter's code."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest
from alipay import DCAliPay
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.x509.oid import NameOID

from channels.alipay import Alipay, AlipayConfig, from_credentials
from channels.alipay_payouts import CertMode
from channels.base import CreatePayout, HttpResponse, PayoutState
from channels.errors import (
    ChannelError,
    ChannelFatal,
    ChannelOrderNotFound,
    ChannelRetryable,
    ChannelUnknownOutcome,
)

NOW = dt.datetime(2026, 11, 25, 4, 0, 0, tzinfo=dt.UTC)
APP_ID = "2021001144680325"
TRANSFER_KEY = "alipay_fund_trans_uni_transfer_response"
QUERY_KEY = "alipay_fund_trans_common_query_response"
# python-alipay-sdk reads certificates with pyOpenSSL APIs that now warn.
sdk_warnings = pytest.mark.filterwarnings("ignore:X509:DeprecationWarning")


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ant Financial"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Certification Authority"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def issue(
    subject: str, key: rsa.RSAPublicKey, issuer: x509.Name, signer: rsa.RSAPrivateKey
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(signer, hashes.SHA256())
    )


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


@pytest.fixture(scope="module")
def app_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def alipay_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def certificates(app_key: rsa.RSAPrivateKey, alipay_key: rsa.RSAPrivateKey) -> dict[str, str]:
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root_name = _name("Ant Financial Certification Authority R1")
    root = issue(
        "Ant Financial Certification Authority R1", root_key.public_key(), root_name, root_key
    )
    second_root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    second_root = issue(
        "Ant Financial Certification Authority R2",
        second_root_key.public_key(),
        _name("Ant Financial Certification Authority R2"),
        second_root_key,
    )
    return {
        "app_cert_pem": pem(issue("app " + APP_ID, app_key.public_key(), root_name, root_key)),
        "alipay_cert_pem": pem(issue("alipay", alipay_key.public_key(), root_name, root_key)),
        # python-alipay-sdk splits the chain on blank lines, as Alipay's file has them.
        "alipay_root_cert_pem": pem(root) + "\n" + pem(second_root),
    }


@pytest.fixture
def channel(app_key: rsa.RSAPrivateKey, certificates: dict[str, str]) -> Alipay:
    private = app_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return from_credentials({"app_id": APP_ID, "app_private_key_pem": private, **certificates})


def payout(**overrides: Any) -> CreatePayout:
    fields: dict[str, Any] = {
        "out_payout_no": "A20261125000001",
        "amount_minor": 10050,
        "currency": "CNY",
        "payee_id": "buyer@example.com",
        "payee_type": "ALIPAY_LOGON_ID",
        "payee_name": "张三",
        "remark": "钱包提现",
    }
    fields.update(overrides)
    return CreatePayout(**fields)


def request_params(url: str, body: bytes) -> dict[str, str]:
    params = dict(parse_qsl(urlsplit(url).query))
    params.update(parse_qsl(body.decode()))
    return params


def answer(key: rsa.RSAPrivateKey, response_key: str, payload: dict[str, Any]) -> HttpResponse:
    member = orjson.dumps(payload)
    sign = base64.b64encode(key.sign(member, PKCS1v15(), SHA256())).decode()
    body = (
        b'{"'
        + response_key.encode()
        + b'":'
        + member
        + b',"alipay_cert_sn":"e67e87751c905c95d28dbed1682b2053","sign":"'
        + sign.encode()
        + b'"}'
    )
    return HttpResponse(200, {"Content-Type": "text/html;charset=utf-8"}, body)


# -- certificate mode -----------------------------------------------------------------------


@sdk_warnings
def test_cert_sns_are_computed_as_python_alipay_sdk_does(certificates: dict[str, str]) -> None:
    mode = CertMode.from_credentials(certificates)
    assert mode is not None
    assert mode.app_cert_sn == DCAliPay.get_cert_sn(certificates["app_cert_pem"])
    assert mode.alipay_root_cert_sn == DCAliPay.get_root_cert_sn(
        certificates["alipay_root_cert_pem"]
    )
    assert "_" in mode.alipay_root_cert_sn  # both RSA roots count


def test_cert_mode_needs_all_three_certificates(certificates: dict[str, str]) -> None:
    assert CertMode.from_credentials({}) is None
    with pytest.raises(ValueError, match="alipay_root_cert_pem"):
        CertMode.from_credentials({k: v for k, v in certificates.items() if "root" not in k})


@sdk_warnings
def test_transfer_request_is_signed_with_the_cert_sns(
    channel: Alipay, app_key: rsa.RSAPrivateKey, certificates: dict[str, str]
) -> None:
    request = channel.build_payout(payout(), now=NOW)
    params = request_params(request.url, request.body)
    assert params["method"] == "alipay.fund.trans.uni.transfer"
    assert params["app_cert_sn"] == DCAliPay.get_cert_sn(certificates["app_cert_pem"])
    assert params["alipay_root_cert_sn"] == DCAliPay.get_root_cert_sn(
        certificates["alipay_root_cert_pem"]
    )
    assert json.loads(params["biz_content"]) == {
        "out_biz_no": "A20261125000001",
        "trans_amount": "100.50",
        "product_code": "TRANS_ACCOUNT_NO_PWD",
        "biz_scene": "DIRECT_TRANSFER",
        "order_title": "钱包提现",
        "payee_info": {
            "identity": "buyer@example.com",
            "identity_type": "ALIPAY_LOGON_ID",
            "name": "张三",
        },
        "remark": "钱包提现",
    }
    unsigned = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "sign")
    app_key.public_key().verify(
        base64.b64decode(params["sign"]), unsigned.encode(), PKCS1v15(), SHA256()
    )
    # Every call of a certificate-mode app carries the SNs, not only transfers.
    query = request_params(*_url_body(channel.build_query("P1", now=NOW)))
    assert query["app_cert_sn"] == params["app_cert_sn"]


def _url_body(request: Any) -> tuple[str, bytes]:
    return request.url, request.body


def test_public_key_mode_cannot_pay_out(
    app_key: rsa.RSAPrivateKey, alipay_key: rsa.RSAPrivateKey
) -> None:
    config = AlipayConfig(
        app_id=APP_ID, app_private_key=app_key, alipay_public_key=alipay_key.public_key()
    )
    channel = Alipay(config)
    with pytest.raises(ChannelFatal) as caught:
        channel.build_payout(payout(), now=NOW)
    assert caught.value.code == "PAYOUT_NOT_SUPPORTED"
    params = request_params(*_url_body(channel.build_query("P1", now=NOW)))
    assert "app_cert_sn" not in params


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"currency": "USD"}, "CURRENCY_NOT_SUPPORTED"),
        ({"payee_name": None}, "PAYEE_NAME_REQUIRED"),
        ({"payee_type": "BANKCARD"}, "INVALID_PAYEE_TYPE"),
        ({"amount_minor": 0}, "INVALID_AMOUNT"),
        ({"out_payout_no": "has space"}, "INVALID_PAYOUT_NO"),
    ],
)
def test_refused_before_sending(channel: Alipay, overrides: dict[str, Any], code: str) -> None:
    with pytest.raises(ChannelFatal) as caught:
        channel.build_payout(payout(**overrides), now=NOW)
    assert caught.value.code == code


def test_user_id_payee_needs_no_name_and_logon_id_is_the_default(channel: Alipay) -> None:
    request = channel.build_payout(
        payout(payee_id="2088101117955611", payee_type="ALIPAY_USER_ID", payee_name=None), now=NOW
    )
    biz = json.loads(request_params(request.url, request.body)["biz_content"])
    assert biz["payee_info"] == {"identity": "2088101117955611", "identity_type": "ALIPAY_USER_ID"}
    request = channel.build_payout(payout(payee_type=None), now=NOW)
    biz = json.loads(request_params(request.url, request.body)["biz_content"])
    assert biz["payee_info"]["identity_type"] == "ALIPAY_LOGON_ID"


def test_transfer_query_request(channel: Alipay) -> None:
    request = channel.build_payout_query("A20261125000001", now=NOW)
    params = request_params(request.url, request.body)
    assert params["method"] == "alipay.fund.trans.common.query"
    assert json.loads(params["biz_content"]) == {
        "product_code": "TRANS_ACCOUNT_NO_PWD",
        "biz_scene": "DIRECT_TRANSFER",
        "out_biz_no": "A20261125000001",
    }


# -- answers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("SUCCESS", PayoutState.SUCCEEDED),
        ("DEALING", PayoutState.PROCESSING),
        ("FAIL", PayoutState.FAILED),
        ("REFUND", PayoutState.FAILED),
    ],
)
def test_transfer_answers(
    channel: Alipay, alipay_key: rsa.RSAPrivateKey, status: str, expected: PayoutState
) -> None:
    content = {
        "code": "10000",
        "msg": "Success",
        "out_biz_no": "A20261125000001",
        "order_id": "20261125110070000006040050105202",
        "pay_fund_order_id": "20261125110070001506040049801906",
        "status": status,
        "trans_date": "2026-11-25 12:00:01",
    }
    result = channel.parse_payout(
        answer(alipay_key, TRANSFER_KEY, content), payout=payout(), now=NOW
    )
    assert (result.state, result.channel_state) == (expected, status)
    assert result.channel_payout_no == "20261125110070000006040050105202"
    assert result.amount_minor == 10050
    if expected is PayoutState.SUCCEEDED:
        assert result.succeeded_at == dt.datetime(2026, 11, 25, 4, 0, 1, tzinfo=dt.UTC)


def test_query_answers(channel: Alipay, alipay_key: rsa.RSAPrivateKey) -> None:
    content = {
        "code": "10000",
        "msg": "Success",
        "out_biz_no": "A20261125000001",
        "order_id": "20261125110070000006040050105202",
        "status": "SUCCESS",
        "trans_amount": "100.50",
        "pay_date": "2026-11-25 12:00:01",
    }
    result = channel.parse_payout_query(
        answer(alipay_key, QUERY_KEY, content), out_payout_no="A20261125000001", now=NOW
    )
    assert (result.state, result.amount_minor) == (PayoutState.SUCCEEDED, 10050)
    failed = content | {"status": "FAIL", "fail_reason": "收款方账户异常"}
    result = channel.parse_payout_query(
        answer(alipay_key, QUERY_KEY, failed), out_payout_no="A20261125000001", now=NOW
    )
    assert (result.state, result.failure_reason) == (PayoutState.FAILED, "收款方账户异常")
    other = content | {"out_biz_no": "A-other"}
    with pytest.raises(ChannelUnknownOutcome):
        channel.parse_payout_query(
            answer(alipay_key, QUERY_KEY, other), out_payout_no="A20261125000001", now=NOW
        )


@pytest.mark.parametrize(
    ("sub_code", "expected"),
    [
        ("SYSTEM_ERROR", ChannelUnknownOutcome),
        ("PAYER_BALANCE_NOT_ENOUGH", ChannelRetryable),
        ("PAYEE_NOT_EXIST", ChannelFatal),
        ("PAYEE_USER_INFO_ERROR", ChannelFatal),
        ("EXCEED_LIMIT_SM_AMOUNT", ChannelFatal),
        ("EXCEED_LIMIT_DM_AMOUNT", ChannelFatal),
        ("ORDER_NOT_EXIST", ChannelOrderNotFound),
    ],
)
def test_error_classification(
    channel: Alipay, alipay_key: rsa.RSAPrivateKey, sub_code: str, expected: type[ChannelError]
) -> None:
    content = {"code": "40004", "msg": "Business Failed", "sub_code": sub_code, "sub_msg": "…"}
    with pytest.raises(ChannelError) as caught:
        channel.parse_payout(answer(alipay_key, TRANSFER_KEY, content), payout=payout(), now=NOW)
    assert type(caught.value) is expected and caught.value.code == sub_code


def test_unverified_answers_are_unknown(channel: Alipay, app_key: rsa.RSAPrivateKey) -> None:
    content = {
        "code": "10000",
        "msg": "Success",
        "out_biz_no": "A20261125000001",
        "status": "SUCCESS",
    }
    forged = answer(app_key, TRANSFER_KEY, content)  # not Alipay's key
    with pytest.raises(ChannelUnknownOutcome) as caught:
        channel.parse_payout(forged, payout=payout(), now=NOW)
    assert caught.value.code == "INVALID_RESPONSE_SIGNATURE"
