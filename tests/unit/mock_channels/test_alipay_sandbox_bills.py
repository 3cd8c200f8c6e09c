"""The Alipay emulator's trade bills: the signed download-URL answer, the zip behind it (GBK
names and content, detail and summary files, amounts and fees from the sandbox's own payments
and refunds), a day without a bill, and the link's 30-second life.

The zip is read here with ``zipfile`` and ``csv`` directly, not with payfront's adapter."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from mock_channels.alipay_sandbox import ALIPAY_SANDBOX
from tests.unit.mock_channels.test_alipay_sandbox import (
    APP_ID,
    BEIJING,
    Box,
    alipay_state,
    app_key,
    public_pem,
    start,
    state_dir,
)

__all__ = ["alipay_state", "app_key", "state_dir"]  # fixtures used here

BILL = "alipay.data.dataservice.bill.downloadurl.query"


@pytest.fixture
async def box(state_dir: Path, app_key: rsa.RSAPrivateKey) -> AsyncIterator[Box]:
    box = await start(state_dir, app_key)
    # Registering again sets the app's fee rate (1%); the seller and keys stay.
    answer = await box.client.post(
        "/sandbox/alipay/apps",
        json={"app_id": APP_ID, "app_public_key_pem": public_pem(app_key), "fee_rate": "0.01"},
    )
    assert (await answer.json())["fee_rate"] == "0.01"
    yield box
    await box.client.close()


async def download(box: Box, url: str) -> tuple[int, bytes, str]:
    parts = urlsplit(url)
    async with box.client.get(f"{parts.path}?{parts.query}") as response:
        return response.status, await response.read(), response.headers.get("Content-Type", "")


def names(archive: zipfile.ZipFile) -> list[str]:
    # Alipay's names are GBK without the UTF-8 flag: zipfile reads them as cp437.
    assert all(not info.flag_bits & 0x800 for info in archive.infolist())
    return [info.filename.encode("cp437").decode("gbk") for info in archive.infolist()]


async def test_bill_of_the_day(box: Box) -> None:
    for number, amount in [("B_ONE", "100.00"), ("B_TWO", "0.50")]:
        await box.precreate(number, total_amount=amount)
        await box.pay(number)
    refunded = await box.call(
        "alipay.trade.refund",
        {"out_trade_no": "B_ONE", "refund_amount": "30.00", "out_request_no": "B_ONE_R1"},
    )
    assert refunded.content["fund_change"] == "Y"
    today = dt.datetime.now(BEIJING).date()
    located = await box.call(BILL, {"bill_type": "trade", "bill_date": today.isoformat()})
    assert located.content["code"] == "10000" and box.verified(located)
    url = located.content["bill_download_url"]
    query = parse_qs(urlsplit(url).query)
    assert query["bizType"] == ["trade"] and query["bizDates"] == [f"{today:%Y%m%d}"]

    status, data, content_type = await download(box, url)
    assert (status, content_type) == (200, "application/zip")
    archive = zipfile.ZipFile(io.BytesIO(data))
    account = box.registration["seller_id"] + "0156"
    stem = f"{account}_{today:%Y%m%d}"
    assert names(archive) == [f"{stem}_业务明细.csv", f"{stem}_业务明细(汇总).csv"]
    raw_detail, raw_summary = (archive.read(info) for info in archive.infolist())
    detail = raw_detail.decode("gbk")
    assert "\r\n" in detail
    lines = detail.splitlines()
    assert lines[0] == "#支付宝业务明细查询" and lines[1] == f"#账号：[{account}]"
    rows = list(csv.reader(line for line in lines if not line.startswith("#")))
    header, body = rows[0], rows[1:]
    assert header[0] == "支付宝交易号" and "退款批次号/请求号" in header and len(header) == 25
    column = {title: header.index(title) for title in header}
    got = [
        (
            row[column["商户订单号"]].strip(),
            row[column["业务类型"]].strip(),
            row[column["订单金额（元）"]],
            row[column["服务费（元）"]],
            row[column["退款批次号/请求号"]].strip(),
        )
        for row in body
    ]
    assert got == [
        ("B_ONE", "交易", "100.00", "-1.00", ""),
        ("B_TWO", "交易", "0.50", "-0.01", ""),  # 0.5 fen rounds half up
        ("B_ONE", "退款", "-30.00", "0.30", "B_ONE_R1"),
    ]
    assert body[0][column["支付宝交易号"]].endswith("\t")  # tab-padded text cells
    assert "#交易合计：2笔，商家实收共100.50元，商家优惠共0.00元" in lines
    assert "#退款合计：1笔，商家实收退款共-30.00元，商家优惠退款共0.00元" in lines

    summary = raw_summary.decode("gbk").splitlines()
    assert summary[0] == "#支付宝业务汇总查询"
    total = next(row for row in csv.reader(summary) if row and row[0] == "合计")
    assert total[2:4] == ["2", "1"]

    # The link lives 30 seconds.
    file_id = query["fileId"][0]
    bills = box.client.app[ALIPAY_SANDBOX].bills
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=31)
    assert bills.take(file_id, later) is None
    assert (await download(box, url))[0] == 404


async def test_days_without_a_bill_and_bad_arguments(box: Box) -> None:
    today = dt.datetime.now(BEIJING).date()
    for biz, sub_code in [
        ({"bill_type": "trade", "bill_date": today.isoformat()}, "isp.bill_not_exist"),
        (
            {"bill_type": "trade", "bill_date": (today - dt.timedelta(days=3)).isoformat()},
            "isp.bill_not_exist",
        ),
        (
            {"bill_type": "trade", "bill_date": (today + dt.timedelta(days=1)).isoformat()},
            "invalid_arguments",
        ),
        ({"bill_type": "trade", "bill_date": "2026/11/24"}, "invalid_arguments"),
        ({"bill_type": "signcustomer", "bill_date": today.isoformat()}, "invalid_arguments"),
    ]:
        answer = await box.call(BILL, biz)
        assert (answer.content["code"], answer.content["sub_code"]) == ("40004", sub_code)
        assert box.verified(answer)
    assert (await download(box, "/sandbox/alipay/downloadBillFile.resource?fileId=x"))[0] == 404
