"""Tests for the Alipay adapter's trade bills (channels/alipay_bills.py and the statement steps
of channels/alipay.py): the download-URL request, the two steps, and the bill zip (GBK names
and content, ``#`` lines, tab-padded cells, negative refunds, fees) read exactly.

The bill here is written by hand after published real bills, not by the sandbox."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.hashes import SHA256

from channels.alipay import Alipay, AlipayConfig
from channels.alipay_bills import BillError, parse_archive, signed_fen
from channels.alipay_wire import CHINA_TZ
from channels.base import HttpResponse, StatementLine, StatementLineKind
from channels.errors import ChannelFatal, ChannelRetryable

NOW = datetime(2026, 11, 25, 4, 0, 0, tzinfo=UTC)  # 12:00 in Beijing
APP_ID = "2021001144680325"
KEY = "alipay_data_dataservice_bill_downloadurl_query_response"

HEADER = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,"
    "对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,"
    "商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,"
    "退款批次号/请求号,服务费（元）,分润（元）,备注"
)
ROWS = [
    "2026112422001458860515315453\t,pay_A\t,交易\t,下单测试,2026-11-24 10:55:16,"
    "2026-11-24 10:55:23,\t,\t,\t,\t,*津水(602***@qq.com)\t,100.00,100.00,0.00,0.00,0.00,"
    "0.00,0.00,,0.00\t,0.00,\t,-0.60,0.00,",
    "2026112422001458860515315453\t,pay_A\t,退款\t,下单测试,2026-11-24 10:55:16,"
    "2026-11-24 11:26:55,\t,\t,\t,\t,*津水(602***@qq.com)\t,-30.00,-30.00,0.00,0.00,0.00,"
    "0.00,0.00,,0.00\t,0.00,rf_A_1\t,0.18,0.00,",
    '2026112422001465870515233238\t,pay_B\t,交易\t,"千丁,订单",2026-11-24 16:58:56,'
    "2026-11-24 16:58:58,\t,\t,\t,\t,*庚辰(182****01)\t,0.01,0.01,0.00,0.00,0.00,0.00,0.00,"
    ",0.00\t,0.00,\t,0.00,0.00,",
]
RULE = "-" * 41


def detail(rows: list[str] = ROWS, trades: int = 2, refunds: int = 1) -> str:
    return "\r\n".join(
        [
            "#支付宝业务明细查询",
            "#账号：[20880211096256330156]",
            "#起始日期：[2026年11月24日 00:00:00]   终止日期：[2026年11月25日 00:00:00]",
            f"#{RULE}业务明细列表{RULE}",
            HEADER,
            *rows,
            f"#{RULE}业务明细列表结束{'-' * 36}",
            f"#交易合计：{trades}笔，商家实收共100.01元，商家优惠共0.00元",
            f"#退款合计：{refunds}笔，商家实收退款共-30.00元，商家优惠退款共0.00元",
            "#导出时间：[2026年11月25日 05:46:49]",
            "",
        ]
    )


def summary(trades: int = 2, refunds: int = 1) -> str:
    return "\r\n".join(
        [
            "#支付宝业务汇总查询",
            "#账号：[20880211096256330156]",
            f"#{RULE}业务汇总列表{RULE}",
            "门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,"
            "支付宝优惠（元）,商家优惠（元）,卡消费金额（元）,服务费（元）,分润（元）,实收净额（元）",
            f"合计,,{trades},{refunds},70.01,70.01,0.00,0.00,0.00,-0.42,0.00,69.59",
            "",
        ]
    )


class GbkName(zipfile.ZipInfo):
    """Stores the entry name in GBK without the UTF-8 flag, as Alipay's zips do."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:
        return self.filename.encode("gbk"), self.flag_bits & ~0x800


def bill_zip(files: dict[str, str], *, gbk_names: bool = True) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            info = GbkName(name) if gbk_names else zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text.encode("gbk"))
    return out.getvalue()


STEM = "20880211096256330156_20261124"
EXPECTED = (
    StatementLine(
        kind=StatementLineKind.PAYMENT,
        out_trade_no="pay_A",
        amount_minor=10000,
        currency="CNY",
        fee_minor=60,
        occurred_at=datetime(2026, 11, 24, 10, 55, 23, tzinfo=CHINA_TZ),
        channel_state="交易",
        channel_trade_no="2026112422001458860515315453",
    ),
    StatementLine(
        kind=StatementLineKind.REFUND,
        out_trade_no="pay_A",
        amount_minor=3000,
        currency="CNY",
        fee_minor=18,
        occurred_at=datetime(2026, 11, 24, 11, 26, 55, tzinfo=CHINA_TZ),
        channel_state="退款",
        channel_trade_no="2026112422001458860515315453",
        out_refund_no="rf_A_1",
    ),
    StatementLine(
        kind=StatementLineKind.PAYMENT,
        out_trade_no="pay_B",
        amount_minor=1,
        currency="CNY",
        fee_minor=0,
        occurred_at=datetime(2026, 11, 24, 16, 58, 58, tzinfo=CHINA_TZ),
        channel_state="交易",
        channel_trade_no="2026112422001465870515233238",
    ),
)


@pytest.mark.parametrize("gbk_names", [True, False])
def test_bill_zip_is_read_exactly(gbk_names: bool) -> None:
    data = bill_zip(
        {f"{STEM}_业务明细.csv": detail(), f"{STEM}_业务明细(汇总).csv": summary()},
        gbk_names=gbk_names,
    )
    assert parse_archive(data) == EXPECTED


def test_half_width_headers_and_lf_lines_are_read_too() -> None:
    text = detail().replace("（", "(").replace("）", ")").replace("\r\n", "\n")
    assert parse_archive(bill_zip({f"{STEM}_业务明细.csv": text})) == EXPECTED


@pytest.mark.parametrize(
    "files",
    [
        {f"{STEM}_业务明细.csv": detail(trades=3)},
        {f"{STEM}_业务明细.csv": detail(refunds=0)},
        {f"{STEM}_业务明细.csv": detail(rows=ROWS[:2])},  # a row lost: totals disagree
        {f"{STEM}_业务明细.csv": detail(), f"{STEM}_业务明细(汇总).csv": summary(trades=5)},
        {f"{STEM}_业务明细(汇总).csv": summary()},  # no detail file
        {f"{STEM}_业务明细.csv": detail(rows=[ROWS[0].replace("100.00,100.00", "1.001,1.001")])},
        {f"{STEM}_业务明细.csv": detail().replace(HEADER, HEADER.replace("服务费", "手续费"))},
    ],
)
def test_unreadable_or_inconsistent_bills_are_refused(files: dict[str, str]) -> None:
    with pytest.raises(BillError):
        parse_archive(bill_zip(files))


def test_not_a_zip_and_unknown_rows() -> None:
    with pytest.raises(BillError):
        parse_archive(b"<html>link expired</html>")
    odd = detail(rows=[ROWS[0].replace("交易\t", "冻结\t")], trades=0, refunds=0)
    with pytest.raises(ChannelFatal):
        parse_archive(bill_zip({f"{STEM}_业务明细.csv": odd}))


def test_signed_fen_is_exact() -> None:
    assert [signed_fen(t) for t in ["0", "-0.01", "88.8", " 1.00\t", "-30.00"]] == [
        0,
        -1,
        8880,
        100,
        -3000,
    ]
    for bad in ["1.001", "1e2", "--1", "", "１.00"]:
        with pytest.raises(ValueError):
            signed_fen(bad)


# -- the statement steps --------------------------------------------------------------------


@pytest.fixture(scope="module")
def alipay_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def channel(alipay_key: rsa.RSAPrivateKey) -> Alipay:
    app_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return Alipay(
        AlipayConfig(
            app_id=APP_ID, app_private_key=app_key, alipay_public_key=alipay_key.public_key()
        )
    )


def signed(key: rsa.RSAPrivateKey, payload: dict[str, Any]) -> HttpResponse:
    member = orjson.dumps(payload)
    sign = base64.b64encode(key.sign(member, PKCS1v15(), SHA256()))
    return HttpResponse(200, {}, b'{"%s":%s,"sign":"%s"}' % (KEY.encode(), member, sign))


def test_statement_request(channel: Alipay) -> None:
    request = channel.build_statement(date(2026, 11, 24), now=NOW)
    params = dict(parse_qsl(urlsplit(request.url).query)) | dict(parse_qsl(request.body.decode()))
    assert params["method"] == "alipay.data.dataservice.bill.downloadurl.query"
    assert json.loads(params["biz_content"]) == {"bill_type": "trade", "bill_date": "2026-11-24"}
    assert params["sign"]


def test_statement_steps(channel: Alipay, alipay_key: rsa.RSAPrivateKey) -> None:
    url = "https://dwbillcenter.alipay.com/downloadBillFile.resource?bizType=trade&fileId=x"
    first = channel.parse_statement(
        signed(alipay_key, {"code": "10000", "msg": "Success", "bill_download_url": url}),
        cursor={},
        now=NOW,
    )
    assert first.lines == () and first.next_request is not None
    assert (first.next_request.method, first.next_request.url) == ("GET", url)
    data = bill_zip({f"{STEM}_业务明细.csv": detail()})
    final = channel.parse_statement(HttpResponse(200, {}, data), cursor=first.cursor, now=NOW)
    assert final.lines == EXPECTED and final.next_request is None
    with pytest.raises(ChannelRetryable):  # an expired link: start again
        channel.parse_statement(HttpResponse(404, {}, b"expired"), cursor=first.cursor, now=NOW)


def test_day_without_a_bill(channel: Alipay, alipay_key: rsa.RSAPrivateKey) -> None:
    no_bill = signed(
        alipay_key,
        {"code": "40004", "msg": "Business Failed", "sub_code": "isp.bill_not_exist"},
    )
    empty = channel.parse_statement(no_bill, cursor={}, now=NOW)  # 12:00 Beijing
    assert (empty.lines, empty.next_request) == ((), None)
    early = datetime(2026, 11, 25, 8, 30, tzinfo=CHINA_TZ)
    with pytest.raises(ChannelRetryable) as caught:  # may be merely not generated yet
        channel.parse_statement(no_bill, cursor={}, now=early)
    assert caught.value.code == "BILL_NOT_READY"
    other = signed(
        alipay_key, {"code": "40004", "msg": "Business Failed", "sub_code": "invalid_arguments"}
    )
    with pytest.raises(ChannelFatal):
        channel.parse_statement(other, cursor={}, now=NOW)
