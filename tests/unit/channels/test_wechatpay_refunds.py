"""Tests for WeChat Pay refunds in channels/wechatpay.py and channels/wechatpay_refunds.py:
signed refund and refund-query requests, every refund status, error classification, and refund
callbacks (verified, decrypted, tampered ones refused)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.hashes import SHA256

from channels.base import CreateRefund, HttpResponse, RefundState
from channels.errors import (
    CallbackRejected,
    ChannelError,
    ChannelFatal,
    ChannelOrderNotFound,
    ChannelRetryable,
    ChannelUnknownOutcome,
)
from channels.wechatpay import WechatPay, WechatPayConfig
from tests.unit.channels.test_wechatpay import (
    APIV3_KEY,
    APPID,
    MCHID,
    MERCHANT_SERIAL,
    NONCE,
    NOW,
    PLATFORM_KEY_ID,
    TRANSACTION,
    encrypt_resource,
    parse_authorization,
    private_pem,
    public_pem,
    signature_headers,
    signed_response,
)


@pytest.fixture(scope="module")
def merchant_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def platform_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


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


def refund(**overrides: Any) -> CreateRefund:
    fields: dict[str, Any] = {
        "out_refund_no": "R20261125000001",
        "out_trade_no": "P20261125000001",
        "refund_minor": 500,
        "total_minor": 1999,
        "currency": "cny",
        "notify_url": "https://pay.example.com/callbacks/wechatpay/refunds",
        "reason": "商品已售完",
    }
    fields.update(overrides)
    return CreateRefund(**fields)


REFUND: dict[str, Any] = {
    "refund_id": "50000000382019052709732678859",
    "out_refund_no": "R20261125000001",
    "transaction_id": "4200001460202611258197935963",
    "out_trade_no": "P20261125000001",
    "channel": "ORIGINAL",
    "user_received_account": "支付用户零钱",
    "create_time": "2026-11-25T12:05:31+08:00",
    "status": "PROCESSING",
    "funds_account": "AVAILABLE",
    "amount": {
        "total": 1999,
        "refund": 500,
        "from": [],
        "payer_total": 1999,
        "payer_refund": 500,
        "settlement_refund": 500,
        "settlement_total": 1999,
        "discount_refund": 0,
        "currency": "CNY",
        "refund_fee": 0,
    },
    "promotion_detail": [],
}


# -- requests -------------------------------------------------------------------------------


def test_build_refund_request_is_signed_over_the_exact_body(
    channel: WechatPay, merchant_key: rsa.RSAPrivateKey
) -> None:
    request = channel.build_refund(refund(), now=NOW)

    assert (request.method, request.url) == (
        "POST",
        "https://api.mch.weixin.qq.com/v3/refund/domestic/refunds",
    )
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Wechatpay-Serial"] == PLATFORM_KEY_ID
    assert json.loads(request.body) == {
        "out_trade_no": "P20261125000001",
        "out_refund_no": "R20261125000001",
        "reason": "商品已售完",
        "notify_url": "https://pay.example.com/callbacks/wechatpay/refunds",
        "amount": {"refund": 500, "total": 1999, "currency": "CNY"},
    }
    assert "商品已售完".encode() in request.body  # UTF-8, not \\u escapes
    params = parse_authorization(request.headers["Authorization"])
    assert params["mchid"] == MCHID and params["serial_no"] == MERCHANT_SERIAL
    message = (
        f"POST\n/v3/refund/domestic/refunds\n{int(NOW.timestamp())}\n{NONCE}\n".encode()
        + request.body
        + b"\n"
    )
    merchant_key.public_key().verify(
        base64.b64decode(params["signature"]), message, PKCS1v15(), SHA256()
    )


def test_repeated_refund_has_identical_parameters(config: WechatPayConfig) -> None:
    channel = WechatPay(config)  # random nonces: only the body must repeat
    first = channel.build_refund(refund(), now=NOW)
    again = channel.build_refund(refund(), now=NOW + timedelta(hours=3))
    assert first.body == again.body and first.url == again.url
    without_reason = channel.build_refund(refund(reason=None, channel_trade_no="42"), now=NOW)
    body = json.loads(without_reason.body)
    assert "reason" not in body and "transaction_id" not in body


def test_refund_authorization_matches_wechatpayv3(
    channel: WechatPay, merchant_key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wechatpayv3 import utils as v3utils

    monkeypatch.setattr(v3utils.time, "time", lambda: NOW.timestamp())
    request = channel.build_refund(refund(), now=NOW)
    query = channel.build_refund_query("R20261125000001", out_trade_no="P1", now=NOW)
    assert request.headers["Authorization"] == v3utils.build_authorization(
        "/v3/refund/domestic/refunds",
        "POST",
        MCHID,
        MERCHANT_SERIAL,
        merchant_key,
        data=request.body.decode(),
        nonce_str=NONCE,
    )
    assert query.headers["Authorization"] == v3utils.build_authorization(
        "/v3/refund/domestic/refunds/R20261125000001",
        "GET",
        MCHID,
        MERCHANT_SERIAL,
        merchant_key,
        nonce_str=NONCE,
    )


def test_build_refund_query(channel: WechatPay, merchant_key: rsa.RSAPrivateKey) -> None:
    request = channel.build_refund_query("R-1|a*b@c", out_trade_no="P20261125000001", now=NOW)

    assert request.method == "GET" and request.body == b""
    assert request.url == "https://api.mch.weixin.qq.com/v3/refund/domestic/refunds/R-1|a*b@c"
    assert "Content-Type" not in request.headers
    params = parse_authorization(request.headers["Authorization"])
    message = (
        f"GET\n/v3/refund/domestic/refunds/R-1|a*b@c\n{int(NOW.timestamp())}\n{NONCE}\n\n"
    ).encode()
    merchant_key.public_key().verify(
        base64.b64decode(params["signature"]), message, PKCS1v15(), SHA256()
    )
    spaced = channel.build_refund_query("R 1/2", out_trade_no="P1", now=NOW)
    assert spaced.url.endswith("/v3/refund/domestic/refunds/R%201%2F2")


# -- answers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("PROCESSING", RefundState.PROCESSING),
        ("SUCCESS", RefundState.SUCCEEDED),
        ("CLOSED", RefundState.FAILED),
        ("ABNORMAL", RefundState.FAILED),
    ],
)
def test_refund_status_mapping(
    channel: WechatPay, platform_key: rsa.RSAPrivateKey, status: str, state: RefundState
) -> None:
    payload = REFUND | {"status": status}
    if status == "SUCCESS":
        payload["success_time"] = "2026-11-25T12:06:00+08:00"
    answer = signed_response(platform_key, 200, payload)

    for parsed in (
        channel.parse_refund(answer, now=NOW),
        channel.parse_refund_query(answer, out_refund_no="R20261125000001", now=NOW),
    ):
        assert parsed.state is state
        assert parsed.channel_state == status
        assert parsed.out_refund_no == "R20261125000001"
        assert parsed.out_trade_no == "P20261125000001"
        assert parsed.amount_minor == 500 and parsed.currency == "CNY"
        assert parsed.channel_refund_no == "50000000382019052709732678859"
        if status == "SUCCESS":
            assert parsed.succeeded_at == datetime(2026, 11, 25, 4, 6, tzinfo=UTC)
        else:
            assert parsed.succeeded_at is None
        assert (parsed.failure_reason is not None) == (state is RefundState.FAILED)


def test_refund_answer_with_unknown_status_or_shape_is_unknown(
    channel: WechatPay, platform_key: rsa.RSAPrivateKey
) -> None:
    for payload in (
        REFUND | {"status": "REFUNDING"},
        {k: v for k, v in REFUND.items() if k != "status"},
        REFUND | {"amount": {"refund": "500"}},
        {"code_url": "weixin://x"},
    ):
        with pytest.raises(ChannelUnknownOutcome):
            channel.parse_refund(signed_response(platform_key, 200, payload), now=NOW)


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (500, "SYSTEM_ERROR", ChannelUnknownOutcome),
        (502, None, ChannelUnknownOutcome),
        (429, "FREQUENCY_LIMITED", ChannelUnknownOutcome),
        (404, "RESOURCE_NOT_EXISTS", ChannelOrderNotFound),
        (404, "ORDER_NOT_EXIST", ChannelOrderNotFound),
        (404, "MCH_NOT_EXISTS", ChannelFatal),
        (403, "NOT_ENOUGH", ChannelRetryable),
        (403, "USER_ACCOUNT_ABNORMAL", ChannelFatal),
        (403, "NO_AUTH", ChannelFatal),
        (400, "PARAM_ERROR", ChannelFatal),
        (400, "INVALID_REQUEST", ChannelFatal),
        (401, "SIGN_ERROR", ChannelFatal),
    ],
)
def test_refund_error_classification(
    channel: WechatPay,
    platform_key: rsa.RSAPrivateKey,
    status: int,
    code: str | None,
    expected: type[ChannelError],
) -> None:
    payload = None if code is None else {"code": code, "message": "说明"}
    body = b"<html>bad gateway</html>" if payload is None else orjson.dumps(payload)
    answer = HttpResponse(status, signature_headers(platform_key, body), body)
    with pytest.raises(ChannelError) as caught:
        channel.parse_refund(answer, now=NOW)
    assert type(caught.value) is expected
    assert caught.value.http_status == status
    if code is not None:
        assert caught.value.code == code


def test_refund_query_of_unknown_refund_is_not_found(
    channel: WechatPay, platform_key: rsa.RSAPrivateKey
) -> None:
    missing = signed_response(platform_key, 404, {"code": "RESOURCE_NOT_EXISTS", "message": "x"})
    with pytest.raises(ChannelOrderNotFound):
        channel.parse_refund_query(missing, out_refund_no="R1", now=NOW)
    other = signed_response(platform_key, 200, REFUND | {"out_refund_no": "R-OTHER"})
    with pytest.raises(ChannelUnknownOutcome) as caught:
        channel.parse_refund_query(other, out_refund_no="R20261125000001", now=NOW)
    assert caught.value.code == "REFUND_MISMATCH"


def test_unverified_refund_answers_are_unknown_outcomes(
    channel: WechatPay, platform_key: rsa.RSAPrivateKey, merchant_key: rsa.RSAPrivateKey
) -> None:
    body = orjson.dumps(REFUND | {"status": "SUCCESS"})
    forged = HttpResponse(200, signature_headers(merchant_key, body), body)
    tampered = HttpResponse(
        200, signature_headers(platform_key, body), body.replace(b"500", b"900")
    )
    stale = HttpResponse(
        200, signature_headers(platform_key, body, timestamp=int(NOW.timestamp()) - 600), body
    )
    refused = orjson.dumps({"code": "INVALID_REQUEST", "message": "x"})
    unsigned_refusal = HttpResponse(400, {}, refused)
    for answer in (forged, tampered, stale, unsigned_refusal):
        with pytest.raises(ChannelUnknownOutcome) as caught:
            channel.parse_refund(answer, now=NOW)
        assert caught.value.code == "INVALID_RESPONSE_SIGNATURE"


# -- refund callbacks -----------------------------------------------------------------------

REFUND_NOTICE: dict[str, Any] = {
    "mchid": MCHID,
    "transaction_id": "4200001460202611258197935963",
    "out_trade_no": "P20261125000001",
    "refund_id": "50000000382019052709732678859",
    "out_refund_no": "R20261125000001",
    "refund_status": "SUCCESS",
    "success_time": "2026-11-25T12:06:00+08:00",
    "user_received_account": "支付用户零钱",
    "amount": {"total": 1999, "refund": 500, "payer_total": 1999, "payer_refund": 500},
}


def refund_callback(
    resource: dict[str, Any],
    *,
    event_type: str = "REFUND.SUCCESS",
    original_type: str | None = "refund",
    key: bytes = APIV3_KEY.encode(),
) -> bytes:
    sealed: dict[str, Any] = {
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": encrypt_resource(
            orjson.dumps(resource), key=key, ad="refund", nonce="r3fundN0nce1"
        ),
        "associated_data": "refund",
        "nonce": "r3fundN0nce1",
    }
    if original_type is not None:
        sealed["original_type"] = original_type
    return orjson.dumps(
        {
            "id": "EV-2026112512060012345",
            "create_time": "2026-11-25T12:06:01+08:00",
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": "退款成功",
            "resource": sealed,
        }
    )


@pytest.mark.parametrize(
    ("event_type", "status", "state"),
    [
        ("REFUND.SUCCESS", "SUCCESS", RefundState.SUCCEEDED),
        ("REFUND.ABNORMAL", "ABNORMAL", RefundState.FAILED),
        ("REFUND.CLOSED", "CLOSED", RefundState.FAILED),
    ],
)
def test_refund_callbacks(
    channel: WechatPay,
    platform_key: rsa.RSAPrivateKey,
    event_type: str,
    status: str,
    state: RefundState,
) -> None:
    resource = REFUND_NOTICE | {"refund_status": status}
    if status != "SUCCESS":
        del resource["success_time"]
    body = refund_callback(resource, event_type=event_type)
    event = channel.parse_callback(signature_headers(platform_key, body), body, now=NOW)

    assert event.event_id == "EV-2026112512060012345"
    assert event.event_type == event_type
    assert event.trade is None
    assert event.raw == resource
    assert event.refund is not None
    assert event.refund.state is state and event.refund.channel_state == status
    assert event.refund.out_refund_no == "R20261125000001"
    assert event.refund.out_trade_no == "P20261125000001"
    assert event.refund.amount_minor == 500
    assert event.refund.channel_refund_no == "50000000382019052709732678859"
    expected_time = datetime(2026, 11, 25, 4, 6, tzinfo=UTC) if status == "SUCCESS" else None
    assert event.refund.succeeded_at == expected_time


def test_refund_callback_without_original_type_is_read_by_event_type(
    channel: WechatPay, platform_key: rsa.RSAPrivateKey
) -> None:
    body = refund_callback(REFUND_NOTICE, original_type=None)
    event = channel.parse_callback(signature_headers(platform_key, body), body, now=NOW)
    assert event.refund is not None and event.refund.state is RefundState.SUCCEEDED


def _rejected(channel: WechatPay, headers: dict[str, str], body: bytes) -> str:
    with pytest.raises(CallbackRejected) as caught:
        channel.parse_callback(headers, body, now=NOW)
    return caught.value.reason


def test_refund_callback_rejections(
    channel: WechatPay, platform_key: rsa.RSAPrivateKey, merchant_key: rsa.RSAPrivateKey
) -> None:
    body = refund_callback(REFUND_NOTICE)
    good = signature_headers(platform_key, body)
    tampered = body.replace(b"REFUND.SUCCESS", b"REFUND.CLOSED")

    assert _rejected(channel, good, tampered) == "bad_signature"
    assert _rejected(channel, signature_headers(merchant_key, body), body) == "bad_signature"
    assert _rejected(channel, {}, body) == "missing_signature"

    def signed(raw: bytes) -> str:
        return _rejected(channel, signature_headers(platform_key, raw), raw)

    assert signed(refund_callback(REFUND_NOTICE, key=b"1" * 32)) == "decrypt_failed"
    assert signed(refund_callback(REFUND_NOTICE | {"mchid": "1900000999"})) == "wrong_account"
    assert signed(refund_callback(REFUND_NOTICE | {"refund_status": "PENDING"})) == "malformed"
    assert signed(refund_callback({"refund_status": "SUCCESS"})) == "malformed"
    # A refund resource announced as a payment, and the other way round.
    assert signed(refund_callback(REFUND_NOTICE, event_type="TRANSACTION.SUCCESS")) == ("malformed")
    assert signed(refund_callback(REFUND_NOTICE, original_type="transaction")) == "malformed"
    assert signed(refund_callback(REFUND_NOTICE, original_type="profitsharing")) == (
        "unsupported_resource"
    )


def test_payment_callbacks_still_carry_a_trade(
    channel: WechatPay, platform_key: rsa.RSAPrivateKey
) -> None:
    sealed = encrypt_resource(orjson.dumps(TRANSACTION), ad="transaction", nonce="paym3ntN0nce")
    body = orjson.dumps(
        {
            "id": "EV-1",
            "create_time": "2026-11-25T12:05:32+08:00",
            "resource_type": "encrypt-resource",
            "event_type": "TRANSACTION.SUCCESS",
            "summary": "支付成功",
            "resource": {
                "original_type": "transaction",
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": sealed,
                "associated_data": "transaction",
                "nonce": "paym3ntN0nce",
            },
        }
    )
    event = channel.parse_callback(signature_headers(platform_key, body), body, now=NOW)
    assert event.refund is None
    assert event.trade is not None and event.trade.amount_minor == 1999


def test_refund_callback_reads_the_same_as_wechatpayv3(
    channel: WechatPay, platform_key: rsa.RSAPrivateKey, merchant_key: rsa.RSAPrivateKey
) -> None:
    from wechatpayv3.core import Core

    body = refund_callback(REFUND_NOTICE)
    headers = signature_headers(platform_key, body, timestamp=int(NOW.timestamp()))
    core = Core(
        mchid=MCHID,
        cert_serial_no=MERCHANT_SERIAL,
        private_key=private_pem(merchant_key),
        apiv3_key=APIV3_KEY,
        public_key=public_pem(platform_key),
        public_key_id=PLATFORM_KEY_ID,
    )
    theirs = core.callback(headers, body)
    ours = channel.parse_callback(headers, body, now=NOW)
    assert theirs is not None and theirs["resource"] == ours.raw == REFUND_NOTICE
    assert core.callback(headers, body.replace(b"EV-", b"EX-")) is None
