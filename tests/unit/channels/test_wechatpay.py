"""Tests for channels/wechatpay.py: signing, verification, classification, callbacks, interop."""

from __future__ import annotations

import base64
import json
import random
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256

from channels.base import CreateOrder, HttpResponse, TradeState
from channels.errors import (
    CallbackRejected,
    ChannelAlreadyPaid,
    ChannelError,
    ChannelFatal,
    ChannelOrderNotFound,
    ChannelRetryable,
    ChannelUnknownOutcome,
)
from channels.wechatpay import (
    SignatureRejected,
    WechatPay,
    WechatPayConfig,
    format_time_expire,
    random_nonce,
    sign_request,
    verify_response_signature,
)

NOW = datetime(2026, 11, 25, 4, 0, 0, tzinfo=UTC)
MCHID = "1900000109"
APPID = "wxd678efh567hg6787"
MERCHANT_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
PLATFORM_KEY_ID = "PUB_KEY_ID_0114232134912410000000000000000"
APIV3_KEY = "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6"
NONCE = "593BEC0C930BF1AFEB40B4A08C8FB242"


# -- keys and factories ---------------------------------------------------------------------


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def merchant_key() -> rsa.RSAPrivateKey:
    return _rsa_key()


@pytest.fixture(scope="module")
def platform_key() -> rsa.RSAPrivateKey:
    return _rsa_key()


@pytest.fixture(scope="module")
def config(merchant_key: rsa.RSAPrivateKey, platform_key: rsa.RSAPrivateKey) -> WechatPayConfig:
    return WechatPayConfig(
        mchid=MCHID,
        appid=APPID,
        merchant_serial_no=MERCHANT_SERIAL,
        merchant_private_key=merchant_key,
        apiv3_key=APIV3_KEY.encode(),
        platform_public_key=platform_key.public_key(),
        platform_public_key_id=PLATFORM_KEY_ID,
    )


@pytest.fixture
def channel(config: WechatPayConfig) -> WechatPay:
    return WechatPay(config, nonce_factory=lambda: NONCE)


def private_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def order(**overrides: Any) -> CreateOrder:
    fields: dict[str, Any] = {
        "out_trade_no": "P20261125000001",
        "amount_minor": 1999,
        "currency": "CNY",
        "description": "Image形象店-深圳腾大-QQ公仔",
        "notify_url": "https://pay.example.com/callbacks/wechatpay",
        "method": "native",
    }
    fields.update(overrides)
    return CreateOrder(**fields)


def signature_headers(
    key: rsa.RSAPrivateKey,
    body: bytes,
    *,
    timestamp: int | None = None,
    nonce: str = "c5ac7061fccab6bf3e254dcf98995b8c",
    serial: str = PLATFORM_KEY_ID,
) -> dict[str, str]:
    """Headers as WeChat Pay signs an answer or a callback."""
    ts = str(int(NOW.timestamp()) if timestamp is None else timestamp)
    message = f"{ts}\n{nonce}\n".encode() + body + b"\n"
    signature = base64.b64encode(key.sign(message, PKCS1v15(), SHA256())).decode()
    return {
        "Wechatpay-Timestamp": ts,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": signature,
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }


def signed_response(key: rsa.RSAPrivateKey, status: int, payload: object = None) -> HttpResponse:
    body = b"" if payload is None else orjson.dumps(payload)
    return HttpResponse(status, signature_headers(key, body), body)


def parse_authorization(header: str) -> dict[str, str]:
    scheme, _, params = header.partition(" ")
    assert scheme == "WECHATPAY2-SHA256-RSA2048"
    return dict(re.findall(r'(\w+)="([^"]*)"', params))


def assert_signed_by(key: rsa.RSAPrivateKey, header: str, expected_message: bytes) -> None:
    params = parse_authorization(header)
    signature = base64.b64decode(params["signature"])
    key.public_key().verify(signature, expected_message, PKCS1v15(), SHA256())


TRANSACTION: dict[str, Any] = {
    "appid": APPID,
    "mchid": MCHID,
    "out_trade_no": "P20261125000001",
    "transaction_id": "4200001460202611258197935963",
    "trade_type": "NATIVE",
    "trade_state": "SUCCESS",
    "trade_state_desc": "支付成功",
    "bank_type": "CMC",
    "attach": "",
    "success_time": "2026-11-25T12:05:31+08:00",
    "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
    "amount": {"total": 1999, "payer_total": 1999, "currency": "CNY", "payer_currency": "CNY"},
}


def encrypt_resource(
    plaintext: bytes, *, key: bytes = APIV3_KEY.encode(), nonce: str = "fdasflkja484", ad: str = ""
) -> str:
    return base64.b64encode(AESGCM(key).encrypt(nonce.encode(), plaintext, ad.encode())).decode()


def callback_body(
    resource_plaintext: bytes,
    *,
    associated_data: str | None = "transaction",
    algorithm: str = "AEAD_AES_256_GCM",
    key: bytes = APIV3_KEY.encode(),
) -> bytes:
    resource: dict[str, Any] = {
        "original_type": "transaction",
        "algorithm": algorithm,
        "ciphertext": encrypt_resource(
            resource_plaintext, key=key, ad=associated_data or "", nonce="fdasflkja484"
        ),
        "nonce": "fdasflkja484",
    }
    if associated_data is not None:
        resource["associated_data"] = associated_data
    return orjson.dumps(
        {
            "id": "EV-2018022511223320873",
            "create_time": "2026-11-25T12:05:32+08:00",
            "resource_type": "encrypt-resource",
            "event_type": "TRANSACTION.SUCCESS",
            "summary": "支付成功",
            "resource": resource,
        }
    )


# -- build_create ---------------------------------------------------------------------------


def test_build_create_request_line_headers_and_body(channel: WechatPay) -> None:
    request = channel.build_create(order(attach="shop-7"), now=NOW)

    assert request.method == "POST"
    assert request.url == "https://api.mch.weixin.qq.com/v3/pay/transactions/native"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"
    assert "payfront" in request.headers["User-Agent"]
    assert request.headers["Wechatpay-Serial"] == PLATFORM_KEY_ID
    assert json.loads(request.body) == {
        "appid": APPID,
        "mchid": MCHID,
        "description": "Image形象店-深圳腾大-QQ公仔",
        "out_trade_no": "P20261125000001",
        "attach": "shop-7",
        "notify_url": "https://pay.example.com/callbacks/wechatpay",
        "amount": {"total": 1999, "currency": "CNY"},
    }


def test_build_create_body_is_compact_utf8(channel: WechatPay) -> None:
    body = channel.build_create(order(), now=NOW).body

    assert "深圳腾大".encode() in body
    assert b"\\u" not in body
    assert b": " not in body and b", " not in body
    assert b"time_expire" not in body and b"attach" not in body  # absent, not null
    assert b'"total":1999' in body


def test_authorization_signs_the_exact_request(
    channel: WechatPay, merchant_key: rsa.RSAPrivateKey
) -> None:
    request = channel.build_create(order(), now=NOW)
    header = request.headers["Authorization"]
    params = parse_authorization(header)
    timestamp = str(int(NOW.timestamp()))

    assert params == {
        "mchid": MCHID,
        "nonce_str": NONCE,
        "signature": params["signature"],
        "timestamp": timestamp,
        "serial_no": MERCHANT_SERIAL,
    }
    expected = f"POST\n/v3/pay/transactions/native\n{timestamp}\n{NONCE}\n".encode()
    assert_signed_by(merchant_key, header, expected + request.body + b"\n")

    # The same JSON serialised differently is not what was signed.
    reserialised = json.dumps(json.loads(request.body)).encode()
    with pytest.raises(InvalidSignature):
        assert_signed_by(merchant_key, header, expected + reserialised + b"\n")


def test_authorization_params_parse_in_any_order(
    channel: WechatPay, merchant_key: rsa.RSAPrivateKey
) -> None:
    request = channel.build_create(order(), now=NOW)
    params = parse_authorization(request.headers["Authorization"])
    shuffled = "WECHATPAY2-SHA256-RSA2048 " + ",".join(
        f'{name}="{params[name]}"'
        for name in ("signature", "serial_no", "timestamp", "mchid", "nonce_str")
    )
    message = (
        f"POST\n/v3/pay/transactions/native\n{params['timestamp']}\n{params['nonce_str']}\n"
    ).encode() + request.body
    assert_signed_by(merchant_key, shuffled, message + b"\n")


def test_sign_request_string(merchant_key: rsa.RSAPrivateKey) -> None:
    signature = sign_request(merchant_key, "GET", "/v3/x?a=1", 1554208460, "abc", b"")
    merchant_key.public_key().verify(
        base64.b64decode(signature), b"GET\n/v3/x?a=1\n1554208460\nabc\n\n", PKCS1v15(), SHA256()
    )


def test_repeated_create_has_identical_parameters(config: WechatPayConfig) -> None:
    channel = WechatPay(config)  # random nonces
    first = channel.build_create(order(expires_at=NOW + timedelta(minutes=15)), now=NOW)
    later = channel.build_create(
        order(expires_at=NOW + timedelta(minutes=15)), now=NOW + timedelta(seconds=42)
    )

    assert first.body == later.body
    assert first.url == later.url
    assert {k: v for k, v in first.headers.items() if k != "Authorization"} == {
        k: v for k, v in later.headers.items() if k != "Authorization"
    }
    assert first.headers["Authorization"] != later.headers["Authorization"]


def test_time_expire_is_rfc3339_beijing_time(channel: WechatPay) -> None:
    expires_at = datetime(2026, 11, 25, 12, 15, 0, 987654, tzinfo=UTC)
    body = json.loads(channel.build_create(order(expires_at=expires_at), now=NOW).body)

    assert body["time_expire"] == "2026-11-25T20:15:00+08:00"
    assert format_time_expire(
        datetime(2026, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=-5)))
    ) == ("2026-01-01T13:30:00+08:00")
    with pytest.raises(ValueError):
        format_time_expire(datetime(2026, 11, 25, 12, 15))


def test_other_methods_are_refused(channel: WechatPay) -> None:
    with pytest.raises(ChannelFatal) as caught:
        channel.build_create(order(method="micropay"), now=NOW)
    assert caught.value.code == "METHOD_NOT_SUPPORTED"


def test_default_nonce_is_32_random_alphanumerics() -> None:
    nonces = {random_nonce() for _ in range(20)}
    assert len(nonces) == 20
    assert all(re.fullmatch(r"[A-Za-z0-9]{32}", nonce) for nonce in nonces)


# -- build_query / build_close --------------------------------------------------------------


def test_build_query_signs_path_with_query(
    channel: WechatPay, merchant_key: rsa.RSAPrivateKey
) -> None:
    request = channel.build_query("P20261125000001", now=NOW)
    path = f"/v3/pay/transactions/out-trade-no/P20261125000001?mchid={MCHID}"

    assert request.method == "GET"
    assert request.url == "https://api.mch.weixin.qq.com" + path
    assert request.body == b""
    assert "Content-Type" not in request.headers
    ts = int(NOW.timestamp())
    expected = f"GET\n{path}\n{ts}\n{NONCE}\n\n".encode()
    assert_signed_by(merchant_key, request.headers["Authorization"], expected)


def test_out_trade_no_is_encoded_the_same_in_url_and_signature(
    channel: WechatPay, merchant_key: rsa.RSAPrivateKey
) -> None:
    request = channel.build_query("A-1|b_2*", now=NOW)
    path = f"/v3/pay/transactions/out-trade-no/A-1%7Cb_2*?mchid={MCHID}"

    assert request.url.endswith(path)
    expected = f"GET\n{path}\n{int(NOW.timestamp())}\n{NONCE}\n\n".encode()
    assert_signed_by(merchant_key, request.headers["Authorization"], expected)


def test_build_close(channel: WechatPay, merchant_key: rsa.RSAPrivateKey) -> None:
    request = channel.build_close("P20261125000001", now=NOW)
    path = "/v3/pay/transactions/out-trade-no/P20261125000001/close"

    assert request.method == "POST"
    assert request.url == "https://api.mch.weixin.qq.com" + path
    assert request.body == b'{"mchid":"1900000109"}'
    expected = f"POST\n{path}\n{int(NOW.timestamp())}\n{NONCE}\n".encode() + request.body + b"\n"
    assert_signed_by(merchant_key, request.headers["Authorization"], expected)


def test_base_url_is_honoured(config: WechatPayConfig, merchant_key: rsa.RSAPrivateKey) -> None:
    channel = WechatPay(
        replace(config, base_url="http://127.0.0.1:8123"), nonce_factory=lambda: "n"
    )
    request = channel.build_query("P1", now=NOW)
    assert request.url == f"http://127.0.0.1:8123/v3/pay/transactions/out-trade-no/P1?mchid={MCHID}"


# -- response verification ------------------------------------------------------------------


BODY = b'{"code_url":"weixin://wxpay/bizpayurl?pr=p4lpSuKzz"}'


def test_verification_accepts_a_signed_response(
    config: WechatPayConfig, platform_key: rsa.RSAPrivateKey
) -> None:
    verify_response_signature(signature_headers(platform_key, BODY), BODY, NOW, config=config)
    lowercase = {k.lower(): v for k, v in signature_headers(platform_key, BODY).items()}
    verify_response_signature(lowercase, BODY, NOW, config=config)
    verify_response_signature(signature_headers(platform_key, b""), b"", NOW, config=config)


def _reason(config: WechatPayConfig, headers: Mapping[str, str], body: bytes = BODY) -> str:
    with pytest.raises(SignatureRejected) as caught:
        verify_response_signature(headers, body, NOW, config=config)
    return caught.value.reason


def test_verification_rejects(
    config: WechatPayConfig, platform_key: rsa.RSAPrivateKey, merchant_key: rsa.RSAPrivateKey
) -> None:
    good = signature_headers(platform_key, BODY)
    no_type = {k: v for k, v in good.items() if k != "Wechatpay-Signature-Type"}
    signtest = good | {"Wechatpay-Signature": "WECHATPAY/SIGNTEST/" + good["Wechatpay-Signature"]}
    ts = int(NOW.timestamp())

    assert _reason(config, good, BODY.replace(b"p4l", b"p4L")) == "bad_signature"
    assert _reason(config, signature_headers(merchant_key, BODY)) == "bad_signature"
    assert _reason(config, signature_headers(platform_key, BODY, serial="OTHER")) == (
        "unknown_serial"
    )
    assert _reason(config, no_type) == "missing_signature"
    assert _reason(config, good | {"Wechatpay-Signature-Type": "SM2"}) == "bad_signature_type"
    assert _reason(config, signtest) == "bad_signature"
    assert _reason(config, good | {"Wechatpay-Signature": "not base64!"}) == "bad_signature"
    assert _reason(config, good | {"Wechatpay-Timestamp": "12ab"}) == "bad_timestamp"
    assert _reason(config, signature_headers(platform_key, BODY, timestamp=ts - 301)) == (
        "stale_timestamp"
    )
    assert _reason(config, signature_headers(platform_key, BODY, timestamp=ts + 301)) == (
        "stale_timestamp"
    )
    assert _reason(config, {}) == "missing_signature"
    # inside the window either way is fine
    for skew in (-299, 299):
        headers = signature_headers(platform_key, BODY, timestamp=ts + skew)
        verify_response_signature(headers, BODY, NOW, config=config)


# -- parse_create / parse_query / parse_close -----------------------------------------------


def test_parse_create_success(channel: WechatPay, platform_key: rsa.RSAPrivateKey) -> None:
    response = HttpResponse(200, signature_headers(platform_key, BODY), BODY)
    result = channel.parse_create(response, now=NOW)
    assert dict(result.credential) == {"code_url": "weixin://wxpay/bizpayurl?pr=p4lpSuKzz"}


@pytest.mark.parametrize(
    "response_factory",
    [
        pytest.param(lambda key: HttpResponse(200, {}, BODY), id="unsigned"),
        pytest.param(
            lambda key: HttpResponse(200, signature_headers(key, BODY), BODY + b" "), id="tampered"
        ),
        pytest.param(
            lambda key: HttpResponse(
                200, signature_headers(key, BODY, timestamp=int(NOW.timestamp()) - 3600), BODY
            ),
            id="stale",
        ),
        pytest.param(
            lambda key: HttpResponse(
                403, {}, b'{"code":"ORDERPAID","message":"\\u8ba2\\u5355\\u5df2\\u652f\\u4ed8"}'
            ),
            id="unsigned-error",
        ),
    ],
)
def test_unverified_answers_are_unknown_outcomes(
    channel: WechatPay, platform_key: rsa.RSAPrivateKey, response_factory: Any
) -> None:
    response = response_factory(platform_key)
    with pytest.raises(ChannelUnknownOutcome) as caught:
        channel.parse_create(response, now=NOW)
    assert type(caught.value) is ChannelUnknownOutcome
    assert caught.value.code == "INVALID_RESPONSE_SIGNATURE"
    assert caught.value.http_status == response.status


@pytest.mark.parametrize("payload", [{}, {"code_url": ""}, {"prepay_id": "wx1"}, [1]])
def test_parse_create_2xx_without_code_url_is_unknown(
    channel: WechatPay, platform_key: rsa.RSAPrivateKey, payload: object
) -> None:
    with pytest.raises(ChannelUnknownOutcome) as caught:
        channel.parse_create(signed_response(platform_key, 200, payload), now=NOW, method="native")
    assert caught.value.http_status == 200
    with pytest.raises(ChannelUnknownOutcome):
        channel.parse_create(signed_response(platform_key, 202, {"code": "USERPAYING"}), now=NOW)


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (500, "SYSTEM_ERROR", ChannelUnknownOutcome),
        (500, "BANK_ERROR", ChannelUnknownOutcome),
        (503, "SERVICE_UNAVAILABLE", ChannelUnknownOutcome),
        (429, "FREQUENCY_LIMITED", ChannelRetryable),
        (429, "RATELIMIT_EXCEEDED", ChannelRetryable),
        (403, "ORDERPAID", ChannelAlreadyPaid),
        (400, "ORDER_CLOSED", ChannelFatal),
        (400, "PARAM_ERROR", ChannelFatal),
        (400, "INVALID_REQUEST", ChannelFatal),
        (401, "SIGN_ERROR", ChannelFatal),
        (400, "APPID_MCHID_NOT_MATCH", ChannelFatal),
        (400, "MCH_NOT_EXISTS", ChannelFatal),
        (403, "NO_AUTH", ChannelFatal),
        (403, "OUT_TRADE_NO_USED", ChannelFatal),
        (404, "ORDER_NOT_EXIST", ChannelOrderNotFound),
    ],
)
def test_error_classification(
    channel: WechatPay,
    platform_key: rsa.RSAPrivateKey,
    status: int,
    code: str,
    expected: type[ChannelError],
) -> None:
    response = signed_response(platform_key, status, {"code": code, "message": "说明 " + code})
    with pytest.raises(expected) as caught:
        channel.parse_create(response, now=NOW)
    assert type(caught.value) is expected
    assert caught.value.code == code
    assert caught.value.message == "说明 " + code
    assert caught.value.http_status == status


@pytest.mark.parametrize(
    ("status", "expected"),
    [(502, ChannelUnknownOutcome), (429, ChannelRetryable), (400, ChannelFatal)],
)
def test_error_without_json_body_is_classified_by_status(
    channel: WechatPay, platform_key: rsa.RSAPrivateKey, status: int, expected: type[ChannelError]
) -> None:
    body = b"<html>Bad Gateway</html>"
    response = HttpResponse(status, signature_headers(platform_key, body), body)
    with pytest.raises(expected) as caught:
        channel.parse_query(response, now=NOW)
    assert type(caught.value) is expected
    assert caught.value.code == f"HTTP_{status}"


def test_parse_query_order_not_found(channel: WechatPay, platform_key: rsa.RSAPrivateKey) -> None:
    response = signed_response(platform_key, 404, {"code": "ORDER_NOT_EXIST", "message": "x"})
    with pytest.raises(ChannelOrderNotFound) as caught:
        channel.parse_query(response, now=NOW)
    assert caught.value.http_status == 404


def test_parse_query_paid(channel: WechatPay, platform_key: rsa.RSAPrivateKey) -> None:
    status = channel.parse_query(signed_response(platform_key, 200, TRANSACTION), now=NOW)

    assert status.out_trade_no == "P20261125000001"
    assert status.state is TradeState.PAID
    assert status.channel_state == "SUCCESS"
    assert status.amount_minor == 1999
    assert status.currency == "CNY"
    assert status.channel_trade_no == "4200001460202611258197935963"
    assert status.paid_at == datetime(2026, 11, 25, 4, 5, 31, tzinfo=UTC)
    assert status.paid_at is not None and status.paid_at.utcoffset() == timedelta(hours=8)
    assert status.merchant_id == MCHID
    assert status.app_id == APPID


@pytest.mark.parametrize(
    ("trade_state", "expected"),
    [
        ("SUCCESS", TradeState.PAID),
        ("NOTPAY", TradeState.NOT_PAID),
        ("USERPAYING", TradeState.PAYING),
        ("CLOSED", TradeState.CLOSED),
        ("REVOKED", TradeState.CLOSED),
        ("PAYERROR", TradeState.FAILED),
        ("REFUND", TradeState.REFUNDED),
    ],
)
def test_trade_state_mapping(
    channel: WechatPay, platform_key: rsa.RSAPrivateKey, trade_state: str, expected: TradeState
) -> None:
    unpaid = {
        "appid": APPID,
        "mchid": MCHID,
        "out_trade_no": "P1",
        "trade_state": trade_state,
        "trade_state_desc": "…",
        "amount": {"total": 1999, "currency": "CNY"},
    }
    status = channel.parse_query(signed_response(platform_key, 200, unpaid), now=NOW)
    assert status.state is expected
    assert status.channel_state == trade_state
    assert status.channel_trade_no is None and status.paid_at is None


def test_parse_query_refuses_unknown_state_and_float_amounts(
    channel: WechatPay, platform_key: rsa.RSAPrivateKey
) -> None:
    with pytest.raises(ChannelUnknownOutcome) as caught:
        channel.parse_query(
            signed_response(platform_key, 200, TRANSACTION | {"trade_state": "ACCEPT"}), now=NOW
        )
    assert caught.value.code == "UNKNOWN_TRADE_STATE"
    floaty = TRANSACTION | {"amount": {"total": 19.99, "currency": "CNY"}}
    with pytest.raises(ChannelUnknownOutcome):
        channel.parse_query(signed_response(platform_key, 200, floaty), now=NOW)


def test_parse_close(channel: WechatPay, platform_key: rsa.RSAPrivateKey) -> None:
    channel.parse_close(signed_response(platform_key, 204), now=NOW)  # no error: closed
    closed = {"code": "ORDER_CLOSED", "message": "订单已关闭"}
    channel.parse_close(signed_response(platform_key, 400, closed), now=NOW)

    with pytest.raises(ChannelUnknownOutcome):
        channel.parse_close(HttpResponse(204, {}, b""), now=NOW)  # unsigned
    with pytest.raises(ChannelUnknownOutcome):  # signed over a different body
        channel.parse_close(HttpResponse(204, signature_headers(platform_key, b"{}"), b""), now=NOW)
    paid = {"code": "ORDERPAID", "message": "订单已支付"}
    with pytest.raises(ChannelAlreadyPaid):
        channel.parse_close(signed_response(platform_key, 403, paid), now=NOW)
    with pytest.raises(ChannelUnknownOutcome):
        channel.parse_close(
            signed_response(platform_key, 500, {"code": "SYSTEM_ERROR", "message": "x"}), now=NOW
        )


# -- callbacks ------------------------------------------------------------------------------


def _callback_reason(channel: WechatPay, headers: Mapping[str, str], body: bytes) -> str:
    with pytest.raises(CallbackRejected) as caught:
        channel.parse_callback(headers, body, now=NOW)
    return caught.value.reason


@pytest.mark.parametrize("associated_data", ["transaction", "", None])
def test_callback_round_trip(
    channel: WechatPay, platform_key: rsa.RSAPrivateKey, associated_data: str | None
) -> None:
    body = callback_body(orjson.dumps(TRANSACTION), associated_data=associated_data)
    event = channel.parse_callback(signature_headers(platform_key, body), body, now=NOW)

    assert event.event_id == "EV-2018022511223320873"
    assert event.event_type == "TRANSACTION.SUCCESS"
    assert event.raw == TRANSACTION
    assert event.refund is None
    assert event.trade is not None
    assert event.trade.state is TradeState.PAID
    assert event.trade.amount_minor == 1999
    assert event.trade.channel_trade_no == "4200001460202611258197935963"


def test_callback_verification_failures(
    channel: WechatPay, platform_key: rsa.RSAPrivateKey, merchant_key: rsa.RSAPrivateKey
) -> None:
    body = callback_body(orjson.dumps(TRANSACTION))
    good = signature_headers(platform_key, body)
    probe = good | {"Wechatpay-Signature": "WECHATPAY/SIGNTEST/" + good["Wechatpay-Signature"]}
    old = signature_headers(platform_key, body, timestamp=int(NOW.timestamp()) - 301)

    assert _callback_reason(channel, {}, body) == "missing_signature"
    assert _callback_reason(channel, signature_headers(merchant_key, body), body) == (
        "bad_signature"
    )
    assert _callback_reason(channel, good, body.replace(b"EV-", b"EX-")) == "bad_signature"
    assert _callback_reason(channel, probe, body) == "bad_signature"
    assert _callback_reason(channel, old, body) == "stale_timestamp"
    unknown = signature_headers(platform_key, body, serial="5157F09EFDC096DE15EBE81A47057A72")
    assert _callback_reason(channel, unknown, body) == "unknown_serial"


def test_callback_content_failures(channel: WechatPay, platform_key: rsa.RSAPrivateKey) -> None:
    def reason(body: bytes) -> str:
        return _callback_reason(channel, signature_headers(platform_key, body), body)

    transaction = orjson.dumps(TRANSACTION)
    assert reason(callback_body(transaction, key=b"0" * 32)) == "decrypt_failed"
    assert reason(b'{"id": "EV-1", ') == "malformed"
    assert reason(b"\xff\xfe") == "malformed"
    assert reason(b'{"id":"EV-1","event_type":"TRANSACTION.SUCCESS"}') == "malformed"
    assert reason(callback_body(transaction, algorithm="AES_128_CBC")) == "unsupported_algorithm"
    assert reason(callback_body(b"not json")) == "malformed"
    assert reason(callback_body(b'{"trade_state":"SUCCESS"}')) == "malformed"

    envelope = orjson.loads(callback_body(transaction))
    envelope["resource"]["ciphertext"] = "!!!"
    assert reason(orjson.dumps(envelope)) == "decrypt_failed"
    envelope["resource"]["ciphertext"] = base64.b64encode(b"short").decode()
    assert reason(orjson.dumps(envelope)) == "decrypt_failed"


def _random_json(rng: random.Random, depth: int = 0) -> object:
    pick = rng.randrange(8 if depth < 3 else 5)
    if pick == 0:
        return None
    if pick == 1:
        return rng.choice([True, False, 0, -1, 2**53, 1.5, float("inf")])
    if pick in (2, 3, 4):
        return "".join(rng.choice('aZ09+/=-_ 支"\\\n\x00') for _ in range(rng.randrange(30)))
    if pick in (5, 6):
        return {
            str(rng.randrange(5)): _random_json(rng, depth + 1) for _ in range(rng.randrange(4))
        }
    return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]


def _random_callback_body(rng: random.Random) -> bytes:
    """Bytes from junk to envelopes whose resource decrypts to junk or half-right transactions."""
    kind = rng.randrange(4)
    if kind == 0:
        return rng.randbytes(rng.randrange(200))
    if kind == 1:
        return orjson.dumps(_random_json(rng), option=orjson.OPT_NON_STR_KEYS)
    plaintext = orjson.dumps(
        TRANSACTION | {key: _random_json(rng) for key in rng.sample(sorted(TRANSACTION), 2)}
        if kind == 2
        else _random_json(rng)
    )
    envelope: Any = orjson.loads(callback_body(plaintext))
    for _ in range(rng.randrange(3)):
        target = envelope if rng.random() < 0.5 else envelope["resource"]
        if isinstance(target, dict):
            target[rng.choice(sorted(target))] = _random_json(rng)
    return orjson.dumps(envelope)


def test_callback_only_ever_raises_callback_rejected(
    config: WechatPayConfig, platform_key: rsa.RSAPrivateKey
) -> None:
    rng = random.Random(20261125)
    channel = WechatPay(config)
    outcomes: set[str] = set()
    for _ in range(400):
        body = _random_callback_body(rng)
        junk_headers = {rng.choice(["Wechatpay-Signature", "x"]): str(_random_json(rng))}
        for headers in (signature_headers(platform_key, body), junk_headers):
            try:
                channel.parse_callback(headers, body, now=NOW)
                outcomes.add("accepted")
            except CallbackRejected as rejected:
                outcomes.add(rejected.reason)
    # the generator reaches deep into parsing, not just the signature check
    assert {"missing_signature", "malformed", "decrypt_failed", "accepted"} <= outcomes


def test_acks(channel: WechatPay) -> None:
    assert channel.ack_success() == HttpResponse(204, {}, b"")
    failure = channel.ack_failure('bad "sig"\n验签失败')
    assert failure.status == 500
    assert failure.headers == {"Content-Type": "application/json"}
    assert json.loads(failure.body) == {"code": "FAIL", "message": 'bad "sig"\n验签失败'}


# -- configuration --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def credentials(merchant_key: rsa.RSAPrivateKey, platform_key: rsa.RSAPrivateKey) -> dict[str, str]:
    return {
        "mchid": MCHID,
        "appid": APPID,
        "merchant_serial_no": MERCHANT_SERIAL,
        "merchant_private_key_pem": private_pem(merchant_key),
        "apiv3_key": APIV3_KEY,
        "platform_public_key_pem": public_pem(platform_key),
        "platform_public_key_id": PLATFORM_KEY_ID,
    }


def test_from_credentials(
    credentials: dict[str, str], merchant_key: rsa.RSAPrivateKey, platform_key: rsa.RSAPrivateKey
) -> None:
    config = WechatPayConfig.from_credentials(credentials)

    assert config.mchid == MCHID and config.appid == APPID
    assert config.apiv3_key == APIV3_KEY.encode()
    assert config.base_url == "https://api.mch.weixin.qq.com"
    assert config.merchant_private_key.private_numbers() == merchant_key.private_numbers()
    assert config.platform_public_key.public_numbers() == platform_key.public_key().public_numbers()
    assert APIV3_KEY not in repr(config)
    sandbox = WechatPayConfig.from_credentials(credentials | {"base_url": "http://127.0.0.1:9/"})
    assert sandbox.base_url == "http://127.0.0.1:9"


# Not a key: a PEM frame around the bytes "nope" (built so no key-shaped text is committed).
GARBAGE_PEM = "-----BEGIN {0}-----\nbm9wZQ==\n-----END {0}-----\n".format("PRIVATE KEY")


def test_from_credentials_validation(credentials: dict[str, str]) -> None:
    ec_key = private_pem(ec.generate_private_key(ec.SECP256R1()))
    small_rsa = private_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    bad = [
        {"apiv3_key": APIV3_KEY[:-1]},
        {"apiv3_key": APIV3_KEY + "x"},
        {"apiv3_key": "密" + APIV3_KEY[1:]},
        {"merchant_private_key_pem": GARBAGE_PEM},
        {"merchant_private_key_pem": ec_key},
        {"merchant_private_key_pem": small_rsa},
        {"platform_public_key_pem": credentials["merchant_private_key_pem"]},
        {"mchid": ""},
        {"base_url": "ftp://example.com"},
    ]
    for override in bad:
        with pytest.raises(ValueError):
            WechatPayConfig.from_credentials(credentials | override)
    for missing in ("mchid", "apiv3_key", "platform_public_key_id", "merchant_private_key_pem"):
        with pytest.raises(ValueError, match=missing):
            WechatPayConfig.from_credentials({k: v for k, v in credentials.items() if k != missing})


# -- interop with the wechatpayv3 client library --------------------------------------------


def test_authorization_matches_wechatpayv3(
    channel: WechatPay, merchant_key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wechatpayv3 import utils as v3utils

    monkeypatch.setattr(v3utils.time, "time", lambda: NOW.timestamp())
    create = channel.build_create(order(expires_at=NOW + timedelta(hours=2)), now=NOW)
    query = channel.build_query("P20261125000001", now=NOW)

    # PKCS#1 v1.5 is deterministic: identical signing strings give identical headers.
    assert create.headers["Authorization"] == v3utils.build_authorization(
        "/v3/pay/transactions/native",
        "POST",
        MCHID,
        MERCHANT_SERIAL,
        merchant_key,
        data=create.body.decode(),
        nonce_str=NONCE,
    )
    assert query.headers["Authorization"] == v3utils.build_authorization(
        f"/v3/pay/transactions/out-trade-no/P20261125000001?mchid={MCHID}",
        "GET",
        MCHID,
        MERCHANT_SERIAL,
        merchant_key,
        nonce_str=NONCE,
    )


def _v3_core(credentials: dict[str, str]) -> Any:
    from wechatpayv3.core import Core

    return Core(
        mchid=MCHID,
        cert_serial_no=MERCHANT_SERIAL,
        private_key=credentials["merchant_private_key_pem"],
        apiv3_key=APIV3_KEY,
        public_key=credentials["platform_public_key_pem"],
        public_key_id=PLATFORM_KEY_ID,
    )


def test_response_signed_the_wechatpayv3_way_is_accepted(
    channel: WechatPay, platform_key: rsa.RSAPrivateKey, credentials: dict[str, str]
) -> None:
    from wechatpayv3.utils import rsa_sign

    ts = str(int(NOW.timestamp()))
    headers = {
        "Wechatpay-Timestamp": ts,
        "Wechatpay-Nonce": "n0nce",
        "Wechatpay-Serial": PLATFORM_KEY_ID,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
        "Wechatpay-Signature": rsa_sign(platform_key, f"{ts}\nn0nce\n{BODY.decode()}\n"),
    }
    assert _v3_core(credentials)._verify_signature(headers, BODY.decode())
    assert channel.parse_create(HttpResponse(200, headers, BODY), now=NOW).credential

    tampered = BODY.replace(b"p4l", b"p4L")
    assert not _v3_core(credentials)._verify_signature(headers, tampered.decode())
    with pytest.raises(ChannelUnknownOutcome):
        channel.parse_create(HttpResponse(200, headers, tampered), now=NOW)


@pytest.mark.parametrize("associated_data", ["transaction", ""])
def test_callback_both_libraries_read_the_same(
    channel: WechatPay,
    platform_key: rsa.RSAPrivateKey,
    credentials: dict[str, str],
    associated_data: str,
) -> None:
    from wechatpayv3.utils import rsa_sign

    body = callback_body(orjson.dumps(TRANSACTION), associated_data=associated_data)
    ts = str(int(NOW.timestamp()))
    headers = {
        "Wechatpay-Timestamp": ts,
        "Wechatpay-Nonce": "cb-nonce",
        "Wechatpay-Serial": PLATFORM_KEY_ID,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
        "Wechatpay-Signature": rsa_sign(platform_key, f"{ts}\ncb-nonce\n{body.decode()}\n"),
    }

    theirs = _v3_core(credentials).callback(headers, body)
    ours = channel.parse_callback(headers, body, now=NOW)

    assert theirs is not None
    assert theirs["resource"] == ours.raw == TRANSACTION
    assert theirs["id"] == ours.event_id and theirs["event_type"] == ours.event_type
