"""Tests for channels/alipay.py (+ alipay_wire, alipay_sign): request signing, exact-span answer
verification, classification, amounts, notifications."""

from __future__ import annotations

import base64
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlencode, urlsplit

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.hashes import SHA256
from hypothesis import given
from hypothesis import strategies as st

from channels.alipay import Alipay, AlipayConfig, from_credentials
from channels.alipay_sign import (
    MalformedAnswer,
    open_answer,
    signing_string,
    top_level_members,
)
from channels.alipay_wire import format_time, from_yuan, to_yuan
from channels.base import CreateOrder, HttpResponse, PrepayResult, TradeState
from channels.errors import (
    CallbackRejected,
    ChannelAlreadyPaid,
    ChannelError,
    ChannelFatal,
    ChannelOrderNotFound,
    ChannelRetryable,
    ChannelUnknownOutcome,
)
from channels.registry import build_channel, spec

NOW = datetime(2026, 11, 25, 4, 0, 0, tzinfo=UTC)  # 12:00:00 in Beijing
APP_ID = "2021001144680325"
SELLER_ID = "2088102119685838"
GATEWAY = "https://openapi.alipay.com/gateway.do"


# -- keys and factories ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def alipay_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def config(app_key: rsa.RSAPrivateKey, alipay_key: rsa.RSAPrivateKey) -> AlipayConfig:
    return AlipayConfig(
        app_id=APP_ID, app_private_key=app_key, alipay_public_key=alipay_key.public_key()
    )


@pytest.fixture
def channel(config: AlipayConfig) -> Alipay:
    return Alipay(config)


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


def sign_b64(key: rsa.RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, PKCS1v15(), SHA256())).decode()


def verifies(key: rsa.RSAPrivateKey, message: bytes, signature: str) -> bool:
    try:
        key.public_key().verify(base64.b64decode(signature), message, PKCS1v15(), SHA256())
    except Exception:
        return False
    return True


def order(**overrides: Any) -> CreateOrder:
    fields: dict[str, Any] = {
        "out_trade_no": "pay0001202611250000000001",
        "amount_minor": 1999,
        "currency": "CNY",
        "description": "Image形象店-深圳腾大-QQ公仔",
        "notify_url": "https://pay.example.com/callbacks/alipay/ali_main",
        "method": "qr",
        "expires_at": NOW + timedelta(minutes=15),
    }
    fields.update(overrides)
    return CreateOrder(**fields)


def signed_body(key: rsa.RSAPrivateKey, response_key: str, content: str | bytes) -> bytes:
    """An answer as Alipay frames it: the member's exact text, signed, ``sign`` last."""
    raw = content.encode() if isinstance(content, str) else content
    signature = sign_b64(key, raw)
    return b'{"' + response_key.encode() + b'":' + raw + b',"sign":"' + signature.encode() + b'"}'


def answer(key: rsa.RSAPrivateKey, api: str, payload: dict[str, Any]) -> HttpResponse:
    response_key = api.replace(".", "_") + "_response"
    return HttpResponse(200, {}, signed_body(key, response_key, orjson.dumps(payload)))


def request_params(url: str, body: bytes = b"") -> dict[str, str]:
    pairs = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    pairs += parse_qsl(body.decode(), keep_blank_values=True)
    params = dict(pairs)
    assert len(params) == len(pairs)
    return params


def expected_signing_string(params: dict[str, str]) -> bytes:
    return "&".join(
        f"{k}={params[k]}" for k in sorted(params) if k != "sign" and params[k]
    ).encode()


# -- amounts and times ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fen", "yuan"),
    [
        (1, "0.01"),
        (10, "0.10"),
        (100, "1.00"),
        (1999, "19.99"),
        (123456789, "1234567.89"),
        (100_000_000_00, "100000000.00"),
    ],
)
def test_amounts_both_ways(fen: int, yuan: str) -> None:
    assert to_yuan(fen) == yuan
    assert from_yuan(yuan) == fen


def test_amount_parsing_is_exact_and_strict() -> None:
    assert from_yuan("0.1") == 10
    assert from_yuan("7") == 700
    assert from_yuan("0") == 0
    assert from_yuan("99999999999999.99") == 9_999_999_999_999_999  # beyond float precision
    for bad in ["", "-0.01", "+1", "1e3", " 1.00", "1.00 ", "1.001", "01.00", "1.", ".5",
                "NaN", "Infinity", "1,00", "１.00", "0x10"]:  # fmt: skip
        with pytest.raises(ValueError):
            from_yuan(bad)
    for bad_fen in [0, -1, 100_000_000_01, True]:
        with pytest.raises(ValueError):
            to_yuan(bad_fen)


def test_format_time_is_beijing() -> None:
    assert format_time(NOW) == "2026-11-25 12:00:00"
    assert format_time(datetime(2026, 12, 31, 23, 30, 59, 999999, tzinfo=UTC)) == (
        "2027-01-01 07:30:59"
    )
    with pytest.raises(ValueError):
        format_time(datetime(2026, 1, 1))


# -- requests -------------------------------------------------------------------------------


def test_signing_string() -> None:
    params = [("sign", "x"), ("b", "2"), ("a", "1"), ("empty", ""), ("sign_type", "RSA2")]
    assert signing_string(params, exclude=("sign",), skip_empty=True) == "a=1&b=2&sign_type=RSA2"
    assert signing_string(params, exclude=("sign", "sign_type"), skip_empty=False) == (
        "a=1&b=2&empty="
    )


def test_precreate_request(channel: Alipay, app_key: rsa.RSAPrivateKey) -> None:
    request = channel.build_create(order(attach="shop=7&x"), now=NOW)
    assert not isinstance(request, PrepayResult)
    assert request.method == "POST"
    assert request.url.startswith(GATEWAY + "?")
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded;charset=utf-8"
    # Common parameters in the URL (charset among them), biz_content alone in the body.
    url_params = request_params(request.url)
    assert "biz_content" not in url_params
    assert dict(parse_qsl(request.body.decode())).keys() == {"biz_content"}
    params = request_params(request.url, request.body)
    assert {k: v for k, v in params.items() if k not in ("sign", "biz_content")} == {
        "app_id": APP_ID,
        "method": "alipay.trade.precreate",
        "format": "JSON",
        "charset": "utf-8",
        "sign_type": "RSA2",
        "timestamp": "2026-11-25 12:00:00",
        "version": "1.0",
        "notify_url": "https://pay.example.com/callbacks/alipay/ali_main",
    }
    assert json.loads(params["biz_content"]) == {
        "out_trade_no": "pay0001202611250000000001",
        "total_amount": "19.99",
        "subject": "Image形象店-深圳腾大-QQ公仔",
        "product_code": "FACE_TO_FACE_PAYMENT",
        "time_expire": "2026-11-25 12:15:00",
        "passback_params": "shop%3D7%26x",
    }
    assert "深圳腾大" in params["biz_content"]  # UTF-8, not \u escapes
    assert verifies(app_key, expected_signing_string(params), params["sign"])


def test_signature_matches_python_alipay_sdk(
    channel: Alipay, app_key: rsa.RSAPrivateKey, alipay_key: rsa.RSAPrivateKey
) -> None:
    from alipay import AliPay

    request = channel.build_create(order(), now=NOW)
    assert not isinstance(request, PrepayResult)
    params = request_params(request.url, request.body)
    theirs = AliPay(
        appid=APP_ID,
        app_private_key_string=private_pem(app_key),
        alipay_public_key_string=public_pem(alipay_key),
    )
    unsigned = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "sign")
    # PKCS#1 v1.5 is deterministic: the same string gives the same signature.
    assert theirs._sign(unsigned) == params["sign"]


def test_repeated_create_has_identical_biz_content(channel: Alipay) -> None:
    first = channel.build_create(order(), now=NOW)
    later = channel.build_create(order(), now=NOW + timedelta(seconds=42))
    assert not isinstance(first, PrepayResult) and not isinstance(later, PrepayResult)
    assert first.body == later.body
    assert request_params(first.url)["timestamp"] != request_params(later.url)["timestamp"]


def test_seller_id_is_sent_when_configured(config: AlipayConfig) -> None:
    channel = Alipay(AlipayConfig(**{**config.__dict__, "seller_id": SELLER_ID}))
    request = channel.build_create(order(expires_at=None), now=NOW)
    assert not isinstance(request, PrepayResult)
    biz = json.loads(request_params(request.url, request.body)["biz_content"])
    assert biz["seller_id"] == SELLER_ID
    assert "time_expire" not in biz and "passback_params" not in biz


@pytest.mark.parametrize(
    ("method", "api", "product_code"),
    [
        ("page", "alipay.trade.page.pay", "FAST_INSTANT_TRADE_PAY"),
        ("wap", "alipay.trade.wap.pay", "QUICK_WAP_WAY"),
    ],
)
def test_page_and_wap_are_signed_urls_built_locally(
    channel: Alipay, app_key: rsa.RSAPrivateKey, method: str, api: str, product_code: str
) -> None:
    result = channel.build_create(order(method=method), now=NOW)
    assert isinstance(result, PrepayResult)
    pay_url = result.credential["pay_url"]
    assert pay_url.startswith(GATEWAY + "?")
    params = request_params(pay_url)
    assert params["method"] == api
    assert params["notify_url"] == "https://pay.example.com/callbacks/alipay/ali_main"
    biz = json.loads(params["biz_content"])
    assert biz["product_code"] == product_code
    assert biz["total_amount"] == "19.99"
    assert verifies(app_key, expected_signing_string(params), params["sign"])
    tampered = params | {"biz_content": params["biz_content"].replace("19.99", "0.01")}
    assert not verifies(app_key, expected_signing_string(tampered), params["sign"])


def test_create_refusals(channel: Alipay) -> None:
    for bad, code in [
        (order(method="native"), "METHOD_NOT_SUPPORTED"),
        (order(currency="USD"), "CURRENCY_NOT_SUPPORTED"),
        (order(amount_minor=0), "INVALID_AMOUNT"),
        (order(amount_minor=100_000_000_01), "INVALID_AMOUNT"),
    ]:
        with pytest.raises(ChannelFatal) as caught:
            channel.build_create(bad, now=NOW)
        assert caught.value.code == code


def test_query_and_close_requests(channel: Alipay, app_key: rsa.RSAPrivateKey) -> None:
    query = channel.build_query("pay0001", now=NOW)
    params = request_params(query.url, query.body)
    assert params["method"] == "alipay.trade.query"
    assert "notify_url" not in params
    assert json.loads(params["biz_content"]) == {"out_trade_no": "pay0001"}
    assert verifies(app_key, expected_signing_string(params), params["sign"])

    close = channel.build_close("pay0001", channel_trade_no="2026112522001", now=NOW)
    params = request_params(close.url, close.body)
    assert params["method"] == "alipay.trade.close"
    assert json.loads(params["biz_content"]) == {
        "out_trade_no": "pay0001",
        "trade_no": "2026112522001",
    }
    assert verifies(app_key, expected_signing_string(params), params["sign"])


# -- answers --------------------------------------------------------------------------------

PRECREATE_OK = {
    "code": "10000",
    "msg": "Success",
    "out_trade_no": "pay0001",
    "qr_code": "https://qr.alipay.com/bax03431ljhokirwl38f00a7",
}


def test_parse_create(channel: Alipay, alipay_key: rsa.RSAPrivateKey) -> None:
    result = channel.parse_create(
        answer(alipay_key, "alipay.trade.precreate", PRECREATE_OK), now=NOW
    )
    assert dict(result.credential) == {"qr_code": "https://qr.alipay.com/bax03431ljhokirwl38f00a7"}


def test_span_verification_uses_the_exact_text(
    channel: Alipay, alipay_key: rsa.RSAPrivateKey
) -> None:
    # Unusual spacing, escapes, braces inside strings, non-ASCII raw and escaped, sign not last.
    content = (
        '{ "code" : "10000",\n\t"msg":"Success", "note": "a \\"}{\\" b \\\\",'
        ' "sub": {"x": [1, {"y": "}"}]}, "qr_code":"https://qr.alipay.com/\\u0062ax1",'
        ' "subject": "深圳\\u817e大" }'
    )
    signature = sign_b64(alipay_key, content.encode())
    body = (
        '  {"alipay_cert_sn" : "x", "alipay_trade_precreate_response"  :  '
        + content
        + f' ,\n "sign" : "{signature}", "extra": null }}  '
    ).encode()
    result = channel.parse_create(HttpResponse(200, {}, body), now=NOW)
    assert result.credential["qr_code"] == "https://qr.alipay.com/bax1"
    # The same member re-serialised is not what was signed.
    compact = json.dumps(json.loads(content), ensure_ascii=False, separators=(",", ":"))
    forged = body.replace(content.encode(), compact.encode())
    with pytest.raises(ChannelUnknownOutcome) as caught:
        channel.parse_create(HttpResponse(200, {}, forged), now=NOW)
    assert caught.value.code == "INVALID_RESPONSE_SIGNATURE"


def test_open_answer_prefers_the_method_member_and_falls_back_to_error_response() -> None:
    body = b'{"error_response":{"code":"40002"},"a_response":{"code":"10000"},"sign":"s"}'
    assert open_answer(body, "a_response").content == b'{"code":"10000"}'
    assert open_answer(body, "b_response").content == b'{"code":"40002"}'
    for bad in [
        b"",
        b"[]",
        b'{"a_response":{"code":"1"},"a_response":{"code":"2"},"sign":"s"}',
        b'{"a_response":"text","sign":"s"}',
        b'{"a_response":{},"sign":5}',
        b'{"other":{}}',
        b'{"a_response":{"code":"10000"}',
        '{"a_response":{"m":"\xff"}}'.encode("latin-1"),
    ]:
        with pytest.raises(MalformedAnswer):
            open_answer(bad, "a_response")


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


@given(
    st.dictionaries(st.text(max_size=8), _JSON, max_size=5),
    st.sampled_from(["", " ", "\n\t "]),
    st.booleans(),
)
def test_member_spans_are_exact(obj: dict[str, Any], space: str, ascii_only: bool) -> None:
    text = json.dumps(obj, ensure_ascii=ascii_only, separators=("," + space, ":" + space))
    body = (space + text + space).encode()
    members = top_level_members(body)
    assert [key for key, _, _ in members] == list(obj)
    for key, start, end in members:
        assert json.loads(body[start:end]) == obj[key]
        assert (
            body[start:end]
            == json.dumps(
                obj[key], ensure_ascii=ascii_only, separators=("," + space, ":" + space)
            ).encode()
        )


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(
            lambda key: HttpResponse(
                200, {}, orjson.dumps({"alipay_trade_precreate_response": PRECREATE_OK})
            ),
            id="unsigned",
        ),
        pytest.param(
            lambda key: HttpResponse(
                200,
                {},
                answer(key, "alipay.trade.precreate", PRECREATE_OK).body.replace(b"bax0", b"bax1"),
            ),
            id="tampered",
        ),
        pytest.param(
            lambda key: HttpResponse(
                200,
                {},
                answer(key, "alipay.trade.precreate", PRECREATE_OK).body.replace(
                    b'"sign":"', b'"sign":"AAAA'
                ),
            ),
            id="bad-base64-or-signature",
        ),
    ],
)
def test_unverified_answers_are_unknown_outcomes(
    channel: Alipay, alipay_key: rsa.RSAPrivateKey, make: Any
) -> None:
    with pytest.raises(ChannelUnknownOutcome) as caught:
        channel.parse_create(make(alipay_key), now=NOW)
    assert type(caught.value) is ChannelUnknownOutcome
    assert caught.value.code == "INVALID_RESPONSE_SIGNATURE"


def test_answer_signed_with_another_key(channel: Alipay, app_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ChannelUnknownOutcome) as caught:
        channel.parse_create(answer(app_key, "alipay.trade.precreate", PRECREATE_OK), now=NOW)
    assert caught.value.code == "INVALID_RESPONSE_SIGNATURE"


def test_unsigned_business_failure_is_not_trusted(channel: Alipay) -> None:
    # e.g. isv.invalid-app-id, which Alipay answers without a sign
    body = orjson.dumps(
        {
            "alipay_trade_precreate_response": {
                "code": "40002",
                "msg": "Invalid Arguments",
                "sub_code": "isv.invalid-app-id",
                "sub_msg": "无效的AppID参数",
            }
        }
    )
    with pytest.raises(ChannelUnknownOutcome) as caught:
        channel.parse_create(HttpResponse(200, {}, body), now=NOW)
    assert "isv.invalid-app-id" in caught.value.message


@pytest.mark.parametrize(
    ("status", "body", "expected", "code"),
    [
        (502, b"<html>Bad Gateway</html>", ChannelUnknownOutcome, "HTTP_502"),
        (500, b"", ChannelUnknownOutcome, "HTTP_500"),
        (429, b"slow down", ChannelRetryable, "HTTP_429"),
        (404, b"not found", ChannelUnknownOutcome, "HTTP_404"),
        (200, b"<html>", ChannelUnknownOutcome, "INVALID_RESPONSE"),
        (200, b'{"sign":"x"}', ChannelUnknownOutcome, "INVALID_RESPONSE"),
    ],
)
def test_transport_level_failures(
    channel: Alipay, status: int, body: bytes, expected: type[ChannelError], code: str
) -> None:
    with pytest.raises(expected) as caught:
        channel.parse_query(HttpResponse(status, {}, body), now=NOW)
    assert type(caught.value) is expected
    assert caught.value.code == code


def test_signed_answer_without_code_is_unknown(
    channel: Alipay, alipay_key: rsa.RSAPrivateKey
) -> None:
    for payload in ({"msg": "Success"}, {"code": 10000}):
        with pytest.raises(ChannelUnknownOutcome) as caught:
            channel.parse_create(answer(alipay_key, "alipay.trade.precreate", payload), now=NOW)
        assert caught.value.code == "INVALID_RESPONSE"
    with pytest.raises(ChannelUnknownOutcome) as caught:
        channel.parse_create(
            answer(alipay_key, "alipay.trade.precreate", {"code": "10000", "msg": "Success"}),
            now=NOW,
        )
    assert caught.value.code == "UNEXPECTED_RESPONSE"


# The classification table (code, sub_code) -> error class, as the report lists it.
CLASSIFICATION = [
    ("40004", "ACQ.SYSTEM_ERROR", ChannelUnknownOutcome),
    ("20000", "isp.unknow-error", ChannelUnknownOutcome),
    ("20000", "aop.unknow-error", ChannelUnknownOutcome),
    ("20000", None, ChannelUnknownOutcome),
    ("40004", "ACQ.TRADE_NOT_EXIST", ChannelOrderNotFound),
    ("40004", "ACQ.TRADE_HAS_SUCCESS", ChannelAlreadyPaid),
    ("40004", "ACQ.TRADE_HAS_FINISHED", ChannelAlreadyPaid),
    ("40004", "ACQ.TRADE_HAS_CLOSE", ChannelFatal),
    ("40004", "ACQ.CONTEXT_INCONSISTENT", ChannelFatal),
    ("40004", "ACQ.INVALID_PARAMETER", ChannelFatal),
    ("40004", "ACQ.TOTAL_FEE_EXCEED", ChannelFatal),
    ("40004", "ACQ.TRADE_STATUS_ERROR", ChannelFatal),
    ("40001", "isv.missing-signature", ChannelFatal),
    ("40002", "isv.invalid-signature", ChannelFatal),
    ("40002", "isv.invalid-app-id", ChannelFatal),
    ("40006", "isv.insufficient-isv-permissions", ChannelFatal),
    ("20001", "aop.invalid-auth-token", ChannelFatal),
]


@pytest.mark.parametrize(("code", "sub_code", "expected"), CLASSIFICATION)
def test_classification(
    channel: Alipay,
    alipay_key: rsa.RSAPrivateKey,
    code: str,
    sub_code: str | None,
    expected: type[ChannelError],
) -> None:
    payload: dict[str, Any] = {"code": code, "msg": "Business Failed"}
    if sub_code:
        payload |= {"sub_code": sub_code, "sub_msg": "说明 " + sub_code}
    with pytest.raises(expected) as caught:
        channel.parse_create(answer(alipay_key, "alipay.trade.precreate", payload), now=NOW)
    assert type(caught.value) is expected
    assert caught.value.code == (sub_code or code)
    assert caught.value.message == ("说明 " + sub_code if sub_code else "Business Failed")
    assert caught.value.http_status == 200


def test_error_response_member_is_classified_when_signed(
    channel: Alipay, alipay_key: rsa.RSAPrivateKey
) -> None:
    body = signed_body(
        alipay_key,
        "error_response",
        '{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-method"}',
    )
    with pytest.raises(ChannelFatal) as caught:
        channel.parse_query(HttpResponse(200, {}, body), now=NOW)
    assert caught.value.code == "isv.invalid-method"


QUERY_PAID = {
    "code": "10000",
    "msg": "Success",
    "trade_no": "2026112522001404070200176844",
    "out_trade_no": "pay0001",
    "buyer_logon_id": "csq***@sandbox.com",
    "trade_status": "TRADE_SUCCESS",
    "total_amount": "19.99",
    "buyer_pay_amount": "19.99",
    "send_pay_date": "2026-11-25 12:05:31",
    "fund_bill_list": [{"amount": "19.99", "fund_channel": "ALIPAYACCOUNT"}],
}


def test_parse_query_paid(channel: Alipay, alipay_key: rsa.RSAPrivateKey) -> None:
    status = channel.parse_query(answer(alipay_key, "alipay.trade.query", QUERY_PAID), now=NOW)
    assert status.out_trade_no == "pay0001"
    assert status.state is TradeState.PAID
    assert status.channel_state == "TRADE_SUCCESS"
    assert status.amount_minor == 1999
    assert status.currency == "CNY"
    assert status.channel_trade_no == "2026112522001404070200176844"
    assert status.paid_at == datetime(2026, 11, 25, 4, 5, 31, tzinfo=UTC)
    assert status.app_id is None and status.merchant_id is None


@pytest.mark.parametrize(
    ("trade_status", "expected"),
    [
        ("WAIT_BUYER_PAY", TradeState.NOT_PAID),
        ("TRADE_SUCCESS", TradeState.PAID),
        ("TRADE_FINISHED", TradeState.PAID),
        ("TRADE_CLOSED", TradeState.CLOSED),
    ],
)
def test_trade_status_mapping(
    channel: Alipay, alipay_key: rsa.RSAPrivateKey, trade_status: str, expected: TradeState
) -> None:
    payload = QUERY_PAID | {"trade_status": trade_status, "total_amount": "0.01"}
    status = channel.parse_query(answer(alipay_key, "alipay.trade.query", payload), now=NOW)
    assert status.state is expected
    assert status.channel_state == trade_status
    assert status.amount_minor == 1
    assert (status.paid_at is not None) is (expected is TradeState.PAID)


@pytest.mark.parametrize(
    "change",
    [
        {"trade_status": "TRADE_PENDING"},
        {"total_amount": 19.99},
        {"total_amount": "19.999"},
        {"total_amount": None},
        {"out_trade_no": None},
    ],
)
def test_parse_query_refuses_what_it_cannot_read(
    channel: Alipay, alipay_key: rsa.RSAPrivateKey, change: dict[str, Any]
) -> None:
    payload = {k: v for k, v in (QUERY_PAID | change).items() if v is not None}
    with pytest.raises(ChannelUnknownOutcome):
        channel.parse_query(answer(alipay_key, "alipay.trade.query", payload), now=NOW)


def test_parse_query_not_found(channel: Alipay, alipay_key: rsa.RSAPrivateKey) -> None:
    payload = {
        "code": "40004",
        "msg": "Business Failed",
        "sub_code": "ACQ.TRADE_NOT_EXIST",
        "sub_msg": "交易不存在",
        "buyer_pay_amount": "0.00",
        "out_trade_no": "pay0001",
    }
    with pytest.raises(ChannelOrderNotFound):
        channel.parse_query(answer(alipay_key, "alipay.trade.query", payload), now=NOW)


def test_parse_close(channel: Alipay, alipay_key: rsa.RSAPrivateKey) -> None:
    ok = {"code": "10000", "msg": "Success", "trade_no": "2026", "out_trade_no": "pay0001"}
    channel.parse_close(answer(alipay_key, "alipay.trade.close", ok), now=NOW)

    def failure(sub_code: str) -> HttpResponse:
        payload = {"code": "40004", "msg": "Business Failed", "sub_code": sub_code}
        return answer(alipay_key, "alipay.trade.close", payload)

    channel.parse_close(failure("ACQ.TRADE_HAS_CLOSE"), now=NOW)  # closed already: closed
    # Not waiting for payment: closed or paid, the answer cannot say which: query it.
    with pytest.raises(ChannelUnknownOutcome) as caught:
        channel.parse_close(failure("ACQ.TRADE_STATUS_ERROR"), now=NOW)
    assert caught.value.code == "ACQ.TRADE_STATUS_ERROR"
    with pytest.raises(ChannelOrderNotFound):
        channel.parse_close(failure("ACQ.TRADE_NOT_EXIST"), now=NOW)
    with pytest.raises(ChannelUnknownOutcome):
        channel.parse_close(failure("ACQ.SYSTEM_ERROR"), now=NOW)
    with pytest.raises(ChannelUnknownOutcome):  # another method's answer is not a close
        channel.parse_close(answer(alipay_key, "alipay.trade.query", ok), now=NOW)


# -- notifications --------------------------------------------------------------------------

NOTIFY: dict[str, str] = {
    "gmt_create": "2026-11-25 12:05:20",
    "charset": "utf-8",
    "seller_id": SELLER_ID,
    "subject": "Image形象店-深圳腾大-QQ公仔",
    "body": "大乐透2.1",
    "buyer_id": "2088102116773037",
    "invoice_amount": "19.99",
    "notify_id": "2026112500222120531056380529774436",
    "fund_bill_list": '[{"amount":"19.99","fundChannel":"ALIPAYACCOUNT"}]',
    "notify_type": "trade_status_sync",
    "trade_status": "TRADE_SUCCESS",
    "receipt_amount": "19.99",
    "app_id": APP_ID,
    "buyer_pay_amount": "19.99",
    "sign_type": "RSA2",
    "gmt_payment": "2026-11-25 12:05:31",
    "notify_time": "2026-11-25 12:05:32",
    "version": "1.0",
    "out_trade_no": "pay0001",
    "total_amount": "19.99",
    "trade_no": "2026112522001404070200176844",
    "auth_app_id": APP_ID,
    "point_amount": "0.00",
}
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


def notify_body(
    key: rsa.RSAPrivateKey,
    fields: dict[str, str] | None = None,
    *,
    codec: str = "utf-8",
    skip_empty: bool = False,
) -> bytes:
    """A notification as Alipay sends it: signed over all but sign/sign_type, form-encoded."""
    fields = dict(NOTIFY if fields is None else fields)
    message = signing_string(fields.items(), exclude=("sign", "sign_type"), skip_empty=skip_empty)
    fields["sign"] = sign_b64(key, message.encode(codec))
    return urlencode(fields, encoding=codec).encode("ascii")


def reason_of(channel: Alipay, body: bytes, headers: dict[str, str] | None = None) -> str:
    with pytest.raises(CallbackRejected) as caught:
        channel.parse_callback(FORM if headers is None else headers, body, now=NOW)
    return caught.value.reason


def test_notification_round_trip(channel: Alipay, alipay_key: rsa.RSAPrivateKey) -> None:
    event = channel.parse_callback(FORM, notify_body(alipay_key), now=NOW)
    assert event.event_id == NOTIFY["notify_id"]
    assert event.event_type == "TRADE_SUCCESS"
    assert event.raw == NOTIFY
    trade = event.trade
    assert trade.out_trade_no == "pay0001"
    assert trade.state is TradeState.PAID
    assert trade.amount_minor == 1999 and trade.currency == "CNY"
    assert trade.channel_trade_no == "2026112522001404070200176844"
    assert trade.app_id == APP_ID and trade.merchant_id == SELLER_ID
    assert trade.paid_at == datetime(2026, 11, 25, 4, 5, 31, tzinfo=UTC)
    # No Content-Type at all is accepted too.
    assert channel.parse_callback({}, notify_body(alipay_key), now=NOW).event_id


def test_notification_in_gbk(channel: Alipay, alipay_key: rsa.RSAPrivateKey) -> None:
    fields = NOTIFY | {"charset": "GBK"}
    body = notify_body(alipay_key, fields, codec="gbk")
    event = channel.parse_callback(FORM, body, now=NOW)
    assert event.raw["subject"] == "Image形象店-深圳腾大-QQ公仔"


def test_notification_with_raw_plus_in_sign_and_empty_fields(
    channel: Alipay, alipay_key: rsa.RSAPrivateKey
) -> None:
    fields = NOTIFY | {"body": ""}
    for skip_empty in (False, True):  # both signing conventions for empty values
        body = notify_body(alipay_key, fields, skip_empty=skip_empty)
        assert channel.parse_callback(FORM, body, now=NOW).raw["body"] == ""
    # A sender that did not percent-encode "+" in the base64 sign.
    body = notify_body(alipay_key).decode()
    sign = dict(parse_qsl(body))["sign"]
    raw_plus = body.replace(quote_plus(sign), sign.replace("/", "%2F").replace("=", "%3D"))
    assert channel.parse_callback(FORM, raw_plus.encode(), now=NOW).event_id


def test_notification_verification_failures(
    channel: Alipay, alipay_key: rsa.RSAPrivateKey, app_key: rsa.RSAPrivateKey
) -> None:
    good = notify_body(alipay_key)
    tampered = good.replace(b"total_amount=19.99", b"total_amount=0.01")
    assert tampered != good
    assert reason_of(channel, tampered) == "bad_signature"
    assert reason_of(channel, notify_body(app_key)) == "bad_signature"  # wrong key
    without_sign = urlencode({k: v for k, v in NOTIFY.items()}).encode()
    assert reason_of(channel, without_sign) == "missing_signature"
    with_rsa1 = notify_body(alipay_key, NOTIFY | {"sign_type": "RSA"})
    assert reason_of(channel, with_rsa1) == "bad_signature_type"
    no_type = notify_body(alipay_key, {k: v for k, v in NOTIFY.items() if k != "sign_type"})
    assert reason_of(channel, no_type) == "bad_signature_type"
    # sign_type is not covered by the signature (but must be RSA2); any other field is.
    assert reason_of(channel, good + b"&extra=1") == "bad_signature"
    assert reason_of(channel, good + b"&sign=x") == "malformed"  # duplicate field
    assert reason_of(channel, good, {"Content-Type": "application/json"}) == "malformed"


def test_notification_content_failures(channel: Alipay, alipay_key: rsa.RSAPrivateKey) -> None:
    def reason(fields: dict[str, str]) -> str:
        return reason_of(channel, notify_body(alipay_key, fields))

    assert reason(NOTIFY | {"trade_status": "TRADE_PENDING"}) == "malformed"
    assert reason(NOTIFY | {"total_amount": "19.999"}) == "malformed"
    assert reason({k: v for k, v in NOTIFY.items() if k != "notify_id"}) == "malformed"
    assert reason(NOTIFY | {"notify_type": "fund_auth_freeze"}) == "unsupported_notification"
    assert reason(NOTIFY | {"charset": "latin-9"}) == "malformed"
    assert reason_of(channel, b"\xff\xfe\x00") == "malformed"
    assert reason_of(channel, b"a=%E4%B8") == "malformed"
    assert reason_of(channel, b"x" * (64 * 1024 + 1)) == "malformed"


def _random_value(rng: random.Random) -> str:
    return "".join(rng.choice('aZ09+/=%&-_. 支"\\\n\x00') for _ in range(rng.randrange(12)))


def _random_notify_body(rng: random.Random, key: rsa.RSAPrivateKey) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:
        return rng.randbytes(rng.randrange(300))
    fields = dict(NOTIFY)
    for name in rng.sample(sorted(NOTIFY), rng.randrange(4)):
        if rng.random() < 0.5:
            fields.pop(name)
        else:
            fields[name] = _random_value(rng)
    if kind == 1:
        fields["sign"] = _random_value(rng)
        return urlencode(fields).encode()
    body = notify_body(key, fields, codec="utf-8") if kind == 2 else urlencode(fields).encode()
    cut = rng.randrange(len(body) + 1)
    return body if rng.random() < 0.7 else body[:cut] + rng.randbytes(3) + body[cut:]


def test_notification_only_ever_raises_callback_rejected(
    channel: Alipay, alipay_key: rsa.RSAPrivateKey
) -> None:
    rng = random.Random(20261125)
    outcomes: set[str] = set()
    for _ in range(400):
        body = _random_notify_body(rng, alipay_key)
        headers = rng.choice([FORM, {}, {"content-type": _random_value(rng)}])
        try:
            channel.parse_callback(headers, body, now=NOW)
            outcomes.add("accepted")
        except CallbackRejected as rejected:
            outcomes.add(rejected.reason)
    assert {"malformed", "bad_signature", "missing_signature", "accepted"} <= outcomes


def test_acks(channel: Alipay) -> None:
    success = channel.ack_success()
    assert (success.status, success.body) == (200, b"success")
    assert success.headers["Content-Type"].startswith("text/plain")
    failure = channel.ack_failure("bad sign 验签失败")
    assert failure.status == 200 and failure.body == b"fail"


# -- configuration --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def credentials(app_key: rsa.RSAPrivateKey, alipay_key: rsa.RSAPrivateKey) -> dict[str, str]:
    return {
        "app_id": APP_ID,
        "app_private_key_pem": private_pem(app_key),
        "alipay_public_key_pem": public_pem(alipay_key),
    }


def _bare_base64(pem: str) -> str:
    return "".join(line for line in pem.splitlines() if not line.startswith("-----"))


def test_from_credentials(
    credentials: dict[str, str], app_key: rsa.RSAPrivateKey, alipay_key: rsa.RSAPrivateKey
) -> None:
    config = AlipayConfig.from_credentials(credentials)
    assert config.app_id == APP_ID
    assert config.gateway_url == GATEWAY
    assert config.seller_id is None
    assert config.app_private_key.private_numbers() == app_key.private_numbers()
    assert config.alipay_public_key.public_numbers() == alipay_key.public_key().public_numbers()
    assert "PRIVATE" not in repr(config)
    # The bare base64 keys Alipay's key tool prints are read as well.
    bare = AlipayConfig.from_credentials(
        credentials
        | {
            "app_private_key_pem": _bare_base64(credentials["app_private_key_pem"]),
            "alipay_public_key_pem": _bare_base64(credentials["alipay_public_key_pem"]),
            "gateway_url": "http://127.0.0.1:9/gateway.do",
            "seller_id": SELLER_ID,
        }
    )
    assert bare.app_private_key.private_numbers() == app_key.private_numbers()
    assert bare.gateway_url == "http://127.0.0.1:9/gateway.do" and bare.seller_id == SELLER_ID


def test_from_credentials_validation(credentials: dict[str, str]) -> None:
    ec_key = private_pem(ec.generate_private_key(ec.SECP256R1()))
    small_rsa = private_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    bad = [
        # Not a key: a PEM frame around the bytes "nope".
        {
            "app_private_key_pem": "-----BEGIN {0}-----\nbm9wZQ==\n-----END {0}-----".format(
                "PRIVATE KEY"
            )
        },
        {"app_private_key_pem": "not base64 at all!"},
        {"app_private_key_pem": ec_key},
        {"app_private_key_pem": small_rsa},
        {"alipay_public_key_pem": credentials["app_private_key_pem"]},
        {"gateway_url": "ftp://example.com/gateway.do"},
        {"gateway_url": "https://openapi.alipay.com/gateway.do?charset=utf-8"},
    ]
    for override in bad:
        with pytest.raises(ValueError):
            AlipayConfig.from_credentials(credentials | override)
    for missing in credentials:
        with pytest.raises(ValueError, match=missing):
            AlipayConfig.from_credentials({k: v for k, v in credentials.items() if k != missing})


def test_registry(credentials: dict[str, str]) -> None:
    alipay = spec("alipay")
    assert alipay.methods == {"qr", "page", "wap"} and alipay.currencies == {"CNY"}
    channel = build_channel("alipay", credentials)
    assert isinstance(channel, Alipay) and channel.name == "alipay"
    assert isinstance(from_credentials(credentials), Alipay)
