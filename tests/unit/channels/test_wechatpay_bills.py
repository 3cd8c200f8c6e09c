"""Tests for WeChat Pay trade bills in channels/wechatpay.py and channels/wechatpay_bills.py: the
signed tradebill request, the signed download request it leads to, the SHA1 check, gzip, and
the parsing of WeChat's backtick CSV into payments and refunds with exact fen amounts."""

from __future__ import annotations

import base64
import gzip
import hashlib
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.hashes import SHA256

from channels.base import HttpResponse, StatementLineKind, StatementPage
from channels.errors import ChannelFatal, ChannelRetryable, ChannelUnknownOutcome
from channels.wechatpay import WechatPay, WechatPayConfig
from channels.wechatpay_bills import parse_tradebill, yuan_to_fen
from tests.unit.channels.test_wechatpay import (
    APIV3_KEY,
    APPID,
    MCHID,
    MERCHANT_SERIAL,
    NONCE,
    NOW,
    PLATFORM_KEY_ID,
    parse_authorization,
    signed_response,
)

BEIJING = timezone(timedelta(hours=8))
HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
    "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
    "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注"
)
SUMMARY = (
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
)


def row(*cells: str) -> str:
    return ",".join("`" + cell for cell in cells)


PAYMENT = row(
    "2026-11-24 10:30:05", APPID, MCHID, "0", "", "4200001460202611248197935963",
    "P20261124000001", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "NATIVE", "SUCCESS", "OTHERS", "CNY",
    "99.90", "0.00", "0", "0", "0.00", "0.00", "", "", "Image形象店, QQ公仔", "cart-7",
    "0.60000", "0.60%", "99.90", "0.00", "",
)  # fmt: skip
SMALL_PAYMENT = row(
    "2026-11-24 23:59:59", APPID, MCHID, "0", "", "4200001460202611248197935964",
    "P20261124000002", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "JSAPI", "SUCCESS", "CMB_DEBIT", "CNY",
    "0.01", "0.00", "0", "0", "0.00", "0.00", "", "", "贴纸", "", "0.00000", "0.60%", "0.01",
    "0.00", "",
)  # fmt: skip
REFUND_ROW = row(
    "2026-11-24 12:00:00", APPID, MCHID, "0", "", "4200001460202611248197935963",
    "P20261124000001", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "NATIVE", "REFUND", "OTHERS", "CNY",
    "0.00", "0.00", "50302026112400000000000001", "R20261124000001", "50.00", "0.00",
    "ORIGINAL", "SUCCESS", "Image形象店, QQ公仔", "cart-7", "-0.30000", "0.60%", "0.00", "50.00",
    "",
)  # fmt: skip


def bill(*rows: str, summary: tuple[str, ...] | None = None) -> bytes:
    totals = summary or ("3", "99.91", "50.00", "0.00", "0.30000", "99.91", "50.00")
    lines = [HEADER, *rows, SUMMARY, row(*totals)]
    return ("\r\n".join(lines) + "\r\n").encode()


GOOD_BILL = bill(PAYMENT, REFUND_ROW, SMALL_PAYMENT)


@pytest.fixture(scope="module")
def merchant_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def platform_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def channel(merchant_key: rsa.RSAPrivateKey, platform_key: rsa.RSAPrivateKey) -> WechatPay:
    config = WechatPayConfig(
        mchid=MCHID,
        appid=APPID,
        merchant_serial_no=MERCHANT_SERIAL,
        merchant_private_key=merchant_key,
        apiv3_key=APIV3_KEY.encode(),
        platform_public_key=platform_key.public_key(),
        platform_public_key_id=PLATFORM_KEY_ID,
    )
    return WechatPay(config, nonce_factory=lambda: NONCE)


def assert_signed(key: rsa.RSAPrivateKey, headers: Any, method: str, path: str) -> None:
    params = parse_authorization(headers["Authorization"])
    message = f"{method}\n{path}\n{int(NOW.timestamp())}\n{NONCE}\n\n".encode()
    key.public_key().verify(base64.b64decode(params["signature"]), message, PKCS1v15(), SHA256())


def answer(platform_key: rsa.RSAPrivateKey, raw: bytes = GOOD_BILL, **changes: str) -> HttpResponse:
    payload = {
        "hash_type": "SHA1",
        "hash_value": hashlib.sha1(raw).hexdigest(),
        "download_url": "https://api.mch.weixin.qq.com/v3/billdownload/file?token=6XIv5TUPto7p",
        **changes,
    }
    return signed_response(platform_key, 200, payload)


def test_build_statement(channel: WechatPay, merchant_key: rsa.RSAPrivateKey) -> None:
    request = channel.build_statement(date(2026, 11, 24), now=NOW)

    path = "/v3/bill/tradebill?bill_date=2026-11-24&bill_type=ALL&tar_type=GZIP"
    assert (request.method, request.url) == ("GET", "https://api.mch.weixin.qq.com" + path)
    assert request.body == b""
    assert_signed(merchant_key, request.headers, "GET", path)


def test_tradebill_answer_leads_to_a_signed_download(
    channel: WechatPay, merchant_key: rsa.RSAPrivateKey, platform_key: rsa.RSAPrivateKey
) -> None:
    page = channel.parse_statement(answer(platform_key), cursor={}, now=NOW)

    assert page.lines == ()
    assert page.cursor == {"hash_type": "SHA1", "hash_value": hashlib.sha1(GOOD_BILL).hexdigest()}
    download = page.next_request
    assert download is not None
    assert download.method == "GET"
    assert download.url == "https://api.mch.weixin.qq.com/v3/billdownload/file?token=6XIv5TUPto7p"
    assert_signed(merchant_key, download.headers, "GET", "/v3/billdownload/file?token=6XIv5TUPto7p")


def test_tradebill_answer_failures(channel: WechatPay, platform_key: rsa.RSAPrivateKey) -> None:
    unsigned = answer(platform_key)
    forged = HttpResponse(200, {}, unsigned.body)
    with pytest.raises(ChannelUnknownOutcome):
        channel.parse_statement(forged, cursor={}, now=NOW)
    # A day without a payment or a refund has no bill at WeChat: an empty, complete statement.
    none = signed_response(
        platform_key, 400, {"code": "NO_STATEMENT_EXIST", "message": "账单文件不存在"}
    )
    assert channel.parse_statement(none, cursor={}, now=NOW) == StatementPage()
    creating = signed_response(
        platform_key, 400, {"code": "STATEMENT_CREATING", "message": "生成中"}
    )
    with pytest.raises(ChannelRetryable):
        channel.parse_statement(creating, cursor={}, now=NOW)
    bad_date = signed_response(platform_key, 400, {"code": "PARAM_ERROR", "message": "bill_date"})
    with pytest.raises(ChannelFatal):
        channel.parse_statement(bad_date, cursor={}, now=NOW)
    # The signed Authorization of the download goes to WeChat's hosts only.
    elsewhere = answer(platform_key, download_url="https://evil.example/v3/billdownload/file?t=1")
    with pytest.raises(ChannelFatal) as caught:
        channel.parse_statement(elsewhere, cursor={}, now=NOW)
    assert caught.value.code == "UNEXPECTED_DOWNLOAD_URL"
    backup = answer(platform_key, download_url="https://api2.mch.weixin.qq.com/v3/billdownload/x")
    page = channel.parse_statement(backup, cursor={}, now=NOW)
    assert page.next_request is not None
    assert page.next_request.url == "https://api2.mch.weixin.qq.com/v3/billdownload/x"


@pytest.mark.parametrize("compress", [False, True])
def test_downloaded_bill_is_checked_and_parsed(
    channel: WechatPay, platform_key: rsa.RSAPrivateKey, compress: bool
) -> None:
    cursor = dict(channel.parse_statement(answer(platform_key), cursor={}, now=NOW).cursor)
    body = gzip.compress(GOOD_BILL) if compress else GOOD_BILL
    # The file is not signed (WeChat sends no signature headers with it).
    page = channel.parse_statement(HttpResponse(200, {}, body), cursor=cursor, now=NOW)

    assert page.next_request is None
    payment, refund, small = page.lines
    assert payment.kind is StatementLineKind.PAYMENT
    assert payment.out_trade_no == "P20261124000001"
    assert payment.channel_trade_no == "4200001460202611248197935963"
    assert (payment.amount_minor, payment.fee_minor, payment.currency) == (9990, 60, "CNY")
    assert payment.occurred_at == datetime(2026, 11, 24, 10, 30, 5, tzinfo=BEIJING)
    assert payment.channel_state == "SUCCESS" and payment.out_refund_no is None
    assert refund.kind is StatementLineKind.REFUND
    assert (refund.amount_minor, refund.fee_minor) == (5000, 30)  # the fee given back
    assert refund.out_refund_no == "R20261124000001"
    assert refund.channel_refund_no == "50302026112400000000000001"
    assert refund.out_trade_no == "P20261124000001" and refund.channel_state == "SUCCESS"
    assert (small.amount_minor, small.fee_minor) == (1, 0)
    assert small.occurred_at.utcoffset() == timedelta(hours=8)


def test_downloaded_bill_integrity(channel: WechatPay, platform_key: rsa.RSAPrivateKey) -> None:
    cursor = dict(channel.parse_statement(answer(platform_key), cursor={}, now=NOW).cursor)
    changed = GOOD_BILL.replace(b"99.90", b"99.80", 1)
    with pytest.raises(ChannelRetryable) as caught:
        channel.parse_statement(HttpResponse(200, {}, changed), cursor=cursor, now=NOW)
    assert caught.value.code == "BILL_HASH_MISMATCH"
    with pytest.raises(ChannelRetryable):
        truncated = gzip.compress(GOOD_BILL)[:-12]
        channel.parse_statement(HttpResponse(200, {}, truncated), cursor=cursor, now=NOW)
    md5_cursor = cursor | {"hash_type": "MD5"}
    with pytest.raises(ChannelFatal):
        channel.parse_statement(HttpResponse(200, {}, GOOD_BILL), cursor=md5_cursor, now=NOW)
    expired = HttpResponse(400, {}, b'{"code":"INVALID_REQUEST","message":"expired"}')
    with pytest.raises(ChannelFatal):
        channel.parse_statement(expired, cursor=cursor, now=NOW)


def _malformed(raw: bytes) -> str:
    with pytest.raises(ChannelFatal) as caught:
        parse_tradebill(raw)
    assert caught.value.code == "MALFORMED_STATEMENT"
    return caught.value.message


def test_malformed_bills_are_refused() -> None:
    assert "总交易单数" in _malformed(bill(PAYMENT, REFUND_ROW, SMALL_PAYMENT, summary=(
        "4", "99.91", "50.00", "0.00", "0.30000", "99.91", "50.00")))  # fmt: skip
    assert "手续费总金额" in _malformed(bill(PAYMENT, REFUND_ROW, SMALL_PAYMENT, summary=(
        "3", "99.91", "50.00", "0.00", "0.90000", "99.91", "50.00")))  # fmt: skip
    assert "summary" in _malformed(("\r\n".join([HEADER, PAYMENT]) + "\r\n").encode())
    sub_fen = PAYMENT.replace("`0.60000", "`0.59940")
    assert "fen" in _malformed(bill(sub_fen, summary=("1", "99.90", "0.00", "0.00", "0.59940",
                                                      "99.90", "0.00")))  # fmt: skip
    unknown = PAYMENT.replace("`SUCCESS", "`PAYING")
    assert "PAYING" in _malformed(bill(unknown, summary=("1", "99.90", "0.00", "0.00", "0.60000",
                                                         "99.90", "0.00")))  # fmt: skip
    assert "fields" in _malformed(bill(PAYMENT + ",`extra"))
    assert "交易时间" in _malformed(HEADER.replace("交易时间", "时间").encode() + b"\r\n")
    assert "UTF-8" in _malformed(GOOD_BILL.decode().encode("gbk"))


def test_revoked_rows_are_not_statement_lines() -> None:
    revoked = SMALL_PAYMENT.replace("`SUCCESS", "`REVOKED")
    lines = parse_tradebill(bill(PAYMENT, REFUND_ROW, revoked))
    assert [line.out_trade_no for line in lines] == ["P20261124000001", "P20261124000001"]


def test_older_bills_without_the_order_amount_columns() -> None:
    columns = HEADER.split(",")
    keep = [
        n for n, name in enumerate(columns) if name not in ("订单金额", "申请退款金额", "费率备注")
    ]

    def cut(line: str) -> str:
        cells = line[1:].split(",`")
        return row(*(cells[n] for n in keep))

    header = ",".join(columns[n] for n in keep)
    summary = SUMMARY.rsplit(",", 2)[0]
    raw = "\r\n".join(
        [header, cut(PAYMENT), cut(REFUND_ROW), summary,
         row("2", "99.90", "50.00", "0.00", "0.30000")]
    ).encode()  # fmt: skip
    payment, refund = parse_tradebill(raw)
    assert (payment.amount_minor, refund.amount_minor) == (9990, 5000)


def test_yuan_to_fen_is_exact() -> None:
    assert yuan_to_fen("0.01", "x") == 1
    assert yuan_to_fen("12345678.90", "x") == 1234567890
    assert yuan_to_fen("-0.30000", "x") == -30
    for bad in ("0.001", "1e-3", "NaN", "Infinity", "", "1,00", "0.1.0"):
        with pytest.raises(ChannelFatal):
            yuan_to_fen(bad, "x")
