"""Alipay trade bills (对账单): the ``alipay.data.dataservice.bill.downloadurl.query`` messages and
the downloaded file read into ``StatementLine``s.

The file is a zip (names in GBK, without the zip UTF-8 flag) holding GBK-encoded CSV files: the
detail ``…_业务明细.csv`` (``#`` comment lines around a header row and one row per payment or
refund, text cells padded with a tab so spreadsheets keep long numbers, ``#交易合计``/``#退款合计``
totals at the end) and the summary ``…_业务明细(汇总).csv``. Bills are not signed: their totals
are checked against their rows instead. Amounts are yuan strings read exactly (refund rows are
negative); service fees (服务费) are negative on payments and positive (given back) on refunds.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from pydantic import StrictStr

from channels.alipay_wire import CHINA_TZ, CURRENCY, TIME_FORMAT, ResponseStatus
from channels.base import StatementLine, StatementLineKind
from channels.errors import ChannelFatal, ChannelUnknownOutcome

BILL_QUERY = "alipay.data.dataservice.bill.downloadurl.query"
BILL_TYPE = "trade"
# The documented answer for a day without a bill (no trades, or not generated yet).
BILL_NOT_EXIST = "isp.bill_not_exist"
DETAIL_TITLE = "#支付宝业务明细查询"
SUMMARY_TITLE = "#支付宝业务汇总查询"
KINDS: Mapping[str, StatementLineKind] = {
    "交易": StatementLineKind.PAYMENT,
    "退款": StatementLineKind.REFUND,
}
MAX_ENTRIES = 16
MAX_FILE_BYTES = 512 * 1024 * 1024
_ZIP_UTF8_FLAG = 0x800
_SIGNED_YUAN = re.compile(r"-?(0|[1-9][0-9]{0,15})(\.[0-9]{1,2})?")
_TRADE_TOTAL = re.compile(r"#交易合计[：:]\s*(\d+)\s*笔")
_REFUND_TOTAL = re.compile(r"#退款合计[：:]\s*(\d+)\s*笔")
_RECEIVED_TOTAL = re.compile(r"商家实收(?:退款)?共\s*(-?[0-9.]+)\s*元")

# Column titles as the file writes them (full-width brackets; half-width read as well).
TRADE_NO = "支付宝交易号"
OUT_TRADE_NO = "商户订单号"
BUSINESS_TYPE = "业务类型"
CREATED = "创建时间"
FINISHED = "完成时间"
ORDER_AMOUNT = "订单金额（元）"
RECEIVED = "商家实收（元）"
REFUND_NO = "退款批次号/请求号"
SERVICE_FEE = "服务费（元）"
REQUIRED = (TRADE_NO, OUT_TRADE_NO, BUSINESS_TYPE, FINISHED, ORDER_AMOUNT, SERVICE_FEE)


def bill_biz_content(day: date) -> dict[str, str]:
    """``biz_content`` of the download-URL query for one day's trade bill."""
    return {"bill_type": BILL_TYPE, "bill_date": day.isoformat()}


class BillUrlResponse(ResponseStatus):
    bill_download_url: StrictStr | None = None


class BillError(ChannelUnknownOutcome):
    """The downloaded bill is not one payfront can read or its totals do not add up: fetch it
    again (a fresh download URL) before trusting anything in it."""


def signed_fen(text: str) -> int:
    """A bill's yuan cell (``-0.01``, ``88.8``, ``0``) as signed integer fen, exactly."""
    cell = text.strip()
    if not _SIGNED_YUAN.fullmatch(cell):
        raise ValueError(f"not a yuan amount: {text!r}")
    try:
        return int(Decimal(cell).scaleb(2))
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only numbers
        raise ValueError(f"not a yuan amount: {text!r}") from exc


def _entry_name(info: zipfile.ZipInfo) -> str:
    # Alipay writes GBK names without the UTF-8 flag; zipfile then decoded them as cp437.
    if info.flag_bits & _ZIP_UTF8_FLAG:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("gbk")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def read_archive(data: bytes) -> dict[str, str]:
    """The CSV files of a bill zip, by name, decoded from GBK (GB18030, its superset)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise BillError("BILL_NOT_A_ZIP", f"the bill download is not a zip: {exc}") from exc
    with archive:
        entries = [info for info in archive.infolist() if not info.is_dir()]
        if len(entries) > MAX_ENTRIES or sum(e.file_size for e in entries) > MAX_FILE_BYTES:
            raise BillError("BILL_TOO_LARGE", "the bill zip holds more than a bill")
        files: dict[str, str] = {}
        for info in entries:
            try:
                files[_entry_name(info)] = archive.read(info).decode("gb18030")
            except (zipfile.BadZipFile, UnicodeDecodeError, ValueError) as exc:
                raise BillError("BILL_UNREADABLE", f"{_entry_name(info)}: {exc}") from exc
    return files


def _title(text: str) -> str:
    return text.lstrip("\ufeff").split("\n", 1)[0].strip().strip(",")


def _rows(text: str) -> tuple[list[list[str]], list[str]]:
    """The CSV rows (header first) and the ``#`` comment lines of one bill file."""
    lines = text.lstrip("\ufeff").splitlines()
    comments = [line.strip() for line in lines if line.startswith("#")]
    data = [line for line in lines if line.strip() and not line.startswith("#")]
    rows = [[cell.strip() for cell in row] for row in csv.reader(data)]
    return rows, comments


def _column(header: Sequence[str], title: str) -> int | None:
    wanted = {title, title.replace("（", "(").replace("）", ")")}
    return next((index for index, name in enumerate(header) if name in wanted), None)


def parse_detail(text: str) -> tuple[StatementLine, ...]:
    """The 业务明细 file's rows as statement lines, its ``#…合计`` totals checked."""
    rows, comments = _rows(text)
    if not rows:
        raise BillError("BILL_UNREADABLE", "the detail file has no header row")
    header, body = rows[0], rows[1:]
    index = {title: _column(header, title) for title in (*REQUIRED, CREATED, RECEIVED, REFUND_NO)}
    missing = [title for title in REQUIRED if index[title] is None]
    if missing:
        raise BillError("BILL_UNREADABLE", f"the detail file has no column {missing}")

    def cell(row: Sequence[str], title: str) -> str:
        position = index[title]
        return row[position] if position is not None and position < len(row) else ""

    lines: list[StatementLine] = []
    received = 0
    for number, row in enumerate(body, start=2):
        business_type = cell(row, BUSINESS_TYPE)
        kind = KINDS.get(business_type)
        if kind is None:
            raise ChannelFatal(
                "UNEXPECTED_BILL_ROW", f"row {number}: 业务类型 {business_type!r} is not 交易/退款"
            )
        try:
            amount = signed_fen(cell(row, ORDER_AMOUNT))
            fee = signed_fen(cell(row, SERVICE_FEE) or "0")
            received += signed_fen(cell(row, RECEIVED) or "0")
            occurred_at = datetime.strptime(
                cell(row, FINISHED) or cell(row, CREATED), TIME_FORMAT
            ).replace(tzinfo=CHINA_TZ)
        except ValueError as exc:
            raise BillError("BILL_UNREADABLE", f"row {number}: {exc}") from exc
        refund_no = cell(row, REFUND_NO) if kind is StatementLineKind.REFUND else ""
        lines.append(
            StatementLine(
                kind=kind,
                out_trade_no=cell(row, OUT_TRADE_NO),
                amount_minor=abs(amount),
                currency=CURRENCY,
                fee_minor=abs(fee),
                occurred_at=occurred_at,
                channel_state=business_type,
                channel_trade_no=cell(row, TRADE_NO) or None,
                out_refund_no=refund_no or None,
            )
        )
    _check_totals(lines, comments, received if index[RECEIVED] is not None else None)
    return tuple(lines)


def _check_totals(
    lines: Sequence[StatementLine], comments: Sequence[str], received: int | None
) -> None:
    counts = {
        _TRADE_TOTAL: sum(1 for line in lines if line.kind is StatementLineKind.PAYMENT),
        _REFUND_TOTAL: sum(1 for line in lines if line.kind is StatementLineKind.REFUND),
    }
    stated_received = 0
    saw_received = False
    for comment in comments:
        for pattern, count in counts.items():
            found = pattern.match(comment)
            if found and int(found.group(1)) != count:
                raise BillError(
                    "BILL_INCONSISTENT", f"{comment!r} but the file has {count} such rows"
                )
            if found and (amount := _RECEIVED_TOTAL.search(comment)):
                try:
                    stated_received += signed_fen(amount.group(1))
                    saw_received = True
                except ValueError:
                    pass
    if received is not None and saw_received and stated_received != received:
        raise BillError(
            "BILL_INCONSISTENT",
            f"the totals state {stated_received} fen received, the rows add up to {received}",
        )


def check_summary(text: str, lines: Sequence[StatementLine]) -> None:
    """Compare the 汇总 file's 合计 row with the detail rows (when it has the columns)."""
    rows, _ = _rows(text)
    if not rows:
        return
    header = rows[0]
    total_row = next((row for row in rows[1:] if row and row[0] == "合计"), None)
    payments = _column(header, "交易订单总笔数")
    refunds = _column(header, "退款订单总笔数")
    if total_row is None or payments is None or refunds is None:
        return
    expected = (
        sum(1 for line in lines if line.kind is StatementLineKind.PAYMENT),
        sum(1 for line in lines if line.kind is StatementLineKind.REFUND),
    )
    try:
        stated = (int(total_row[payments]), int(total_row[refunds]))
    except (ValueError, IndexError):
        return
    if stated != expected:
        raise BillError(
            "BILL_INCONSISTENT", f"the summary counts {stated}, the detail rows {expected}"
        )


def parse_archive(data: bytes) -> tuple[StatementLine, ...]:
    """A downloaded trade bill (zip) as statement lines."""
    files = read_archive(data)
    details = [text for text in files.values() if _title(text) == DETAIL_TITLE]
    if len(details) != 1:
        names = ", ".join(sorted(files)) or "nothing"
        raise BillError("BILL_UNREADABLE", f"no single 业务明细 file in the zip ({names})")
    lines = parse_detail(details[0])
    for text in files.values():
        if _title(text) == SUMMARY_TITLE:
            check_summary(text, lines)
    return lines
