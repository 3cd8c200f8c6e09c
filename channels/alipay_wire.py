"""Alipay OpenAPI wire messages (pydantic), their mapping to payfront's channel models, and the
classification of Alipay's ``code``/``sub_code`` answers.

Kept apart from the adapter's flow code. Only the fields payfront reads are declared; unknown
ones are ignored. Amounts are yuan strings on the wire (``"0.01"``) and integer fen inside,
converted exactly with ``Decimal``; floats never appear.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal, localcontext

import orjson
from pydantic import BaseModel, ConfigDict, StrictStr

from channels.base import TradeState, TradeStatus
from channels.errors import (
    ChannelAlreadyPaid,
    ChannelError,
    ChannelFatal,
    ChannelOrderNotFound,
    ChannelUnknownOutcome,
)

CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
SUCCESS_CODE = "10000"
CURRENCY = "CNY"
# Alipay's documented range for total_amount: [0.01, 100000000] yuan.
MAX_AMOUNT_MINOR = 100_000_000_00

_YUAN = re.compile(r"(0|[1-9][0-9]{0,15})(\.[0-9]{1,2})?")


# -- amounts and times ----------------------------------------------------------------------


def to_yuan(amount_minor: int) -> str:
    """Integer fen as Alipay's yuan string with two decimals: ``1 -> "0.01"``."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise ValueError("amount_minor must be an int")
    if not 1 <= amount_minor <= MAX_AMOUNT_MINOR:
        raise ValueError(f"amount {amount_minor} fen is outside Alipay's [0.01, 100000000] yuan")
    with localcontext() as context:
        context.prec = 40
        return str(Decimal(amount_minor).scaleb(-2))


def from_yuan(text: str) -> int:
    """Alipay's yuan string as integer fen, exactly: ``"0.01" -> 1``; anything else is a
    ``ValueError`` (signs, exponents, spaces, more than two decimals)."""
    if not isinstance(text, str) or not _YUAN.fullmatch(text):
        raise ValueError(f"not a yuan amount: {text!r}")
    with localcontext() as context:
        context.prec = 40
        return int(Decimal(text).scaleb(2))


def format_time(moment: datetime) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in Beijing time, as Alipay writes timestamps and time_expire."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetimes given to Alipay must be timezone-aware")
    return moment.astimezone(CHINA_TZ).strftime(TIME_FORMAT)


def parse_time(text: str | None) -> datetime | None:
    """An Alipay ``yyyy-MM-dd HH:mm:ss`` (Beijing time) as an aware datetime; None if absent or
    not in that form (a date is informative, never a reason to drop a payment)."""
    if not text:
        return None
    try:
        return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=CHINA_TZ)
    except ValueError:
        return None


# -- requests -------------------------------------------------------------------------------


class _WireModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class TradeBizContent(_WireModel):
    """``biz_content`` of precreate / page.pay / wap.pay; field order is the serialised order."""

    out_trade_no: StrictStr
    total_amount: StrictStr
    subject: StrictStr
    product_code: StrictStr
    seller_id: StrictStr | None = None
    time_expire: StrictStr | None = None
    passback_params: StrictStr | None = None


class TradeReference(_WireModel):
    """``biz_content`` of query and close (``trade_no`` wins at Alipay when both are given)."""

    out_trade_no: StrictStr
    trade_no: StrictStr | None = None


def to_json(payload: BaseModel) -> str:
    """Serialise once: compact, UTF-8 (not ``\\u`` escapes), declaration order, no nulls.

    This exact text is both signed and sent as ``biz_content``.
    """
    return orjson.dumps(payload.model_dump(exclude_none=True)).decode("utf-8")


# -- answers --------------------------------------------------------------------------------


class ResponseStatus(_WireModel):
    """The common part of every ``…_response``: ``code``/``msg`` and, on failure, sub codes."""

    code: StrictStr
    msg: StrictStr = ""
    sub_code: StrictStr | None = None
    sub_msg: StrictStr | None = None


class PrecreateResponse(ResponseStatus):
    out_trade_no: StrictStr | None = None
    qr_code: StrictStr | None = None


class QueryResponse(ResponseStatus):
    trade_no: StrictStr | None = None
    out_trade_no: StrictStr | None = None
    trade_status: StrictStr | None = None
    total_amount: StrictStr | None = None
    send_pay_date: StrictStr | None = None
    buyer_logon_id: StrictStr | None = None


class CloseResponse(ResponseStatus):
    trade_no: StrictStr | None = None
    out_trade_no: StrictStr | None = None


class TradeNotification(_WireModel):
    """A trade notification (``notify_type=trade_status_sync``) as its form fields."""

    notify_id: StrictStr
    notify_type: StrictStr | None = None
    notify_time: StrictStr | None = None
    app_id: StrictStr
    trade_status: StrictStr
    out_trade_no: StrictStr
    trade_no: StrictStr | None = None
    total_amount: StrictStr
    seller_id: StrictStr | None = None
    gmt_payment: StrictStr | None = None


# -- mapping to payfront --------------------------------------------------------------------

TRADE_STATES: Mapping[str, TradeState] = {
    "WAIT_BUYER_PAY": TradeState.NOT_PAID,
    "TRADE_SUCCESS": TradeState.PAID,
    "TRADE_FINISHED": TradeState.PAID,
    # Unpaid and closed, or fully refunded after payment (Alipay uses one status for both).
    "TRADE_CLOSED": TradeState.CLOSED,
}

# sub_codes whose meaning is not "refused for good"; every other failure is ``ChannelFatal``.
SUB_CODE_CLASSES: Mapping[str, type[ChannelError]] = {
    "ACQ.SYSTEM_ERROR": ChannelUnknownOutcome,
    "ACQ.TRADE_NOT_EXIST": ChannelOrderNotFound,
    "ACQ.TRADE_HAS_SUCCESS": ChannelAlreadyPaid,
    "ACQ.TRADE_HAS_FINISHED": ChannelAlreadyPaid,
    "ACQ.TRADE_HAS_CLOSE": ChannelFatal,
    "ACQ.CONTEXT_INCONSISTENT": ChannelFatal,
}
# Public gateway codes (opendocs "公共错误码"): 20000 is "service unavailable, retry later",
# i.e. the call may or may not have been acted on.
CODE_CLASSES: Mapping[str, type[ChannelError]] = {
    "20000": ChannelUnknownOutcome,
}


def classify_failure(
    status: ResponseStatus,
    *,
    http_status: int,
    sub_code_classes: Mapping[str, type[ChannelError]] = SUB_CODE_CLASSES,
) -> ChannelError:
    """A verified answer whose ``code`` is not 10000, as a ``ChannelError``; APIs whose
    sub_codes mean something else (refunds) pass their own ``sub_code_classes``.

    ``code`` carries the sub_code when there is one (``ACQ.TRADE_NOT_EXIST``), else the code.
    """
    sub_code = status.sub_code or None
    error_class = (sub_code_classes.get(sub_code) if sub_code else None) or CODE_CLASSES.get(
        status.code, ChannelFatal
    )
    message = status.sub_msg or status.msg or status.code
    return error_class(sub_code or status.code, message, http_status=http_status)


def query_to_trade_status(answer: QueryResponse) -> TradeStatus | None:
    """A successful query answer as ``TradeStatus``; None if a field payfront needs is missing
    or unknown (trade_status, out_trade_no, a well-formed total_amount)."""
    state = TRADE_STATES.get(answer.trade_status or "")
    if state is None or not answer.out_trade_no or answer.total_amount is None:
        return None
    try:
        amount_minor = from_yuan(answer.total_amount)
    except ValueError:
        return None
    return TradeStatus(
        out_trade_no=answer.out_trade_no,
        state=state,
        channel_state=answer.trade_status or "",
        amount_minor=amount_minor,
        currency=CURRENCY,
        channel_trade_no=answer.trade_no or None,
        paid_at=parse_time(answer.send_pay_date) if state is TradeState.PAID else None,
    )


def notification_to_trade_status(notification: TradeNotification) -> TradeStatus | None:
    """A verified trade notification as ``TradeStatus``; None if its status or amount is not
    one payfront knows."""
    state = TRADE_STATES.get(notification.trade_status)
    if state is None:
        return None
    try:
        amount_minor = from_yuan(notification.total_amount)
    except ValueError:
        return None
    return TradeStatus(
        out_trade_no=notification.out_trade_no,
        state=state,
        channel_state=notification.trade_status,
        amount_minor=amount_minor,
        currency=CURRENCY,
        channel_trade_no=notification.trade_no or None,
        paid_at=parse_time(notification.gmt_payment) if state is TradeState.PAID else None,
        merchant_id=notification.seller_id or None,
        app_id=notification.app_id,
    )
