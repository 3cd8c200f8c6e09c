"""Wire models of the WeChat emulator: the v3 create-order body (validated the way WeChat does,
with a PARAM_ERROR naming the field) and the sandbox admin API bodies."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mock_channels.wechatpay_crypto import load_merchant_public_key

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
OUT_TRADE_NO_PATTERN = r"^[A-Za-z0-9_*|\-]{6,32}$"
# "只能是数字、大小写字母_-|*@", 1 to 64 characters.
OUT_REFUND_NO_PATTERN = r"^[A-Za-z0-9_\-|*@]{1,64}$"

# Path segment that selects the product, and the trade_type WeChat reports for it.
TRADE_TYPES: dict[str, str] = {"native": "NATIVE", "jsapi": "JSAPI", "app": "APP", "h5": "MWEB"}


def parse_rfc3339(value: str) -> dt.datetime:
    if not _RFC3339.match(value):
        raise ValueError("must be RFC 3339, e.g. 2018-06-08T10:34:56+08:00")
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


class _Wire(BaseModel):
    # Strict like WeChat: "100" is not an amount and 1.0 is not an int. Unknown fields pass.
    model_config = ConfigDict(strict=True, extra="allow")


class Amount(_Wire):
    total: int = Field(gt=0)
    currency: str = "CNY"

    @field_validator("currency")
    @classmethod
    def _cny_only(cls, value: str) -> str:
        if value != "CNY":
            raise ValueError("only CNY is supported")
        return value


class Payer(_Wire):
    openid: str = Field(min_length=1, max_length=128)


class H5Info(_Wire):
    type: str = Field(min_length=1, max_length=32)


class SceneInfo(_Wire):
    payer_client_ip: str = Field(min_length=1, max_length=45)
    device_id: str | None = Field(default=None, max_length=32)
    store_info: dict[str, Any] | None = None
    h5_info: H5Info | None = None


class CreateTransaction(_Wire):
    """Body of ``POST /v3/pay/transactions/{native|jsapi|app|h5}``."""

    appid: str = Field(min_length=1, max_length=32)
    mchid: str = Field(min_length=1, max_length=32)
    description: str = Field(min_length=1, max_length=127)
    out_trade_no: Annotated[str, Field(pattern=OUT_TRADE_NO_PATTERN)]
    time_expire: str | None = Field(default=None, max_length=64)
    attach: str | None = Field(default=None, min_length=1, max_length=128)
    notify_url: str = Field(min_length=1, max_length=255)
    goods_tag: str | None = Field(default=None, max_length=32)
    support_fapiao: bool | None = None
    amount: Amount
    payer: Payer | None = None
    detail: dict[str, Any] | None = None
    scene_info: SceneInfo | None = None
    settle_info: dict[str, Any] | None = None

    @field_validator("time_expire")
    @classmethod
    def _rfc3339(cls, value: str | None) -> str | None:
        if value is not None:
            parse_rfc3339(value)
        return value

    @field_validator("notify_url")
    @classmethod
    def _callback_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("must be an absolute http or https URL")
        if parts.query or parts.fragment:
            raise ValueError("must not carry query parameters")
        return value

    def expire_at(self) -> dt.datetime | None:
        return parse_rfc3339(self.time_expire) if self.time_expire else None


def _check_notify_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("must be an absolute http or https URL")
    if parts.query or parts.fragment:
        raise ValueError("must not carry query parameters")
    return value


class RefundAmount(_Wire):
    refund: int = Field(gt=0)
    total: int = Field(gt=0)
    currency: str

    @field_validator("currency")
    @classmethod
    def _cny_only(cls, value: str) -> str:
        if value != "CNY":
            raise ValueError("only CNY is supported")
        return value


class CreateRefundBody(_Wire):
    """Body of ``POST /v3/refund/domestic/refunds`` (transaction_id or out_trade_no)."""

    transaction_id: str | None = Field(default=None, min_length=1, max_length=32)
    out_trade_no: str | None = Field(default=None, min_length=1, max_length=32)
    out_refund_no: Annotated[str, Field(pattern=OUT_REFUND_NO_PATTERN)]
    reason: str | None = Field(default=None, max_length=80)
    notify_url: str | None = Field(default=None, min_length=1, max_length=256)
    funds_account: str | None = None
    amount: RefundAmount
    goods_detail: list[dict[str, Any]] | None = None

    @field_validator("notify_url")
    @classmethod
    def _callback_url(cls, value: str | None) -> str | None:
        return None if value is None else _check_notify_url(value)


def missing_for_trade_type(trade_type: str, body: CreateTransaction) -> str | None:
    """The field a product requires beyond the common ones, if it is absent (JSON pointer)."""
    if trade_type == "JSAPI" and body.payer is None:
        return "/payer"
    if trade_type == "MWEB":
        if body.scene_info is None:
            return "/scene_info"
        if body.scene_info.h5_info is None:
            return "/scene_info/h5_info"
    return None


class FieldIssue(BaseModel):
    field: str
    issue: str
    value: Any = None
    has_value: bool = False

    def message(self) -> str:
        return f"输入源“/body{self.field}”映射到值字段校验失败：{self.issue}"

    def detail(self) -> dict[str, Any]:
        detail: dict[str, Any] = {"location": "body", "field": self.field, "issue": self.issue}
        if self.has_value:
            detail["value"] = self.value
        return detail


def first_issue(error: ValidationError) -> FieldIssue:
    """The first problem pydantic found, as WeChat names it: a JSON pointer into the body."""
    first = error.errors(include_url=False)[0]
    pointer = "".join(f"/{part}" for part in first["loc"])
    missing = first["type"] == "missing"
    issue = "字段缺失 (field required)" if missing else first["msg"]
    return FieldIssue(field=pointer, issue=issue, value=first.get("input"), has_value=not missing)


class RegisterMerchant(BaseModel):
    """Body of ``POST /sandbox/wechatpay/merchants``."""

    model_config = ConfigDict(extra="forbid")

    mchid: str = Field(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z_-]+$")
    appid: str = Field(min_length=1, max_length=32)
    merchant_serial_no: str = Field(min_length=1, max_length=64, pattern=r"^[0-9A-Fa-f]+$")
    merchant_public_key_pem: str
    apiv3_key: str = Field(min_length=32, max_length=32, pattern=r"^[\x21-\x7e]{32}$")
    platform_mode: Literal["public_key", "certificate"] = "public_key"
    # The trade bill's fee rate: 0.006 is 0.60%.
    fee_rate: Decimal = Field(default=Decimal("0.006"), ge=0, le=Decimal("0.1"))

    @field_validator("merchant_public_key_pem")
    @classmethod
    def _loads(cls, value: str) -> str:
        load_merchant_public_key(value)
        return value


class PayOrder(BaseModel):
    """Body of ``POST /sandbox/wechatpay/orders/{out_trade_no}/pay``: the shopper's move."""

    model_config = ConfigDict(extra="forbid")

    # Optional: without it, the order is found by out_trade_no alone when that is unambiguous.
    mchid: str | None = Field(default=None, min_length=1)
    outcome: Literal["success", "fail"] = "success"
    # Report a paid amount/currency other than the order's, to exercise mismatch handling.
    paid_amount: int | None = Field(default=None, ge=0)
    paid_currency: str | None = Field(default=None, min_length=3, max_length=3)
    # Paying an already paid order is refused unless ``again``: then its callback is re-sent.
    again: bool = False
    # JSAPI/App: the parameters the merchant's front-end pays with; verified like WeChat's
    # client does (400 INVALID_PAYMENT_PARAMS) before paying.
    payment_params: dict[str, str] | None = None


class SettleRefund(BaseModel):
    """Body of ``POST /sandbox/wechatpay/refunds/{out_refund_no}/settle``: end a refund that is
    still PROCESSING now, the way WeChat would (then its callback is sent)."""

    model_config = ConfigDict(extra="forbid")

    mchid: str | None = Field(default=None, min_length=1)
    outcome: Literal["success", "abnormal", "closed"] = "success"


class RefundMode(BaseModel):
    """Body of ``PUT /sandbox/wechatpay/refund-mode/{mchid}``: how that merchant's new refunds
    end after the processing delay; ``hold`` keeps them PROCESSING until settled by hand."""

    model_config = ConfigDict(extra="forbid")

    outcome: Literal["success", "abnormal", "closed", "hold"] = "success"
