"""The WeChat Pay emulator's trade bills: the signed tradebill answer, the unsigned download
behind it, the file in WeChat's format made from the sandbox's own payments and refunds with
fees at the merchant's rate, gzip, NO_STATEMENT_EXIST, and the download's access rules."""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import hashlib
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from tests.unit.mock_channels.mock_wechat_kit import (
    Receiver,
    Sandbox,
    V3Answer,
    make_merchant,
    start_sandbox,
)
from tests.unit.mock_channels.test_wechatpay_sandbox import assert_signed, query_path
from tests.unit.mock_channels.test_wechatpay_sandbox_refunds import REFUNDS, paid_order, refund_body

BEIJING = dt.timezone(dt.timedelta(hours=8))


def cells(line: str) -> list[str]:
    assert line.startswith("`"), line
    return line[1:].split(",`")


async def paid_day(sandbox: Sandbox, out_trade_no: str) -> str:
    """The Beijing day the order was paid on (the bill it appears in)."""
    answer = await sandbox.v3("GET", query_path(sandbox, out_trade_no))
    success_time = dt.datetime.fromisoformat(answer.json()["success_time"])
    return success_time.astimezone(BEIJING).date().isoformat()


async def tradebill(sandbox: Sandbox, query: str) -> V3Answer:
    return await sandbox.v3("GET", f"/v3/bill/tradebill?{query}")


async def download(sandbox: Sandbox, url: str) -> V3Answer:
    path = url.split("://", 1)[1].split("/", 1)[1]
    return await sandbox.v3("GET", "/" + path)


async def test_tradebill_of_a_day_with_payments_and_refunds(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    await paid_order(sandbox, "ORDER_BILL_1", receiver.url)
    await paid_order(sandbox, "ORDER_BILL_2", receiver.url)
    refunded = await sandbox.v3(
        "POST", REFUNDS, refund_body("ORDER_BILL_1", "REFUND_B1", 100, None)
    )
    assert refunded.status == 200
    day = await paid_day(sandbox, "ORDER_BILL_1")

    answer = await tradebill(sandbox, f"bill_date={day}&bill_type=ALL")
    assert answer.status == 200
    assert_signed(sandbox, answer)
    offer = answer.json()
    assert offer["hash_type"] == "SHA1"
    assert offer["download_url"].startswith(str(sandbox.client.make_url("/v3/billdownload/file")))

    file = await download(sandbox, offer["download_url"])
    assert file.status == 200
    assert "Wechatpay-Signature" not in file.headers  # bill files are not signed
    assert hashlib.sha1(file.body).hexdigest() == offer["hash_value"]
    lines = file.body.decode("utf-8").split("\r\n")
    assert lines[-1] == ""
    header, *rows, summary_header, summary, _ = lines
    assert header.split(",")[:10] == [
        "交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号",
        "用户标识", "交易类型", "交易状态",
    ]  # fmt: skip
    assert len(header.split(",")) == 27
    columns = {name: n for n, name in enumerate(header.split(","))}
    parsed = [cells(line) for line in rows]
    by_state = {(row[columns["交易状态"]], row[columns["商户订单号"]]): row for row in parsed}
    assert set(by_state) == {
        ("SUCCESS", "ORDER_BILL_1"),
        ("SUCCESS", "ORDER_BILL_2"),
        ("REFUND", "ORDER_BILL_1"),
    }
    payment = by_state[("SUCCESS", "ORDER_BILL_1")]
    assert payment[columns["应结订单金额"]] == "1.00" and payment[columns["订单金额"]] == "1.00"
    assert payment[columns["手续费"]] == "0.01000"  # 0.6% of 1.00 yuan, half-up to the fen
    assert payment[columns["费率"]] == "0.60%"
    assert payment[columns["商户号"]] == sandbox.merchant.mchid
    assert payment[columns["交易类型"]] == "NATIVE"
    assert len(payment[columns["微信订单号"]]) == 28
    refund = by_state[("REFUND", "ORDER_BILL_1")]
    assert refund[columns["商户退款单号"]] == "REFUND_B1"
    assert refund[columns["退款金额"]] == "1.00" and refund[columns["申请退款金额"]] == "1.00"
    assert refund[columns["手续费"]] == "-0.01000"  # the fee of the refunded part, given back
    assert refund[columns["微信退款单号"]] == refunded.json()["refund_id"]
    times = [row[columns["交易时间"]] for row in parsed]
    assert times == sorted(times)
    assert summary_header.startswith("总交易单数,应结订单总金额,退款总金额")
    assert cells(summary) == ["3", "2.00", "1.00", "0.00", "0.01000", "2.00", "1.00"]

    only_refunds = await tradebill(sandbox, f"bill_date={day}&bill_type=REFUND&tar_type=GZIP")
    gzipped = await download(sandbox, only_refunds.json()["download_url"])
    raw = gzip.decompress(gzipped.body)
    assert hashlib.sha1(raw).hexdigest() == only_refunds.json()["hash_value"]
    refund_rows = [cells(line) for line in raw.decode().split("\r\n")[1:-3]]
    assert [row[columns["交易状态"]] for row in refund_rows] == ["REFUND"]


async def test_no_statement_and_bad_queries(sandbox: Sandbox) -> None:
    empty = await tradebill(sandbox, "bill_date=2026-01-02&bill_type=ALL")
    assert (empty.status, empty.json()["code"]) == (400, "NO_STATEMENT_EXIST")
    assert_signed(sandbox, empty)
    for query in (
        "bill_date=2026-1-2",
        "bill_date=yesterday",
        "bill_type=ALL",
        "bill_date=2026-01-02&bill_type=DAILY",
        "bill_date=2026-01-02&tar_type=ZIP",
    ):
        answer = await tradebill(sandbox, query)
        assert (answer.status, answer.json()["code"]) == (400, "PARAM_ERROR"), query  # fmt: skip
    stranger = await download(sandbox, "http://x/v3/billdownload/file?token=nope")
    assert (stranger.status, stranger.json()["code"]) == (400, "INVALID_REQUEST")


async def test_download_is_for_the_merchant_that_asked(
    sandbox: Sandbox, receiver: Receiver, merchant_private_key: rsa.RSAPrivateKey
) -> None:
    await paid_order(sandbox, "ORDER_BILL_OWN", receiver.url)
    day = await paid_day(sandbox, "ORDER_BILL_OWN")
    offer = (await tradebill(sandbox, f"bill_date={day}")).json()
    other = make_merchant(merchant_private_key, mchid="1900000777")
    status, _ = await sandbox.admin("POST", "/sandbox/wechatpay/merchants", other.registration())
    assert status == 200
    path = "/" + offer["download_url"].split("/", 3)[3]
    refused = await sandbox.v3("GET", path, merchant=other)
    assert refused.status == 400
    unsigned = await sandbox.client.get(path)
    assert unsigned.status == 401
    assert (await download(sandbox, offer["download_url"])).status == 200


async def test_fee_rate_is_the_merchants(
    tmp_path: Path, merchant_private_key: rsa.RSAPrivateKey, platform_state: Path
) -> None:
    state_dir = tmp_path / "state"
    shutil.copytree(platform_state, state_dir)
    merchant = make_merchant(merchant_private_key, mchid="1900000888")
    original = merchant.registration

    def registration(**extra: Any) -> dict[str, Any]:
        return original(fee_rate="0.0038", **extra)

    merchant.registration = registration  # type: ignore[method-assign]
    sandbox = await start_sandbox(state_dir, merchant)
    try:
        body = sandbox.order_body("ORDER_FEE", "http://127.0.0.1:9/n", amount={"total": 99999})
        assert (await sandbox.v3("POST", "/v3/pay/transactions/native", body)).status == 200
        status, _ = await sandbox.admin(
            "POST", "/sandbox/wechatpay/orders/ORDER_FEE/pay", {"outcome": "success"}
        )
        assert status == 200
        day = await paid_day(sandbox, "ORDER_FEE")
        offer = (await tradebill(sandbox, f"bill_date={day}")).json()
        raw = (await download(sandbox, offer["download_url"])).body.decode()
        row = cells(raw.split("\r\n")[1])
        expected = (Decimal(99999) * Decimal("0.0038")).quantize(Decimal(1))  # 379.9962 → 380
        assert row[22] == f"{expected / 100:.5f}" == "3.80000"
        assert row[23] == "0.38%"
    finally:
        await asyncio.sleep(0)
        await sandbox.client.close()
