"""Trade bills against the WeChat Pay sandbox: the unmodified ``wechatpayv3`` client applies for
and downloads a bill (verifying the tradebill answer's signature), and payfront's adapter runs
the two-step statement fetch over HTTP, checks the SHA1 and parses the file into lines."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from wechatpayv3 import WeChatPay as V3Client

from channels.base import CreateRefund, StatementLineKind, StatementPage
from channels.wechatpay import WechatPay
from tests.interop.harness import BackgroundSandbox, running_sandbox
from tests.interop.test_wechatpayv3_refunds import adapter_for, now, pay, send
from tests.interop.test_wechatpayv3_sandbox import Merchant, client_for, new_merchant, register

BEIJING = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture(scope="module")
def background_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundSandbox]:
    with running_sandbox(
        tmp_path_factory.mktemp("wechat-bills"),
        route="/callbacks/wechatpay/{name}",
        answer=lambda: web.Response(status=204),
        seed=7,
    ) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def merchant(background_sandbox: BackgroundSandbox) -> tuple[Merchant, dict[str, Any]]:
    merchant = new_merchant("1900000666")
    return merchant, register(background_sandbox, merchant)


@pytest.fixture(scope="module")
def bill_day(
    background_sandbox: BackgroundSandbox, merchant: tuple[Merchant, dict[str, Any]]
) -> dt.date:
    """Two paid orders and one partial refund; the Beijing day they happened on."""
    wxpay = library(background_sandbox, merchant)
    for number, total in (("BILL_PAY_1", 12345), ("BILL_PAY_2", 678)):
        code, message = wxpay.pay(
            description="账单, 测试", out_trade_no=number, amount={"total": total}
        )
        assert code == 200, message
        pay(background_sandbox, merchant[0].mchid, number)
    code, message = wxpay.refund(
        out_refund_no="BILL_REFUND_1",
        out_trade_no="BILL_PAY_1",
        amount={"refund": 2345, "total": 12345, "currency": "CNY"},
    )
    assert code == 200, message
    code, message = wxpay.query(out_trade_no="BILL_PAY_1")
    paid_at = dt.datetime.fromisoformat(json.loads(message)["success_time"])
    return paid_at.astimezone(BEIJING).date()


def library(sandbox: BackgroundSandbox, merchant: tuple[Merchant, dict[str, Any]]) -> V3Client:
    credentials, registration = merchant
    return client_for(
        sandbox,
        credentials,
        public_key=registration["platform_public_key_pem"],
        public_key_id=registration["platform_public_key_id"],
    )


def test_library_applies_for_and_downloads_the_bill(
    background_sandbox: BackgroundSandbox,
    merchant: tuple[Merchant, dict[str, Any]],
    bill_day: dt.date,
) -> None:
    wxpay = library(background_sandbox, merchant)
    code, message = wxpay.trade_bill(bill_date=bill_day.isoformat())  # tar_type=GZIP
    assert code == 200, message  # signature verified by the library
    offer = json.loads(message)
    code, content = wxpay.download_bill(offer["download_url"])
    assert code == 200
    assert isinstance(content, bytes)
    raw = gzip.decompress(content)
    assert hashlib.sha1(raw).hexdigest() == offer["hash_value"]
    text = raw.decode("utf-8")
    assert text.startswith("交易时间,公众账号ID,商户号,")
    assert "`BILL_PAY_1," in text and "`BILL_REFUND_1," in text
    assert text.splitlines()[-1].startswith("`3,`130.23,`23.45,")

    code, message = wxpay.trade_bill(bill_date="2020-01-01")
    assert (code, json.loads(message)["code"]) == (400, "NO_STATEMENT_EXIST")


def fetch_statement(channel: WechatPay, day: dt.date) -> StatementPage:
    page = channel.parse_statement(
        send(channel.build_statement(day, now=now())), cursor={}, now=now()
    )
    if page.next_request is None:
        return page
    file = send(page.next_request)
    return channel.parse_statement(file, cursor=page.cursor, now=now())


def test_adapter_fetches_and_parses_the_bill(
    background_sandbox: BackgroundSandbox,
    merchant: tuple[Merchant, dict[str, Any]],
    bill_day: dt.date,
) -> None:
    channel = adapter_for(background_sandbox, *merchant)
    statement = fetch_statement(channel, bill_day)

    assert statement.next_request is None
    by_kind = {(line.kind, line.out_trade_no): line for line in statement.lines}
    assert set(by_kind) == {
        (StatementLineKind.PAYMENT, "BILL_PAY_1"),
        (StatementLineKind.PAYMENT, "BILL_PAY_2"),
        (StatementLineKind.REFUND, "BILL_PAY_1"),
    }
    first = by_kind[(StatementLineKind.PAYMENT, "BILL_PAY_1")]
    assert (first.amount_minor, first.fee_minor, first.currency) == (12345, 74, "CNY")
    assert first.channel_trade_no is not None and len(first.channel_trade_no) == 28
    assert first.occurred_at.astimezone(BEIJING).date() == bill_day
    second = by_kind[(StatementLineKind.PAYMENT, "BILL_PAY_2")]
    assert (second.amount_minor, second.fee_minor) == (678, 4)  # 4.068 fen → 4
    refund = by_kind[(StatementLineKind.REFUND, "BILL_PAY_1")]
    assert (refund.amount_minor, refund.fee_minor) == (2345, 14)  # 14.07 fen → 14, given back
    assert refund.out_refund_no == "BILL_REFUND_1" and refund.channel_refund_no is not None

    # A refund made by the adapter shows up in the next fetch of the same day's bill.
    request = channel.build_refund(
        CreateRefund(
            out_refund_no="BILL_REFUND_2",
            out_trade_no="BILL_PAY_2",
            refund_minor=678,
            total_minor=678,
            currency="CNY",
            notify_url=background_sandbox.notify_url + "/bills",
        ),
        now=now(),
    )
    channel.parse_refund(send(request), now=now())
    today = dt.datetime.now(BEIJING).date()
    again = fetch_statement(channel, today)
    refunds = {line.out_refund_no for line in again.lines if line.kind is StatementLineKind.REFUND}
    assert "BILL_REFUND_2" in refunds

    assert fetch_statement(channel, dt.date(2020, 1, 1)) == StatementPage()
