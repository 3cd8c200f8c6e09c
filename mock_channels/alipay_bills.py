"""Trade bills (对账单) in the Alipay emulator: ``alipay.data.dataservice.bill.downloadurl.query``
and the file behind its ``bill_download_url``, made from the emulator's own trades.

The file is what Alipay serves: a zip named ``{PID}0156_{yyyymmdd}.csv.zip`` whose entries have
GBK names (no zip UTF-8 flag) and GBK, CRLF content: ``…_业务明细.csv`` (``#`` title lines, the
column header, one row per payment (交易) and refund (退款) finished that Beijing day, text cells
padded with a tab, ``#交易合计``/``#退款合计`` totals) and ``…_业务明细(汇总).csv``. Refund rows
carry negative amounts; the service fee (服务费, the app's ``fee_rate`` of each amount, rounded
half up to the fen) is negative on payments and given back, positive, on refunds. A day
without any row has no bill (``isp.bill_not_exist``). The link lives 30 seconds, as Alipay's.
Alipay makes day D's bill on D+1; the sandbox also serves today's bill as it stands, so tests
need not wait a day.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlencode

from mock_channels.alipay_crypto import random_lower_alnum
from mock_channels.alipay_errors import GatewayError
from mock_channels.alipay_models import BEIJING, BillQuery
from mock_channels.alipay_state import PAID, App, Trade, TradeStatus

LINK_LIFETIME_S = 30.0
DOWNLOAD_PATH = "/sandbox/alipay/downloadBillFile.resource"
_RULE = "-" * 41
DETAIL_HEADER = [
    "支付宝交易号",
    "商户订单号",
    "业务类型",
    "商品名称",
    "创建时间",
    "完成时间",
    "门店编号",
    "门店名称",
    "操作员",
    "终端号",
    "对方账户",
    "订单金额（元）",
    "商家实收（元）",
    "支付宝红包（元）",
    "集分宝（元）",
    "支付宝优惠（元）",
    "商家优惠（元）",
    "券核销金额（元）",
    "券名称",
    "商家红包消费金额（元）",
    "卡消费金额（元）",
    "退款批次号/请求号",
    "服务费（元）",
    "分润（元）",
    "备注",
]
SUMMARY_HEADER = [
    "门店编号",
    "门店名称",
    "交易订单总笔数",
    "退款订单总笔数",
    "订单金额（元）",
    "商家实收（元）",
    "支付宝优惠（元）",
    "商家优惠（元）",
    "卡消费金额（元）",
    "服务费（元）",
    "分润（元）",
    "实收净额（元）",
]


def bill_not_exist() -> GatewayError:
    return GatewayError("40004", "isp.bill_not_exist", "账单不存在")


def invalid_arguments(sub_msg: str) -> GatewayError:
    return GatewayError("40004", "invalid_arguments", sub_msg)


def signed_yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def fee_fen(amount_fen: int, rate: Decimal) -> int:
    return int((Decimal(amount_fen) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class BillRow:
    trade: Trade
    refund_no: str | None
    amount_fen: int  # negative for refunds
    finished_at: dt.datetime
    fee_fen: int  # negative when charged, positive when given back

    def cells(self) -> list[str]:
        trade = self.trade
        amount = signed_yuan(self.amount_fen)
        return [
            f"{trade.trade_no}\t",
            f"{trade.out_trade_no}\t",
            "退款\t" if self.refund_no else "交易\t",
            trade.subject,
            _local(trade.gmt_create or trade.created_at),
            _local(self.finished_at),
            "\t",
            "\t",
            "\t",
            "\t",
            f"{trade.buyer_logon_id or ''}\t",
            amount,
            amount,
            "0.00",
            "0.00",
            "0.00",
            "0.00",
            "0.00",
            "",
            "0.00\t",
            "0.00",
            f"{self.refund_no}\t" if self.refund_no else "\t",
            signed_yuan(self.fee_fen),
            "0.00",
            "",
        ]


def _local(moment: dt.datetime) -> str:
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _chinese(moment: dt.datetime) -> str:
    return moment.astimezone(BEIJING).strftime("%Y年%m月%d日 %H:%M:%S")


def bill_rows(trades: list[Trade], day: dt.date, rate: Decimal) -> list[BillRow]:
    """The day's payments and refunds of one app's trades, in the order they finished."""
    rows: list[BillRow] = []
    for trade in trades:
        paid = trade.status in PAID or (trade.status is TradeStatus.TRADE_CLOSED and trade.refunds)
        paid_at = trade.gmt_payment
        if paid and paid_at is not None and paid_at.astimezone(BEIJING).date() == day:
            amount = trade.paid_total_fen
            rows.append(BillRow(trade, None, amount, paid_at, -fee_fen(amount, rate)))
        for made in trade.refunds.values():
            if made.gmt_refund_pay.astimezone(BEIJING).date() == day:
                fee = fee_fen(made.amount_fen, rate)
                rows.append(
                    BillRow(trade, made.out_request_no, -made.amount_fen, made.gmt_refund_pay, fee)
                )
    return sorted(rows, key=lambda row: row.finished_at)


def _csv(lines: list[list[str] | str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for line in lines:
        if isinstance(line, str):
            out.write(line + "\r\n")
        else:
            writer.writerow(line)
    return out.getvalue().encode("gbk")


def _titles(kind: str, account: str, day: dt.date) -> list[list[str] | str]:
    start = dt.datetime.combine(day, dt.time(), BEIJING)
    return [
        f"#支付宝业务{kind}查询",
        f"#账号：[{account}]",
        f"#起始日期：[{_chinese(start)}]   终止日期：[{_chinese(start + dt.timedelta(days=1))}]",
        f"#{_RULE}业务{kind}列表{_RULE}",
    ]


def detail_file(rows: list[BillRow], account: str, day: dt.date, now: dt.datetime) -> bytes:
    payments = [row for row in rows if row.refund_no is None]
    refunds = [row for row in rows if row.refund_no is not None]
    paid = sum(row.amount_fen for row in payments)
    refunded = sum(row.amount_fen for row in refunds)
    return _csv(
        [
            *_titles("明细", account, day),
            DETAIL_HEADER,
            *(row.cells() for row in rows),
            f"#{_RULE}业务明细列表结束{_RULE[:-6]}",
            f"#交易合计：{len(payments)}笔，商家实收共{signed_yuan(paid)}元，商家优惠共0.00元",
            f"#退款合计：{len(refunds)}笔，商家实收退款共{signed_yuan(refunded)}元，"
            "商家优惠退款共0.00元",
            f"#导出时间：[{_chinese(now)}]",
        ]
    )


def summary_file(rows: list[BillRow], account: str, day: dt.date, now: dt.datetime) -> bytes:
    count_paid = sum(1 for row in rows if row.refund_no is None)
    amount = sum(row.amount_fen for row in rows)
    fee = sum(row.fee_fen for row in rows)
    totals = [
        str(count_paid),
        str(len(rows) - count_paid),
        signed_yuan(amount),
        signed_yuan(amount),
        "0.00",
        "0.00",
        "0.00",
        signed_yuan(fee),
        "0.00",
        signed_yuan(amount + fee),
    ]
    return _csv(
        [
            *_titles("汇总", account, day),
            SUMMARY_HEADER,
            ["", "", *totals],
            ["合计", "", *totals],
            f"#{_RULE}业务汇总列表结束{_RULE[:-6]}",
            f"#导出时间：[{_chinese(now)}]",
        ]
    )


class _GbkName(zipfile.ZipInfo):
    """An entry whose name is stored in GBK without the UTF-8 flag, as Alipay's zips are
    (``zipfile`` itself writes UTF-8 names, flagged)."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:
        return self.filename.encode("gbk"), self.flag_bits & ~0x800


def bill_zip(app: App, trades: list[Trade], day: dt.date, now: dt.datetime) -> tuple[str, bytes]:
    """``(file name, zip bytes)`` of one app's trade bill for ``day``; ``isp.bill_not_exist``
    when the day has no payment and no refund."""
    rows = bill_rows(trades, day, app.fee_rate)
    if not rows:
        raise bill_not_exist()
    account = app.seller_id + "0156"
    stem = f"{account}_{day:%Y%m%d}"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in (
            (f"{stem}_业务明细.csv", detail_file(rows, account, day, now)),
            (f"{stem}_业务明细(汇总).csv", summary_file(rows, account, day, now)),
        ):
            info = _GbkName(name, date_time=now.astimezone(BEIJING).timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return f"{stem}.csv.zip", out.getvalue()


@dataclass(frozen=True)
class BillFile:
    name: str
    data: bytes
    expires_at: float


class BillDesk:
    """Bill files behind their short-lived download links."""

    def __init__(self) -> None:
        self._files: dict[str, BillFile] = {}

    def query(
        self, app: App, trades: list[Trade], request: BillQuery, now: dt.datetime, origin: str
    ) -> dict[str, Any]:
        if request.bill_type != "trade":
            raise invalid_arguments("bill_type 仅支持 trade (sandbox)")
        try:
            day = dt.date.fromisoformat(request.bill_date)
        except ValueError:
            raise invalid_arguments("bill_date 格式为 yyyy-MM-dd") from None
        if day > now.astimezone(BEIJING).date():
            raise invalid_arguments("bill_date 不能晚于今天")
        name, data = bill_zip(app, trades, day, now)
        file_id = random_lower_alnum(24)
        self._files[file_id] = BillFile(name, data, now.timestamp() + LINK_LIFETIME_S)
        query = urlencode(
            {
                "bizType": "trade",
                "userId": app.seller_id,
                "fileType": "csv.zip",
                "bizDates": f"{day:%Y%m%d}",
                "downloadFileName": name,
                "fileId": file_id,
            }
        )
        return {
            "code": "10000",
            "msg": "Success",
            "bill_download_url": f"{origin}{DOWNLOAD_PATH}?{query}",
        }

    def take(self, file_id: str, now: dt.datetime) -> BillFile | None:
        """The file while its link lives (any number of downloads until then)."""
        for key in [k for k, f in self._files.items() if f.expires_at <= now.timestamp()]:
            del self._files[key]
        return self._files.get(file_id)
