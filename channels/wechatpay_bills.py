"""WeChat Pay API v3 trade bills (交易账单): the answer of ``GET /v3/bill/tradebill``, the integrity
check of the downloaded file, and the file's parsing into payfront's ``StatementLine``s.

The file is UTF-8 CSV: a header row of Chinese column names, one row per payment or refund with
every field prefixed by a backtick (so spreadsheets keep long numbers as text), then a summary
header row (总交易单数, …) and one summary row. Amounts are yuan strings, converted to fen with
``Decimal`` and refused unless exact; fees are rounded per order to the fen by WeChat, refunds
show the fee given back as a negative number.
"""

from __future__ import annotations

import hashlib
import hmac
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

from pydantic import StrictStr

from channels.base import HttpResponse, StatementLine, StatementLineKind, StatementPage
from channels.errors import ChannelFatal, ChannelRetryable
from channels.wechatpay_auth import CHINA_TZ
from channels.wechatpay_wire import WireModel, classify_failure

TRADEBILL_PATH = "/v3/bill/tradebill"
GZIP_MAGIC = b"\x1f\x8b"
# A day's bill of a very busy merchant is tens of megabytes; refuse to inflate past this.
MAX_BILL_BYTES = 512 * 1024 * 1024
SUMMARY_FIRST_COLUMN = "总交易单数"
_FEN = Decimal(100)


class TradebillAnswer(WireModel):
    """The signed answer of ``GET /v3/bill/tradebill``: where to download the file (valid for
    minutes only) and the SHA1 of the file as it is before any gzip compression."""

    hash_type: StrictStr
    hash_value: StrictStr
    download_url: StrictStr


def download_target(base_url: str, download_url: str) -> tuple[str, str]:
    """``(origin, path?query)`` of the download, which must be WeChat's own: the signed
    Authorization of the download must not go anywhere else."""
    ours, theirs = urlsplit(base_url), urlsplit(download_url)
    same_origin = (theirs.scheme, theirs.netloc) == (ours.scheme, ours.netloc)
    wechat_host = theirs.scheme == "https" and (theirs.hostname or "").endswith(
        ".mch.weixin.qq.com"
    )
    if not (same_origin or wechat_host):
        raise ChannelFatal("UNEXPECTED_DOWNLOAD_URL", f"download_url {download_url!r}")
    path = theirs.path + (f"?{theirs.query}" if theirs.query else "")
    return f"{theirs.scheme}://{theirs.netloc}", path


def parse_download(response: HttpResponse, cursor: Mapping[str, str]) -> StatementPage:
    """The downloaded file (not signed: its integrity is the signed answer's hash) as lines."""
    if response.status != 200:
        raise classify_failure(response)
    raw = bill_bytes(response.body)
    check_hash(raw, cursor.get("hash_type", ""), cursor.get("hash_value", ""))
    return StatementPage(lines=parse_tradebill(raw))


def _malformed(message: str) -> ChannelFatal:
    return ChannelFatal("MALFORMED_STATEMENT", message)


def bill_bytes(body: bytes) -> bytes:
    """The bill file itself: ``body`` inflated if it is gzip (``tar_type=GZIP``), else as is."""
    if not body.startswith(GZIP_MAGIC):
        return body
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        raw = inflater.decompress(body, MAX_BILL_BYTES)
    except zlib.error as exc:
        raise ChannelRetryable("BILL_CORRUPT", f"the gzip bill does not inflate: {exc}") from exc
    if inflater.unconsumed_tail:
        raise _malformed(f"the bill inflates past {MAX_BILL_BYTES} bytes")
    if not inflater.eof:
        raise ChannelRetryable("BILL_CORRUPT", "the gzip bill is truncated")
    return raw


def check_hash(raw: bytes, hash_type: str, hash_value: str) -> None:
    """Refuse a file whose digest is not the one the signed tradebill answer gave."""
    if hash_type.upper() != "SHA1":
        raise _malformed(f"unsupported hash_type {hash_type!r}")
    actual = hashlib.sha1(raw, usedforsecurity=False).hexdigest()
    if not hmac.compare_digest(actual, hash_value.strip().lower()):
        # A download that went wrong on the way; fetching the bill again is harmless.
        raise ChannelRetryable("BILL_HASH_MISMATCH", "the bill file's SHA1 is not hash_value")


def yuan_to_fen(text: str, column: str) -> int:
    """``"12.30"`` → 1230, exactly; anything that is not a whole number of fen is refused."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise _malformed(f"{column} {text!r} is not an amount") from None
    fen = value * _FEN
    if not fen.is_finite() or fen != fen.to_integral_value():
        raise _malformed(f"{column} {text!r} is not a whole number of fen")
    return int(fen)


def _fields(line: str) -> list[str]:
    """One data row: every field starts with a backtick, so split on ``,``` (a comma inside a
    product name or attach stays in its field)."""
    if not line.startswith("`"):
        raise _malformed(f"data row without backticks: {line[:60]!r}")
    return line[1:].split(",`")


@dataclass(frozen=True)
class _Columns:
    """Column positions by header name; the bill's optional columns may be absent."""

    index: Mapping[str, int]

    def get(self, row: Sequence[str], name: str, fallback: str | None = None) -> str:
        position = self.index.get(name)
        if position is None and fallback is not None:
            position = self.index.get(fallback)
        if position is None:
            raise _malformed(f"the bill has no column {name}")
        return row[position].strip()


_REQUIRED = (
    "交易时间",
    "微信订单号",
    "商户订单号",
    "交易状态",
    "货币种类",
    "应结订单金额",
    "手续费",
)


def parse_tradebill(raw: bytes) -> tuple[StatementLine, ...]:
    """The payments (交易状态 SUCCESS) and refunds (REFUND) of a verified bill file."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _malformed("the bill is not UTF-8") from exc
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise _malformed("the bill is empty")
    header = [name.strip().lstrip("`") for name in lines[0].split(",")]
    columns = _Columns({name: position for position, name in enumerate(header)})
    missing = [name for name in _REQUIRED if name not in columns.index]
    if missing:
        raise _malformed("the bill lacks column(s) " + ", ".join(missing))
    try:
        summary_at = next(
            n for n, line in enumerate(lines) if line.startswith(SUMMARY_FIRST_COLUMN)
        )
    except StopIteration:
        raise _malformed("the bill has no summary (总交易单数)") from None
    rows = [_fields(line) for line in lines[1:summary_at]]
    for row in rows:
        if len(row) != len(header):
            raise _malformed(f"a row has {len(row)} fields, the header {len(header)}")
    _check_summary(lines[summary_at:], rows, columns)
    return tuple(line for row in rows if (line := _line(row, columns)) is not None)


def _line(row: Sequence[str], columns: _Columns) -> StatementLine | None:
    status = columns.get(row, "交易状态")
    if status == "REVOKED":
        # Only payment-code (付款码) orders are revoked; payfront never creates them.
        return None
    if status not in ("SUCCESS", "REFUND"):
        raise _malformed(f"unknown 交易状态 {status!r}")
    moment = columns.get(row, "交易时间")
    try:
        occurred_at = datetime.strptime(moment, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA_TZ)
    except ValueError:
        raise _malformed(f"交易时间 {moment!r}") from None
    fee_minor = abs(yuan_to_fen(columns.get(row, "手续费"), "手续费"))
    if status == "SUCCESS":
        # 订单金额 is the order's whole amount (what payfront asked for); 应结订单金额 leaves
        # out free coupons and is all that bills without 订单金额 give.
        amount = yuan_to_fen(columns.get(row, "订单金额", "应结订单金额"), "订单金额")
        return StatementLine(
            kind=StatementLineKind.PAYMENT,
            out_trade_no=columns.get(row, "商户订单号"),
            amount_minor=amount,
            currency=columns.get(row, "货币种类"),
            fee_minor=fee_minor,
            occurred_at=occurred_at,
            channel_state=status,
            channel_trade_no=columns.get(row, "微信订单号") or None,
        )
    amount = yuan_to_fen(columns.get(row, "申请退款金额", "退款金额"), "申请退款金额")
    return StatementLine(
        kind=StatementLineKind.REFUND,
        out_trade_no=columns.get(row, "商户订单号"),
        amount_minor=amount,
        currency=columns.get(row, "货币种类"),
        fee_minor=fee_minor,
        occurred_at=occurred_at,
        channel_state=columns.get(row, "退款状态") or status,
        channel_trade_no=columns.get(row, "微信订单号") or None,
        out_refund_no=columns.get(row, "商户退款单号") or None,
        channel_refund_no=columns.get(row, "微信退款单号") or None,
    )


def _check_summary(
    summary: Sequence[str], rows: Sequence[Sequence[str]], columns: _Columns
) -> None:
    """The summary must agree with the rows: a truncated or misread file is refused."""
    if len(summary) < 2:
        raise _malformed("the bill's summary has no values")
    names = [name.strip() for name in summary[0].split(",")]
    values = dict(zip(names, _fields(summary[1]), strict=False))

    def total(column: str) -> int:
        return sum(yuan_to_fen(columns.get(row, column), column) for row in rows)

    expected = {
        "总交易单数": str(len(rows)),
        "应结订单总金额": total("应结订单金额"),
        "手续费总金额": total("手续费"),
    }
    if "退款金额" in columns.index:
        expected["退款总金额"] = total("退款金额")
    for name, want in expected.items():
        if name not in values:
            raise _malformed(f"the bill's summary has no {name}")
        got = values[name].strip() if isinstance(want, str) else yuan_to_fen(values[name], name)
        if got != want:
            raise _malformed(f"summary {name} is {values[name]!r}, the rows give {want}")
