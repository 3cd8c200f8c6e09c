"""Wire models of the Alipay emulator: the ``biz_content`` of the trade APIs (validated the way
Alipay does, amounts read exactly) and the sandbox admin API bodies."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mock_channels.alipay_crypto import load_app_public_key

BEIJING = dt.timezone(dt.timedelta(hours=8))
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
OUT_TRADE_NO_PATTERN = r"^[A-Za-z0-9_\-]{1,64}$"
_RELATIVE_TIMEOUT = re.compile(r"^([1-9][0-9]{0,4})([mhd])$|^1c$")
_YUAN = re.compile(r"[0-9]{1,12}(\.[0-9]{1,2})?")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}
MAX_TIMEOUT_S = 15 * 86400

# Which product_code each page/QR API accepts (Alipay's docs name QUICK_WAP_WAY; older SDKs send
# QUICK_WAP_PAY); None means "defaults when absent".
PRODUCT_CODES: dict[str, frozenset[str | None]] = {
    "alipay.trade.precreate": frozenset({None, "FACE_TO_FACE_PAYMENT", "OFFLINE_PAYMENT"}),
    "alipay.trade.page.pay": frozenset({None, "FAST_INSTANT_TRADE_PAY"}),
    "alipay.trade.wap.pay": frozenset({None, "QUICK_WAP_WAY", "QUICK_WAP_PAY"}),
}


def beijing(moment: dt.datetime) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in Beijing time, as Alipay writes every time."""
    return moment.astimezone(BEIJING).strftime(TIME_FORMAT)


def parse_beijing(text: str) -> dt.datetime:
    for pattern in (TIME_FORMAT, "%Y-%m-%d %H:%M"):
        try:
            return dt.datetime.strptime(text, pattern).replace(tzinfo=BEIJING)
        except ValueError:
            continue
    raise ValueError("must be yyyy-MM-dd HH:mm:ss")


def yuan_to_fen(value: Any) -> int:
    """A ``total_amount`` as sent (a string, or a JSON number read as ``Decimal``) in fen."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError("total_amount must be a number of yuan")
    if isinstance(value, str) and not _YUAN.fullmatch(value):
        raise ValueError("total_amount must be yuan with at most two decimals, e.g. 88.88")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValueError("total_amount is not a number") from None
    exponent = amount.as_tuple().exponent
    if not isinstance(exponent, int) or exponent < -2:
        raise ValueError("total_amount must have at most two decimals")
    fen = int(amount.scaleb(2))
    if not 1 <= fen <= 100_000_000_00:
        raise ValueError("total_amount must be within [0.01, 100000000]")
    return fen


def fen_to_yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def load_biz_content(text: str) -> dict[str, Any]:
    """``biz_content`` as a JSON object, numbers read exactly (never through float)."""
    data = json.loads(text, parse_float=Decimal)
    if not isinstance(data, dict):
        raise ValueError("biz_content must be a JSON object")
    return data


class _Biz(BaseModel):
    # Alipay ignores fields it does not know; keep them for the idempotency comparison.
    model_config = ConfigDict(extra="allow")


class TradeCreate(_Biz):
    """``biz_content`` of precreate, page.pay and wap.pay."""

    out_trade_no: str = Field(pattern=OUT_TRADE_NO_PATTERN)
    total_amount: int  # fen, from yuan
    subject: str = Field(min_length=1, max_length=256)
    product_code: str | None = None
    seller_id: str | None = None
    body: str | None = Field(default=None, max_length=128)
    time_expire: str | None = None
    timeout_express: str | None = None
    qr_code_timeout_express: str | None = None
    passback_params: str | None = Field(default=None, max_length=512)

    @field_validator("total_amount", mode="before")
    @classmethod
    def _yuan(cls, value: Any) -> int:
        return yuan_to_fen(value)

    @field_validator("time_expire")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None:
            parse_beijing(value)
        return value

    @field_validator("timeout_express", "qr_code_timeout_express")
    @classmethod
    def _relative(cls, value: str | None) -> str | None:
        if value is not None and not _RELATIVE_TIMEOUT.match(value):
            raise ValueError("must be like 90m, 2h, 15d or 1c (1m to 15d)")
        if value is not None and value != "1c" and relative_seconds(value) > MAX_TIMEOUT_S:
            raise ValueError("must be at most 15d")
        return value

    def expire_at(self, created_at: dt.datetime) -> dt.datetime | None:
        """time_expire wins over timeout_express when both are sent (Alipay's rule)."""
        if self.time_expire:
            return parse_beijing(self.time_expire)
        relative = self.qr_code_timeout_express or self.timeout_express
        if relative == "1c":
            local = created_at.astimezone(BEIJING)
            return (local + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0)
        if relative:
            return created_at + dt.timedelta(seconds=relative_seconds(relative))
        return None

    def identity(self, api_method: str) -> dict[str, Any]:
        """What a repeated request must carry unchanged (else ACQ.CONTEXT_INCONSISTENT)."""
        fields = self.model_dump(exclude_none=True, mode="json")
        return {"method": api_method, **fields}


def relative_seconds(value: str) -> int:
    return int(value[:-1]) * _UNIT_SECONDS[value[-1]]


class TradeReference(_Biz):
    """``biz_content`` of query and close: either number (``trade_no`` wins when both)."""

    out_trade_no: str | None = Field(default=None, min_length=1, max_length=64)
    trade_no: str | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _one_number(self) -> TradeReference:
        if not self.out_trade_no and not self.trade_no:
            raise ValueError("out_trade_no 和 trade_no 不能同时为空")
        return self


class RefundCreate(_Biz):
    """``biz_content`` of ``alipay.trade.refund`` (``trade_no`` wins when both are given)."""

    out_trade_no: str | None = Field(default=None, min_length=1, max_length=64)
    trade_no: str | None = Field(default=None, min_length=1, max_length=64)
    refund_amount: int  # fen, from yuan
    out_request_no: str | None = Field(default=None, min_length=1, max_length=64)
    refund_reason: str | None = Field(default=None, max_length=256)

    @field_validator("refund_amount", mode="before")
    @classmethod
    def _yuan(cls, value: Any) -> int:
        return yuan_to_fen(value)

    @model_validator(mode="after")
    def _one_number(self) -> RefundCreate:
        if not self.out_trade_no and not self.trade_no:
            raise ValueError("out_trade_no 和 trade_no 不能同时为空")
        return self


class RefundQuery(_Biz):
    """``biz_content`` of ``alipay.trade.fastpay.refund.query``."""

    out_trade_no: str | None = Field(default=None, min_length=1, max_length=64)
    trade_no: str | None = Field(default=None, min_length=1, max_length=64)
    out_request_no: str = Field(min_length=1, max_length=64)
    query_options: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_number(self) -> RefundQuery:
        if not self.out_trade_no and not self.trade_no:
            raise ValueError("out_trade_no 和 trade_no 不能同时为空")
        return self


class BillQuery(_Biz):
    """``biz_content`` of ``alipay.data.dataservice.bill.downloadurl.query``."""

    bill_type: str
    bill_date: str


def first_issue(error: Exception) -> str:
    """A short, Alipay-style description of why a biz_content was refused."""
    errors = getattr(error, "errors", None)
    if callable(errors):
        first = errors(include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "biz_content"
        return f"参数{field}无效: {first['msg']}"
    return f"biz_content 无效: {error}"


# -- sandbox admin API ----------------------------------------------------------------------


class RegisterApp(BaseModel):
    """Body of ``POST /sandbox/alipay/apps``."""

    model_config = ConfigDict(extra="forbid")

    app_id: str = Field(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z_-]+$")
    app_public_key_pem: str
    # The receiving account (PID); one is made up when absent.
    seller_id: str | None = Field(default=None, pattern=r"^2088[0-9]{12}$")
    # The service fee (服务费) the trade bills show, as a fraction of each amount; 当面付's
    # standard rate when absent.
    fee_rate: Decimal | None = Field(default=None, ge=0, le=Decimal("0.1"), decimal_places=4)

    @field_validator("app_public_key_pem")
    @classmethod
    def _loads(cls, value: str) -> str:
        load_app_public_key(value)
        return value


class PayOrder(BaseModel):
    """Body of ``POST /sandbox/alipay/orders/{out_trade_no}/pay``: the shopper's move.

    ``scan`` only opens the trade (it then exists for query/close, WAIT_BUYER_PAY); ``fail``
    scans and fails to pay (still WAIT_BUYER_PAY, no notification); ``success`` scans and pays.
    """

    model_config = ConfigDict(extra="forbid")

    # Optional: without it, the order is found by out_trade_no alone when that is unambiguous.
    app_id: str | None = Field(default=None, min_length=1)
    outcome: Literal["success", "fail", "scan"] = "success"
    # Report another total_amount (fen) than the order's, to exercise mismatch handling.
    paid_amount: int | None = Field(default=None, ge=1, le=100_000_000_00)
    # Paying a paid order is refused unless ``again``: then its notification is sent again.
    again: bool = False
