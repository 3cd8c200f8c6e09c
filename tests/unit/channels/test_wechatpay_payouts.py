"""Tests for WeChat Pay merchant transfers in channels/wechatpay.py and
channels/wechatpay_payouts.py: the signed transfer and transfer-query requests, the payee's
encrypted name, every bill state, error classification, and MCHTRANSFER.BILL.FINISHED callbacks
(verified, decrypted, tampered ones refused)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP, PKCS1v15
from cryptography.hazmat.primitives.hashes import SHA1, SHA256

from channels.base import CreatePayout, HttpResponse, PayoutState
from channels.errors import (
    CallbackRejected,
    ChannelError,
    ChannelFatal,
    ChannelOrderNotFound,
    ChannelRetryable,
    ChannelUnknownOutcome,
)
from channels.wechatpay import WechatPay, WechatPayConfig, from_credentials
from channels.wechatpay_payouts import PayoutSettings
from tests.unit.channels.test_wechatpay import (
    APIV3_KEY,
    APPID,
    MCHID,
    MERCHANT_SERIAL,
    NONCE,
    NOW,
    PLATFORM_KEY_ID,
    encrypt_resource,
    parse_authorization,
    private_pem,
    public_pem,
    signature_headers,
    signed_response,
)

SETTINGS = PayoutSettings(
    transfer_scene_id="1000",
    report_infos=(("活动名称", "钱包提现"), ("奖励说明", "余额提现到零钱")),
)
OPENID = "o-MYE42l80oelYMDE34nYD456Xoy"


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
    return WechatPay(config, nonce_factory=lambda: NONCE, payout_settings=SETTINGS)


def payout(**overrides: Any) -> CreatePayout:
    fields: dict[str, Any] = {
        "out_payout_no": "W20261125000001",
        "amount_minor": 1200,
        "currency": "CNY",
        "payee_id": OPENID,
        "remark": "钱包提现",
        "notify_url": "https://pay.example.com/callbacks/wechatpay",
    }
    fields.update(overrides)
    return CreatePayout(**fields)


def bill(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "out_bill_no": "W20261125000001",
        "transfer_bill_no": "1330000071100999991182020050700019480001",
        "create_time": "2026-11-25T12:00:00+08:00",
        "state": "WAIT_USER_CONFIRM",
        "package_info": "affffddafdfafddffda==",
    }
    fields.update(overrides)
    return fields


# -- requests -------------------------------------------------------------------------------


def test_build_payout_request(channel: WechatPay, merchant_key: rsa.RSAPrivateKey) -> None:
    request = channel.build_payout(payout(), now=NOW)
    assert request.method == "POST"
    assert request.url == "https://api.mch.weixin.qq.com/v3/fund-app/mch-transfer/transfer-bills"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Wechatpay-Serial"] == PLATFORM_KEY_ID
    assert json.loads(request.body) == {
        "appid": APPID,
        "out_bill_no": "W20261125000001",
        "transfer_scene_id": "1000",
        "openid": OPENID,
        "transfer_amount": 1200,
        "transfer_remark": "钱包提现",
        "notify_url": "https://pay.example.com/callbacks/wechatpay",
        "transfer_scene_report_infos": [
            {"info_type": "活动名称", "info_content": "钱包提现"},
            {"info_type": "奖励说明", "info_content": "余额提现到零钱"},
        ],
    }
    params = parse_authorization(request.headers["Authorization"])
    message = (
        (
            f"POST\n/v3/fund-app/mch-transfer/transfer-bills\n{int(NOW.timestamp())}\n{NONCE}\n"
        ).encode()
        + request.body
        + b"\n"
    )
    signature = base64.b64decode(params["signature"])
    merchant_key.public_key().verify(signature, message, PKCS1v15(), SHA256())
    # The same payout gives the same body (WeChat's out_bill_no idempotency).
    assert channel.build_payout(payout(), now=NOW).body == request.body


def test_payee_name_is_encrypted_with_the_platform_key(
    channel: WechatPay, platform_key: rsa.RSAPrivateKey
) -> None:
    request = channel.build_payout(payout(payee_name="张三"), now=NOW)
    sealed = json.loads(request.body)["user_name"]
    assert "张三" not in request.body.decode()
    plain = platform_key.decrypt(
        base64.b64decode(sealed), OAEP(mgf=MGF1(algorithm=SHA1()), algorithm=SHA1(), label=None)
    )
    assert plain.decode() == "张三"


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"currency": "USD"}, "CURRENCY_NOT_SUPPORTED"),
        ({"out_payout_no": "W-2026"}, "INVALID_PAYOUT_NO"),
        ({"out_payout_no": "W" * 33}, "INVALID_PAYOUT_NO"),
        ({"amount_minor": 0}, "INVALID_AMOUNT"),
        ({"amount_minor": 200_000}, "PAYEE_NAME_REQUIRED"),
    ],
)
def test_payouts_refused_before_sending(
    channel: WechatPay, overrides: dict[str, Any], code: str
) -> None:
    with pytest.raises(ChannelFatal) as caught:
        channel.build_payout(payout(**overrides), now=NOW)
    assert caught.value.code == code


def test_account_without_a_transfer_scene_cannot_pay_out(config: WechatPayConfig) -> None:
    with pytest.raises(ChannelFatal) as caught:
        WechatPay(config).build_payout(payout(), now=NOW)
    assert caught.value.code == "PAYOUT_NOT_SUPPORTED"


def test_transfer_scene_from_credentials(
    merchant_key: rsa.RSAPrivateKey, platform_key: rsa.RSAPrivateKey
) -> None:
    credentials = {
        "mchid": MCHID,
        "appid": APPID,
        "merchant_serial_no": MERCHANT_SERIAL,
        "merchant_private_key_pem": private_pem(merchant_key),
        "apiv3_key": APIV3_KEY,
        "platform_public_key_pem": public_pem(platform_key),
        "platform_public_key_id": PLATFORM_KEY_ID,
    }
    assert from_credentials(credentials).payout_settings is None
    infos = json.dumps([{"info_type": "活动名称", "info_content": "提现"}], ensure_ascii=False)
    channel = from_credentials(
        credentials | {"transfer_scene_id": "1000", "transfer_scene_report_infos": infos}
    )
    assert channel.payout_settings == PayoutSettings("1000", (("活动名称", "提现"),))
    with pytest.raises(ValueError, match="transfer_scene_report_infos"):
        from_credentials(
            credentials | {"transfer_scene_id": "1000", "transfer_scene_report_infos": "[1]"}
        )


def test_build_payout_query(channel: WechatPay) -> None:
    request = channel.build_payout_query("W20261125000001", now=NOW)
    assert request.method == "GET" and request.body == b""
    assert request.url.endswith(
        "/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/W20261125000001"
    )


# -- answers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("ACCEPTED", PayoutState.PROCESSING),
        ("PROCESSING", PayoutState.PROCESSING),
        ("WAIT_USER_CONFIRM", PayoutState.PROCESSING),
        ("TRANSFERING", PayoutState.PROCESSING),
        ("CANCELING", PayoutState.PROCESSING),
        ("SUCCESS", PayoutState.SUCCEEDED),
        ("FAIL", PayoutState.FAILED),
        ("CANCELLED", PayoutState.FAILED),
    ],
)
def test_every_bill_state(
    channel: WechatPay, platform_key: rsa.RSAPrivateKey, state: str, expected: PayoutState
) -> None:
    answer = signed_response(platform_key, 200, bill(state=state, package_info=None))
    status = channel.parse_payout(answer, payout=payout(), now=NOW)
    assert (status.state, status.channel_state) == (expected, state)
    assert status.amount_minor == 1200  # the create answer has none: the one asked for
    assert status.channel_payout_no == "1330000071100999991182020050700019480001"
    if expected is PayoutState.FAILED:
        assert status.failure_reason == state


def test_waiting_for_the_payee_gives_the_package_info(
    channel: WechatPay, platform_key: rsa.RSAPrivateKey
) -> None:
    status = channel.parse_payout(
        signed_response(platform_key, 200, bill()), payout=payout(), now=NOW
    )
    assert status.state is PayoutState.PROCESSING
    assert status.payee_action == {"package_info": "affffddafdfafddffda=="}


def test_query_answer_with_success(channel: WechatPay, platform_key: rsa.RSAPrivateKey) -> None:
    queried = bill(
        state="SUCCESS",
        package_info=None,
        mch_id=MCHID,
        appid=APPID,
        transfer_amount=1200,
        transfer_remark="钱包提现",
        openid=OPENID,
        update_time="2026-11-25T12:01:02+08:00",
    )
    status = channel.parse_payout_query(
        signed_response(platform_key, 200, queried), out_payout_no="W20261125000001", now=NOW
    )
    assert status.state is PayoutState.SUCCEEDED
    assert status.succeeded_at == datetime(2026, 11, 25, 4, 1, 2, tzinfo=UTC)
    assert status.amount_minor == 1200


def test_answer_about_another_payout_is_unknown(
    channel: WechatPay, platform_key: rsa.RSAPrivateKey
) -> None:
    answer = signed_response(platform_key, 200, bill(out_bill_no="OTHER"))
    with pytest.raises(ChannelUnknownOutcome):
        channel.parse_payout(answer, payout=payout(), now=NOW)
    with pytest.raises(ChannelUnknownOutcome):
        channel.parse_payout_query(answer, out_payout_no="W20261125000001", now=NOW)


def test_unknown_state_and_unsigned_answers_are_unknown(
    channel: WechatPay, platform_key: rsa.RSAPrivateKey
) -> None:
    with pytest.raises(ChannelUnknownOutcome) as caught:
        channel.parse_payout(
            signed_response(platform_key, 200, bill(state="NEW_STATE")), payout=payout(), now=NOW
        )
    assert caught.value.code == "UNKNOWN_PAYOUT_STATE"
    unsigned = HttpResponse(200, {}, orjson.dumps(bill()))
    with pytest.raises(ChannelUnknownOutcome) as caught:
        channel.parse_payout(unsigned, payout=payout(), now=NOW)
    assert caught.value.code == "INVALID_RESPONSE_SIGNATURE"


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (403, "NOT_ENOUGH", ChannelRetryable),
        (429, "FREQUENCY_LIMITED", ChannelRetryable),
        (500, "SYSTEM_ERROR", ChannelUnknownOutcome),
        (502, "BAD_GATEWAY", ChannelUnknownOutcome),
        (400, "PARAM_ERROR", ChannelFatal),
        (400, "INVALID_REQUEST", ChannelFatal),
        (403, "NO_AUTH", ChannelFatal),
        (404, "NOT_FOUND", ChannelOrderNotFound),
        # A code WeChat's table does not have: query before anything else.
        (403, "SOMETHING_NEW", ChannelUnknownOutcome),
    ],
)
def test_error_classification(
    channel: WechatPay,
    platform_key: rsa.RSAPrivateKey,
    status: int,
    code: str,
    expected: type[ChannelError],
) -> None:
    answer = signed_response(platform_key, status, {"code": code, "message": "…"})
    with pytest.raises(ChannelError) as caught:
        channel.parse_payout(answer, payout=payout(), now=NOW)
    assert type(caught.value) is expected
    assert (caught.value.code, caught.value.http_status) == (code, status)


# -- callbacks ------------------------------------------------------------------------------


def finished_callback(resource: dict[str, Any], *, original_type: str = "mch_payment") -> bytes:
    plaintext = orjson.dumps(resource)
    return orjson.dumps(
        {
            "id": "EV-2018022511223320873",
            "create_time": "2026-11-25T12:01:03+08:00",
            "resource_type": "encrypt-resource",
            "event_type": "MCHTRANSFER.BILL.FINISHED",
            "summary": "商家转账单据终态通知",
            "resource": {
                "original_type": original_type,
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": encrypt_resource(plaintext, ad="mch_payment"),
                "associated_data": "mch_payment",
                "nonce": "fdasflkja484",
            },
        }
    )


def finished_resource(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "mchid": MCHID,
        "out_bill_no": "W20261125000001",
        "transfer_bill_no": "1330000071100999991182020050700019480001",
        "state": "SUCCESS",
        "transfer_amount": 1200,
        "openid": OPENID,
        "create_time": "2026-11-25T12:00:00+08:00",
        "update_time": "2026-11-25T12:01:02+08:00",
    }
    fields.update(overrides)
    return fields


def test_transfer_callback(channel: WechatPay, platform_key: rsa.RSAPrivateKey) -> None:
    body = finished_callback(finished_resource())
    event = channel.parse_callback(signature_headers(platform_key, body), body, now=NOW)
    assert event.trade is None and event.refund is None and event.payout is not None
    assert event.event_type == "MCHTRANSFER.BILL.FINISHED"
    assert event.payout.state is PayoutState.SUCCEEDED
    assert event.payout.amount_minor == 1200
    assert event.payout.succeeded_at == datetime(2026, 11, 25, 4, 1, 2, tzinfo=UTC)
    failed = finished_callback(
        finished_resource(state="FAIL", fail_reason="PAYEE_ACCOUNT_ABNORMAL")
    )
    event = channel.parse_callback(signature_headers(platform_key, failed), failed, now=NOW)
    assert event.payout is not None and event.payout.state is PayoutState.FAILED
    assert event.payout.failure_reason == "PAYEE_ACCOUNT_ABNORMAL"


def test_transfer_callback_rejections(channel: WechatPay, platform_key: rsa.RSAPrivateKey) -> None:
    body = finished_callback(finished_resource())
    headers = signature_headers(platform_key, body)
    tampered = body.replace(b"FINISHED", b"FINISHEd")
    with pytest.raises(CallbackRejected):
        channel.parse_callback(headers, tampered, now=NOW)
    other_mchid = finished_callback(finished_resource(mchid="1900000999"))
    with pytest.raises(CallbackRejected) as caught:
        channel.parse_callback(signature_headers(platform_key, other_mchid), other_mchid, now=NOW)
    assert caught.value.reason == "wrong_account"
    unknown = finished_callback(finished_resource(state="MYSTERY"))
    with pytest.raises(CallbackRejected):
        channel.parse_callback(signature_headers(platform_key, unknown), unknown, now=NOW)
    wrong_type = finished_callback(finished_resource(), original_type="refund")
    with pytest.raises(CallbackRejected):
        channel.parse_callback(signature_headers(platform_key, wrong_type), wrong_type, now=NOW)
