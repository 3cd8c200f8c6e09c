"""Trade bills (交易账单) in the WeChat Pay emulator: ``GET /v3/bill/tradebill`` and the file behind
its ``download_url``, made from the sandbox's own orders and refunds of one Beijing day.

The file is WeChat's format: UTF-8, CRLF lines, a header row of the 27 Chinese column names, one
row per payment (交易状态 SUCCESS, at its success time) or refund (REFUND, at its creation time)
with every field prefixed by a backtick, then the summary header and its row. Fees are the
merchant's rate of each amount, rounded half-up to the fen per order, shown with 5 decimals;
a refund gives its share back as a negative fee. ``hash_value`` is the SHA1 of the file before
gzip (``tar_type=GZIP``). The bill is served for any day up to today (WeChat makes it at 9:00
the next day): a sandbox has no yesterday to wait for.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from mock_channels.statement_edits import StatementEdit
from mock_channels.wechatpay_errors import ApiError
from mock_channels.wechatpay_refunds import Refund, RefundStatus
from mock_channels.wechatpay_state import BEIJING, PAID_STATES, Merchant, Order

HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,"
    "付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,"
    "退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注"
)
SUMMARY_HEADER = (
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
)
BILL_TYPES = frozenset({"ALL", "SUCCESS", "REFUND"})
# "该地址5min内有效" (older pages say 30 s); real seconds, not time-scaled.
DOWNLOAD_VALID_S = 300.0
_FEN = Decimal("0.01")


def yuan(fen: int) -> str:
    return f"{Decimal(fen) / 100:.2f}"


def fee_fen(amount: int, rate: Decimal) -> int:
    """The fee of one order: ``rate`` of it, rounded half-up to the fen (WeChat's rule)."""
    return int((Decimal(amount) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def fee_text(fen: int) -> str:
    return f"{(Decimal(fen) / 100).quantize(_FEN):.5f}"


def _row(cells: Iterable[str]) -> str:
    return ",".join("`" + cell for cell in cells)


@dataclass(frozen=True)
class _Totals:
    count: int = 0
    settled: int = 0
    refunded: int = 0
    fees: int = 0
    ordered: int = 0
    applied: int = 0


_NO_EDIT = StatementEdit()


def _payment_row(
    order: Order, rate: Decimal, edit: StatementEdit = _NO_EDIT
) -> tuple[list[str], _Totals]:
    assert order.success_time is not None
    paid = order.total if order.paid_total is None else order.paid_total
    total = order.total
    if edit.amount is not None:  # a sandbox edit: the bill shows another amount
        paid = total = edit.amount
    fee = fee_fen(paid, rate) if edit.fee is None else edit.fee
    cells = [
        order.success_time.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
        order.appid,
        order.mchid,
        "0",
        "",
        order.transaction_id or "",
        order.out_trade_no,
        order.payer_openid or "",
        order.trade_type,
        "SUCCESS",
        order.bank_type or "OTHERS",
        order.currency,
        yuan(paid),
        "0.00",
        "0",
        "0",
        "0.00",
        "0.00",
        "",
        "",
        str(order.params.get("description", "")),
        order.attach or "",
        fee_text(fee),
        f"{rate * 100:.2f}%",
        yuan(total),
        "0.00",
        "",
    ]
    return cells, _Totals(1, paid, 0, fee, total, 0)


def _refund_row(
    refund: Refund, rate: Decimal, edit: StatementEdit = _NO_EDIT
) -> tuple[list[str], _Totals]:
    order = refund.order
    amount = refund.refund if edit.amount is None else edit.amount
    fee = -(fee_fen(amount, rate) if edit.fee is None else edit.fee)
    cells = [
        refund.created_at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
        order.appid,
        order.mchid,
        "0",
        "",
        order.transaction_id or "",
        order.out_trade_no,
        order.payer_openid or "",
        order.trade_type,
        "REFUND",
        order.bank_type or "OTHERS",
        order.currency,
        "0.00",
        "0.00",
        refund.refund_id,
        refund.out_refund_no,
        yuan(amount),
        "0.00",
        "ORIGINAL",
        edit.status or refund.status.value,
        str(order.params.get("description", "")),
        order.attach or "",
        fee_text(fee),
        f"{rate * 100:.2f}%",
        "0.00",
        yuan(amount),
        "",
    ]
    return cells, _Totals(1, 0, amount, fee, 0, amount)


def render_tradebill(
    merchant: Merchant,
    orders: Sequence[Order],
    refunds: Sequence[Refund],
    day: dt.date,
    bill_type: str,
    edits: Mapping[str, StatementEdit] | None = None,
) -> bytes | None:
    """The bill file of ``day`` for ``merchant``; None when it would have no row. ``edits``
    (sandbox-only, by out_trade_no / out_refund_no) leave lines out or change them."""
    edits = edits or {}

    def on_day(moment: dt.datetime | None) -> bool:
        return moment is not None and moment.astimezone(BEIJING).date() == day

    rows: list[tuple[dt.datetime, list[str], _Totals]] = []
    if bill_type in ("ALL", "SUCCESS"):
        for order in orders:
            edit = edits.get(order.out_trade_no, _NO_EDIT)
            if order.trade_state in PAID_STATES and on_day(order.success_time) and not edit.omit:
                assert order.success_time is not None
                rows.append((order.success_time, *_payment_row(order, merchant.fee_rate, edit)))
    if bill_type in ("ALL", "REFUND"):
        for refund in refunds:
            edit = edits.get(refund.out_refund_no, _NO_EDIT)
            billed = refund.status is not RefundStatus.CLOSED and on_day(refund.created_at)
            if billed and not edit.omit:
                rows.append((refund.created_at, *_refund_row(refund, merchant.fee_rate, edit)))
    if not rows:
        return None
    rows.sort(key=lambda row: row[0])
    totals = [row[2] for row in rows]

    def total(name: str) -> int:
        return sum(getattr(part, name) for part in totals)

    summary = [
        str(len(rows)),
        yuan(total("settled")),
        yuan(total("refunded")),
        "0.00",
        fee_text(total("fees")),
        yuan(total("ordered")),
        yuan(total("applied")),
    ]
    lines = [HEADER, *(_row(cells) for _, cells, _ in rows), SUMMARY_HEADER, _row(summary)]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


@dataclass(frozen=True)
class Download:
    mchid: str
    content: bytes
    expires_at: float


@dataclass
class BillDesk:
    """Bills handed out for download: one token per tradebill answer, valid a few minutes."""

    downloads: dict[str, Download] = field(default_factory=dict)

    def offer(self, mchid: str, raw: bytes, *, gzipped: bool, base_url: str) -> dict[str, str]:
        """The tradebill answer for ``raw``, its file kept behind a fresh download token."""
        now = time.monotonic()
        self.downloads = {t: d for t, d in self.downloads.items() if d.expires_at > now}
        token = secrets.token_urlsafe(32)
        content = gzip.compress(raw, mtime=0) if gzipped else raw
        self.downloads[token] = Download(mchid, content, now + DOWNLOAD_VALID_S)
        return {
            "hash_type": "SHA1",
            "hash_value": hashlib.sha1(raw, usedforsecurity=False).hexdigest(),
            "download_url": f"{base_url}/v3/billdownload/file?token={token}",
        }

    def take(self, mchid: str, token: str | None) -> bytes:
        download = self.downloads.get(token or "")
        if download is None or download.mchid != mchid or download.expires_at <= time.monotonic():
            raise ApiError(400, "INVALID_REQUEST", "下载链接无效或已过期，请重新申请账单")
        return download.content


def parse_bill_query(bill_date: str | None, bill_type: str | None) -> tuple[dt.date, str]:
    """``bill_date`` and ``bill_type`` as WeChat validates them (400 PARAM_ERROR)."""
    try:
        day = dt.date.fromisoformat(bill_date or "")
    except ValueError:
        raise ApiError(400, "PARAM_ERROR", "bill_date 格式应为 yyyy-MM-DD") from None
    if bill_date is None or len(bill_date) != 10:
        raise ApiError(400, "PARAM_ERROR", "bill_date 格式应为 yyyy-MM-DD")
    kind = bill_type or "ALL"
    if kind not in BILL_TYPES:
        raise ApiError(400, "PARAM_ERROR", f"bill_type 不支持 {kind}")
    return day, kind
