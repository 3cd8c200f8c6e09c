"""Tests for the Alipay adapter's refunds (channels/alipay.py + alipay_refunds, alipay_notify):
the refund and refund-query requests and their signatures, every answer mapping and error
class, refund notifications (genuine, tampered, foreign), and exact yuan <-> fen amounts.

Answers and notifications are signed here with a key made at test time, independently of the
adapter's own signing code."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.hashes import SHA256

from channels.alipay import Alipay, AlipayConfig
from channels.alipay_wire import CHINA_TZ
from channels.base import Channel, CreateRefund, HttpResponse, RefundState
from channels.errors import (
    CallbackIgnored,
    CallbackRejected,
    ChannelError,
    ChannelFatal,
    ChannelOrderNotFound,
    ChannelRetryable,
    ChannelUnknownOutcome,
)

NOW = datetime(2026, 11, 25, 4, 0, 0, tzinfo=UTC)  # 12:00:00 in Beijing
APP_ID = "2021001144680325"
GATEWAY = "https://openapi.alipay.com/gateway.do"
REFUND_KEY = "alipay_trade_refund_response"
QUERY_KEY = "alipay_trade_fastpay_refund_query_response"


@pytest.fixture(scope="module")
def app_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def alipay_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def channel(app_key: rsa.RSAPrivateKey, alipay_key: rsa.RSAPrivateKey) -> Alipay:
    config = AlipayConfig(
        app_id=APP_ID, app_private_key=app_key, alipay_public_key=alipay_key.public_key()
    )
    return Alipay(config)


def sign_b64(key: rsa.RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, PKCS1v15(), SHA256())).decode()


def verifies(key: rsa.RSAPrivateKey, message: bytes, signature: str) -> bool:
    try:
        key.public_key().verify(base64.b64decode(signature), message, PKCS1v15(), SHA256())
    except Exception:
        return False
    return True


def answer(key: rsa.RSAPrivateKey, response_key: str, payload: dict[str, Any]) -> HttpResponse:
    """An answer framed as Alipay frames it: the member's exact text signed, ``sign`` last."""
    member = orjson.dumps(payload)
    body = b'{"%s":%s,"sign":"%s"}' % (
        response_key.encode(),
        member,
        sign_b64(key, member).encode(),
    )
    return HttpResponse(200, {"Content-Type": "text/html;charset=utf-8"}, body)


def request_params(url: str, body: bytes) -> dict[str, str]:
    pairs = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    pairs += parse_qsl(body.decode(), keep_blank_values=True)
    return dict(pairs)


def refund(**overrides: Any) -> CreateRefund:
    fields: dict[str, Any] = {
        "out_refund_no": "rf_20261125_0001",
        "out_trade_no": "pay0001202611250000000001",
        "refund_minor": 1999,
        "total_minor": 8888,
        "currency": "CNY",
        "notify_url": "https://pay.example.com/callbacks/alipay/ali_main",
        "reason": "商品退货",
    }
    fields.update(overrides)
    return CreateRefund(**fields)


def test_the_adapter_is_a_channel(channel: Alipay) -> None:
    as_channel: Channel = channel
    assert as_channel.name == "alipay"


# -- requests -------------------------------------------------------------------------------


def test_refund_request(channel: Alipay, app_key: rsa.RSAPrivateKey) -> None:
    request = channel.build_refund(refund(), now=NOW)
    assert request.method == "POST" and request.url.startswith(GATEWAY + "?")
    params = request_params(request.url, request.body)
    assert params["method"] == "alipay.trade.refund"
    assert params["timestamp"] == "2026-11-25 12:00:00"
    assert "notify_url" not in params  # Alipay notifies refunds at the trade's notify_url
    assert params["biz_content"] == (
        '{"out_trade_no":"pay0001202611250000000001","refund_amount":"19.99",'
        '"out_request_no":"rf_20261125_0001","refund_reason":"商品退货"}'
    )
    signed = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign")
    assert verifies(app_key, signed.encode(), params["sign"])
    tampered = signed.replace("19.99", "88.88")
    assert not verifies(app_key, tampered.encode(), params["sign"])
    # The same refund gives the same biz_content: a retry is the same refund at Alipay.
    again = request_params(*(lambda r: (r.url, r.body))(channel.build_refund(refund(), now=NOW)))
    assert again["biz_content"] == params["biz_content"]


def test_full_refund_still_sends_out_request_no(channel: Alipay) -> None:
    request = channel.build_refund(refund(refund_minor=8888, reason=None), now=NOW)
    biz = json.loads(request_params(request.url, request.body)["biz_content"])
    assert biz == {
        "out_trade_no": "pay0001202611250000000001",
        "refund_amount": "88.88",
        "out_request_no": "rf_20261125_0001",
    }


@pytest.mark.parametrize(
    ("fen", "yuan"),
    [(1, "0.01"), (10, "0.10"), (100, "1.00"), (1999, "19.99"), (100_000_000_00, "100000000.00")],
)
def test_refund_amount_is_exact_yuan(channel: Alipay, fen: int, yuan: str) -> None:
    request = channel.build_refund(refund(refund_minor=fen, total_minor=fen), now=NOW)
    assert json.loads(request_params(request.url, request.body)["biz_content"])[
        "refund_amount"
    ] == (yuan)


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"currency": "USD"}, "CURRENCY_NOT_SUPPORTED"),
        ({"refund_minor": 0}, "INVALID_AMOUNT"),
        ({"refund_minor": 8889}, "INVALID_AMOUNT"),
        ({"out_refund_no": ""}, "INVALID_REFUND_NO"),
        ({"out_refund_no": "x" * 65}, "INVALID_REFUND_NO"),
        ({"out_refund_no": "退款1"}, "INVALID_REFUND_NO"),
    ],
)
def test_refund_refusals(channel: Alipay, overrides: dict[str, Any], code: str) -> None:
    with pytest.raises(ChannelFatal) as caught:
        channel.build_refund(refund(**overrides), now=NOW)
    assert caught.value.code == code


def test_long_reason_is_cut_the_same_way_every_time(channel: Alipay) -> None:
    request = channel.build_refund(refund(reason="退" * 300), now=NOW)
    biz = json.loads(request_params(request.url, request.body)["biz_content"])
    assert biz["refund_reason"] == "退" * 256


def test_refund_query_request(channel: Alipay, app_key: rsa.RSAPrivateKey) -> None:
    request = channel.build_refund_query(
        "rf_20261125_0001", out_trade_no="pay0001202611250000000001", now=NOW
    )
    params = request_params(request.url, request.body)
    assert params["method"] == "alipay.trade.fastpay.refund.query"
    assert json.loads(params["biz_content"]) == {
        "out_trade_no": "pay0001202611250000000001",
        "out_request_no": "rf_20261125_0001",
        "query_options": ["gmt_refund_pay"],
    }
    signed = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign")
    assert verifies(app_key, signed.encode(), params["sign"])


# -- refund answers -------------------------------------------------------------------------


def refund_answer(**fields: Any) -> dict[str, Any]:
    return {
        "code": "10000",
        "msg": "Success",
        "trade_no": "2026112522001404930500012345",
        "out_trade_no": "pay0001202611250000000001",
        "buyer_logon_id": "159****5620",
        "fund_change": "Y",
        "refund_fee": "25.00",  # the trade's total refunded, not this refund's 19.99
        "gmt_refund_pay": "2026-11-25 12:00:03",
        **fields,
    }


def test_refund_with_fund_change_is_succeeded(
    channel: Alipay, alipay_key: rsa.RSAPrivateKey
) -> None:
    status = channel.parse_refund(
        answer(alipay_key, REFUND_KEY, refund_answer()), now=NOW, refund=refund()
    )
    assert status.state is RefundState.SUCCEEDED
    assert status.out_refund_no == "rf_20261125_0001"
    assert status.out_trade_no == "pay0001202611250000000001"
    assert status.amount_minor == 1999 and status.currency == "CNY"
    assert status.succeeded_at == datetime(2026, 11, 25, 12, 0, 3, tzinfo=CHINA_TZ)
    assert status.channel_state == "fund_change=Y"


@pytest.mark.parametrize("fund_change", ["N", None])
def test_refund_without_fund_change_is_processing(
    channel: Alipay, alipay_key: rsa.RSAPrivateKey, fund_change: str | None
) -> None:
    # Alipay's docs: fund_change N (or absent) -> ask the refund query; it may be a repeat of
    # a refund already made, or one not (yet) made.
    payload = refund_answer(fund_change=fund_change)
    if fund_change is None:
        del payload["fund_change"]
    status = channel.parse_refund(answer(alipay_key, REFUND_KEY, payload), now=NOW, refund=refund())
    assert status.state is RefundState.PROCESSING
    assert status.succeeded_at is None
    assert status.amount_minor == 1999


def test_refund_answer_without_the_request_leaves_the_refund_unnamed(
    channel: Alipay, alipay_key: rsa.RSAPrivateKey
) -> None:
    status = channel.parse_refund(answer(alipay_key, REFUND_KEY, refund_answer()), now=NOW)
    assert status.state is RefundState.SUCCEEDED
    assert status.out_refund_no == "" and status.amount_minor is None  # refund_fee is a total


def test_refund_answer_for_another_trade_is_not_trusted(
    channel: Alipay, alipay_key: rsa.RSAPrivateKey
) -> None:
    response = answer(alipay_key, REFUND_KEY, refund_answer(out_trade_no="someone_else"))
    with pytest.raises(ChannelUnknownOutcome):
        channel.parse_refund(response, now=NOW, refund=refund())


def test_refund_answer_signature(
    channel: Alipay, alipay_key: rsa.RSAPrivateKey, app_key: rsa.RSAPrivateKey
) -> None:
    genuine = answer(alipay_key, REFUND_KEY, refund_answer())
    tampered = HttpResponse(200, {}, genuine.body.replace(b'"Y"', b'"N"'))
    with pytest.raises(ChannelUnknownOutcome) as caught:
        channel.parse_refund(tampered, now=NOW)
    assert caught.value.code == "INVALID_RESPONSE_SIGNATURE"
    forged = answer(app_key, REFUND_KEY, refund_answer())
    with pytest.raises(ChannelUnknownOutcome):
        channel.parse_refund(forged, now=NOW)
    unsigned = HttpResponse(200, {}, b'{"%s":%s}' % (REFUND_KEY.encode(), b'{"code":"10000"}'))
    with pytest.raises(ChannelUnknownOutcome):
        channel.parse_refund(unsigned, now=NOW)


@pytest.mark.parametrize(
    ("sub_code", "error_class"),
    [
        ("ACQ.SYSTEM_ERROR", ChannelUnknownOutcome),
        ("ACQ.TRADE_NOT_EXIST", ChannelOrderNotFound),
        ("ACQ.REFUND_CHARGE_ERROR", ChannelRetryable),
        ("ACQ.SELLER_BALANCE_NOT_ENOUGH", ChannelRetryable),
        ("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", ChannelFatal),
        ("ACQ.REASON_TRADE_REFUND_FEE_ERR", ChannelFatal),
        ("ACQ.DISCORDANT_REPEAT_REQUEST", ChannelFatal),
        ("ACQ.TRADE_STATUS_ERROR", ChannelFatal),
        ("ACQ.TRADE_HAS_CLOSE", ChannelFatal),
        ("ACQ.TRADE_HAS_FINISHED", ChannelFatal),
        ("ACQ.REASON_TRADE_BEEN_FREEZEN", ChannelFatal),
        ("ACQ.TRADE_NOT_ALLOW_REFUND", ChannelFatal),
        ("ACQ.INVALID_PARAMETER", ChannelFatal),
        ("ACQ.SOMETHING_NEW", ChannelFatal),
    ],
)
def test_refund_failures_are_classified(
    channel: Alipay,
    alipay_key: rsa.RSAPrivateKey,
    sub_code: str,
    error_class: type[ChannelError],
) -> None:
    payload = {
        "code": "40004",
        "msg": "Business Failed",
        "sub_code": sub_code,
        "sub_msg": "…",
        "refund_fee": "0.00",
        "send_back_fee": "0.00",
    }
    with pytest.raises(ChannelError) as caught:
        channel.parse_refund(answer(alipay_key, REFUND_KEY, payload), now=NOW)
    assert type(caught.value) is error_class
    assert caught.value.code == sub_code


def test_service_unavailable_and_transport_failures(
    channel: Alipay, alipay_key: rsa.RSAPrivateKey
) -> None:
    busy = {"code": "20000", "msg": "Service Currently Unavailable", "sub_code": "isp.unknow-error"}
    with pytest.raises(ChannelUnknownOutcome):
        channel.parse_refund(answer(alipay_key, REFUND_KEY, busy), now=NOW)
    for status, error_class in [
        (500, ChannelUnknownOutcome),
        (502, ChannelUnknownOutcome),
        (504, ChannelUnknownOutcome),
        (429, ChannelRetryable),
    ]:
        with pytest.raises(error_class):
            channel.parse_refund(HttpResponse(status, {}, b"<html>busy</html>"), now=NOW)
        with pytest.raises(error_class):
            channel.parse_refund_query(HttpResponse(status, {}, b""), out_refund_no="r", now=NOW)


# -- refund query answers -------------------------------------------------------------------


def test_refund_query_success(channel: Alipay, alipay_key: rsa.RSAPrivateKey) -> None:
    payload = {
        "code": "10000",
        "msg": "Success",
        "trade_no": "2026112522001404930500012345",
        "out_trade_no": "pay0001202611250000000001",
        "out_request_no": "rf_20261125_0001",
        "total_amount": "88.88",
        "refund_amount": "19.99",
        "refund_status": "REFUND_SUCCESS",
        "gmt_refund_pay": "2026-11-25 12:00:03",
    }
    status = channel.parse_refund_query(
        answer(alipay_key, QUERY_KEY, payload), out_refund_no="rf_20261125_0001", now=NOW
    )
    assert status.state is RefundState.SUCCEEDED and status.channel_state == "REFUND_SUCCESS"
    assert status.amount_minor == 1999 and status.out_trade_no == "pay0001202611250000000001"
    assert status.succeeded_at == datetime(2026, 11, 25, 4, 0, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    "payload",
    [
        {"code": "10000", "msg": "Success"},  # "如果没有查询到则代表未退款成功"
        {
            "code": "10000",
            "msg": "Success",
            "out_trade_no": "pay0001202611250000000001",
            "out_request_no": "rf_20261125_0001",
            "refund_amount": "19.99",
        },  # no refund_status: not received or failed
        {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST"},
    ],
)
def test_refund_query_without_a_successful_refund_is_not_found(
    channel: Alipay, alipay_key: rsa.RSAPrivateKey, payload: dict[str, Any]
) -> None:
    with pytest.raises(ChannelOrderNotFound):
        channel.parse_refund_query(
            answer(alipay_key, QUERY_KEY, payload), out_refund_no="rf_20261125_0001", now=NOW
        )


def test_refund_query_for_another_refund_is_not_trusted(
    channel: Alipay, alipay_key: rsa.RSAPrivateKey
) -> None:
    payload = {
        "code": "10000",
        "msg": "Success",
        "out_request_no": "rf_other",
        "refund_amount": "1.00",
        "refund_status": "REFUND_SUCCESS",
    }
    with pytest.raises(ChannelUnknownOutcome):
        channel.parse_refund_query(
            answer(alipay_key, QUERY_KEY, payload), out_refund_no="rf_20261125_0001", now=NOW
        )
    bad_amount = payload | {"out_request_no": "rf_20261125_0001", "refund_amount": "1.001"}
    with pytest.raises(ChannelUnknownOutcome):
        channel.parse_refund_query(
            answer(alipay_key, QUERY_KEY, bad_amount), out_refund_no="rf_20261125_0001", now=NOW
        )


# -- notifications --------------------------------------------------------------------------


def notify_fields(**fields: str) -> dict[str, str]:
    values = {
        "gmt_create": "2026-11-25 11:58:00",
        "charset": "utf-8",
        "seller_id": "2088102119685838",
        "subject": "大乐透",
        "buyer_id": "2088102122524333",
        "notify_id": "2026112500222120003000000000000001",
        "notify_type": "trade_status_sync",
        "trade_status": "TRADE_SUCCESS",
        "app_id": APP_ID,
        "sign_type": "RSA2",
        "gmt_payment": "2026-11-25 11:58:30",
        "notify_time": "2026-11-25 12:00:04",
        "version": "1.0",
        "out_trade_no": "pay0001202611250000000001",
        "total_amount": "88.88",
        "trade_no": "2026112522001404930500012345",
        "auth_app_id": APP_ID,
    }
    values.update(fields)
    return values


def signed_form(key: rsa.RSAPrivateKey, values: dict[str, str]) -> bytes:
    content = "&".join(f"{k}={values[k]}" for k in sorted(values) if k not in ("sign_type",))
    return urlencode(values | {"sign": sign_b64(key, content.encode())}).encode()


FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
PARTIAL = {
    "out_biz_no": "rf_20261125_0001",
    "refund_fee": "19.99",
    "gmt_refund": "2026-11-25 12:00:03.320",
}


def test_partial_refund_notification(channel: Alipay, alipay_key: rsa.RSAPrivateKey) -> None:
    body = signed_form(alipay_key, notify_fields(**PARTIAL))
    event = channel.parse_callback(FORM, body, now=NOW)
    assert event.trade is None and event.refund is not None
    assert event.event_id == "2026112500222120003000000000000001"
    assert event.event_type == "REFUND_SUCCESS"
    assert event.refund.state is RefundState.SUCCEEDED
    assert event.refund.out_refund_no == "rf_20261125_0001"
    assert event.refund.out_trade_no == "pay0001202611250000000001"
    # refund_fee is the trade's total refunded so far: not this refund's amount.
    assert event.refund.amount_minor is None
    assert event.raw["refund_fee"] == "19.99"
    assert event.refund.succeeded_at == datetime(2026, 11, 25, 12, 0, 3, 320000, tzinfo=CHINA_TZ)


def test_full_refund_notification_is_a_refund_not_a_close(
    channel: Alipay, alipay_key: rsa.RSAPrivateKey
) -> None:
    fields = notify_fields(
        trade_status="TRADE_CLOSED",
        out_biz_no="rf_20261125_0002",
        refund_fee="88.88",
        gmt_refund="2026-11-25 12:10:00.001",
        gmt_close="2026-11-25 12:10:00",
    )
    event = channel.parse_callback(FORM, signed_form(alipay_key, fields), now=NOW)
    assert event.refund is not None and event.trade is None
    assert event.refund.out_refund_no == "rf_20261125_0002"
    assert event.raw["trade_status"] == "TRADE_CLOSED"


def test_payment_and_close_notifications_are_unchanged(
    channel: Alipay, alipay_key: rsa.RSAPrivateKey
) -> None:
    paid = channel.parse_callback(FORM, signed_form(alipay_key, notify_fields()), now=NOW)
    assert paid.refund is None and paid.trade is not None
    assert paid.trade.state.value == "paid" and paid.trade.amount_minor == 8888
    # A payment notification that says refund_fee 0.00 is still a payment.
    zero = channel.parse_callback(
        FORM, signed_form(alipay_key, notify_fields(refund_fee="0.00")), now=NOW
    )
    assert zero.trade is not None and zero.refund is None
    closed = channel.parse_callback(
        FORM, signed_form(alipay_key, notify_fields(trade_status="TRADE_CLOSED")), now=NOW
    )
    assert closed.trade is not None and closed.trade.state.value == "closed"


def test_tampered_refund_notification_is_rejected(
    channel: Alipay, alipay_key: rsa.RSAPrivateKey, app_key: rsa.RSAPrivateKey
) -> None:
    body = signed_form(alipay_key, notify_fields(**PARTIAL))
    for tampered in [
        body.replace(b"out_biz_no=rf_20261125_0001", b"out_biz_no=rf_20261125_0009"),
        body.replace(b"refund_fee=19.99", b"refund_fee=88.88"),
    ]:
        assert tampered != body
        with pytest.raises(CallbackRejected) as caught:
            channel.parse_callback(FORM, tampered, now=NOW)
        assert caught.value.reason == "bad_signature"
    forged = signed_form(app_key, notify_fields(**PARTIAL))
    with pytest.raises(CallbackRejected):
        channel.parse_callback(FORM, forged, now=NOW)


def test_refund_notification_of_another_app_is_rejected(
    channel: Alipay, alipay_key: rsa.RSAPrivateKey
) -> None:
    body = signed_form(alipay_key, notify_fields(app_id="2021009999999999", **PARTIAL))
    with pytest.raises(CallbackRejected) as caught:
        channel.parse_callback(FORM, body, now=NOW)
    assert caught.value.reason == "wrong_account"


def test_refund_payfront_did_not_ask_for_is_acknowledged_and_ignored(
    channel: Alipay, alipay_key: rsa.RSAPrivateKey
) -> None:
    # E.g. a refund made in Alipay's merchant console: no out_request_no to match.
    fields = notify_fields(refund_fee="5.00", gmt_refund="2026-11-25 12:00:03.320")
    with pytest.raises(CallbackIgnored):
        channel.parse_callback(FORM, signed_form(alipay_key, fields), now=NOW)
    malformed = notify_fields(out_biz_no="rf_1", refund_fee="5.001")
    with pytest.raises(CallbackRejected):
        channel.parse_callback(FORM, signed_form(alipay_key, malformed), now=NOW)
