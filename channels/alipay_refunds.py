"""Alipay refunds on the wire: ``alipay.trade.refund`` and ``alipay.trade.fastpay.refund.query``
(biz_content and answers), the refund fields of a trade notification, and what each means for
payfront: a ``RefundStatus`` or a classified ``ChannelError``.

Data-shaped code apart from the adapter's flow (``channels.alipay``), as ``alipay_wire`` is.
Facts from opendocs (统一收单交易退款接口 / 退款查询 / 异步通知说明):

- a refund succeeded only when the refund answer says ``fund_change`` "Y"; "N" (or none) means
  "ask the refund query": it is a repeat of a refund made before, or not (yet) made;
- ``refund_fee`` (refund answer and notification) is the trade's *total* refunded so far, not
  this refund's amount;
- the refund query answers 10000 even when there is no such refund: only ``refund_status``
  "REFUND_SUCCESS" means the refund went through; without it the refund was not received or
  failed, and sending the same refund (same ``out_request_no``) again is the documented remedy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from pydantic import BaseModel, ConfigDict, StrictStr

from channels.alipay_wire import (
    CHINA_TZ,
    CURRENCY,
    SUB_CODE_CLASSES,
    TIME_FORMAT,
    ResponseStatus,
    TradeNotification,
    from_yuan,
    parse_time,
    to_yuan,
)
from channels.base import CreateRefund, RefundState, RefundStatus
from channels.errors import (
    ChannelError,
    ChannelFatal,
    ChannelOrderNotFound,
    ChannelRetryable,
    ChannelUnknownOutcome,
)

REFUND = "alipay.trade.refund"
REFUND_QUERY = "alipay.trade.fastpay.refund.query"
REFUND_SUCCESS = "REFUND_SUCCESS"
# The refund query returns gmt_refund_pay only when asked for it.
QUERY_OPTIONS = ("gmt_refund_pay",)
# out_request_no is String(64); refund_reason String(256).
MAX_REFUND_NO = 64
MAX_REASON = 256
_REFUND_NO = re.compile(r"[\x21-\x7e]{1,64}")


class _Biz(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RefundBizContent(_Biz):
    """``biz_content`` of ``alipay.trade.refund``; field order is the serialised order."""

    out_trade_no: StrictStr
    refund_amount: StrictStr
    # Always sent: it tells partial refunds apart and makes a retry the same refund (Alipay
    # refunds once per out_request_no of a trade).
    out_request_no: StrictStr
    refund_reason: StrictStr | None = None


class RefundQueryBizContent(_Biz):
    """``biz_content`` of ``alipay.trade.fastpay.refund.query``."""

    out_trade_no: StrictStr
    out_request_no: StrictStr
    query_options: list[StrictStr]


class RefundResponse(ResponseStatus):
    trade_no: StrictStr | None = None
    out_trade_no: StrictStr | None = None
    fund_change: StrictStr | None = None
    refund_fee: StrictStr | None = None  # the trade's total refunded, not this refund's
    gmt_refund_pay: StrictStr | None = None


class RefundQueryResponse(ResponseStatus):
    trade_no: StrictStr | None = None
    out_trade_no: StrictStr | None = None
    out_request_no: StrictStr | None = None
    total_amount: StrictStr | None = None
    refund_amount: StrictStr | None = None
    refund_status: StrictStr | None = None
    refund_reason: StrictStr | None = None
    gmt_refund_pay: StrictStr | None = None


class RefundNotification(TradeNotification):
    """A trade notification, with the fields Alipay adds when it reports a refund."""

    out_biz_no: StrictStr | None = None  # the refund's out_request_no
    refund_fee: StrictStr | None = None  # the trade's total refunded so far
    gmt_refund: StrictStr | None = None  # yyyy-MM-dd HH:mm:ss.S
    gmt_close: StrictStr | None = None

    def carries_refund(self) -> bool:
        """Whether this notification reports a refund rather than a payment or a close: a
        full refund also says TRADE_CLOSED, a partial one TRADE_SUCCESS; only the refund
        fields tell them from a close and a payment."""
        if self.out_biz_no or self.gmt_refund:
            return True
        try:
            return bool(self.refund_fee) and from_yuan(self.refund_fee or "") > 0
        except ValueError:
            return True  # a refund_fee that is not an amount: malformed, not a payment


# What each refund sub_code means for the next step (opendocs, 退款接口 业务错误码).
REFUND_SUB_CODE_CLASSES: Mapping[str, type[ChannelError]] = {
    **SUB_CODE_CLASSES,
    # "the refund may or may not have succeeded": the same out_request_no and amount again
    # is safe (Alipay answers a made refund idempotently), or query it after 5 s.
    "ACQ.SYSTEM_ERROR": ChannelUnknownOutcome,
    "ACQ.TRADE_NOT_EXIST": ChannelOrderNotFound,
    # Refused before any money moved; Alipay says "try again after a while" (退收费异常) and
    # "top up, then send the refund again" (卖家余额不足): the same refund may be re-sent.
    "ACQ.REFUND_CHARGE_ERROR": ChannelRetryable,
    "ACQ.SELLER_BALANCE_NOT_ENOUGH": ChannelRetryable,
    # Refused for good; re-sending the same request cannot succeed:
    # this refund alone is more than the trade's total (or a partial one without out_request_no)
    "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL": ChannelFatal,
    # the refunds requested for the trade would add up to more than its total
    "ACQ.REASON_TRADE_REFUND_FEE_ERR": ChannelFatal,
    # this out_request_no was already refunded with another amount
    "ACQ.DISCORDANT_REPEAT_REQUEST": ChannelFatal,
    # the trade is not paid (WAIT_BUYER_PAY), closed or fully refunded, or past its refund period
    "ACQ.TRADE_STATUS_ERROR": ChannelFatal,
    "ACQ.TRADE_HAS_CLOSE": ChannelFatal,
    "ACQ.TRADE_HAS_FINISHED": ChannelFatal,
    # frozen by Alipay's risk control: only Alipay's support can release it
    "ACQ.REASON_TRADE_BEEN_FREEZEN": ChannelFatal,
    "ACQ.TRADE_NOT_ALLOW_REFUND": ChannelFatal,
    "ACQ.NOT_ALLOW_PARTIAL_REFUND": ChannelFatal,
    "ACQ.INVALID_PARAMETER": ChannelFatal,
}


def refund_biz_content(refund: CreateRefund) -> RefundBizContent:
    """The refund's ``biz_content``: identical for every retry of the same refund."""
    if refund.currency.upper() != CURRENCY:
        raise ChannelFatal("CURRENCY_NOT_SUPPORTED", f"alipay takes CNY, not {refund.currency}")
    if not _REFUND_NO.fullmatch(refund.out_refund_no):
        raise ChannelFatal(
            "INVALID_REFUND_NO", "out_refund_no must be 1 to 64 printable ASCII characters"
        )
    if not 1 <= refund.refund_minor <= refund.total_minor:
        raise ChannelFatal(
            "INVALID_AMOUNT",
            f"refund {refund.refund_minor} is outside [1, {refund.total_minor}] fen",
        )
    try:
        refund_amount = to_yuan(refund.refund_minor)
    except ValueError as exc:
        raise ChannelFatal("INVALID_AMOUNT", str(exc)) from exc
    return RefundBizContent(
        out_trade_no=refund.out_trade_no,
        refund_amount=refund_amount,
        out_request_no=refund.out_refund_no,
        refund_reason=refund.reason[:MAX_REASON] if refund.reason else None,
    )


def refund_query_biz_content(out_refund_no: str, out_trade_no: str) -> RefundQueryBizContent:
    return RefundQueryBizContent(
        out_trade_no=out_trade_no, out_request_no=out_refund_no, query_options=list(QUERY_OPTIONS)
    )


def parse_refund_time(text: str | None) -> datetime | None:
    """``gmt_refund_pay`` (``yyyy-MM-dd HH:mm:ss``) or a notification's ``gmt_refund``
    (``… HH:mm:ss.S``), Beijing time; None when absent or in neither form."""
    if not text:
        return None
    try:
        return datetime.strptime(text, TIME_FORMAT + ".%f").replace(tzinfo=CHINA_TZ)
    except ValueError:
        return parse_time(text)


def refund_answer_status(
    answer: RefundResponse, refund: CreateRefund | None, *, http_status: int
) -> RefundStatus:
    """An accepted (code 10000) refund answer.

    ``fund_change`` "Y": the money went back now. "N" or absent: Alipay's docs say to learn the
    state from the refund query (it is a repeat of a refund already made, or one not made), so
    the refund is reported as accepted and still PROCESSING. The answer names neither the
    refund (no out_request_no) nor its amount (``refund_fee`` is the trade's total refunded):
    those come from ``refund`` when the caller passes it.
    """
    if refund is not None and answer.out_trade_no and answer.out_trade_no != refund.out_trade_no:
        raise ChannelUnknownOutcome(
            "UNEXPECTED_RESPONSE",
            f"refund answer for {answer.out_trade_no!r}, not {refund.out_trade_no!r}",
            http_status=http_status,
        )
    moved = answer.fund_change == "Y"
    return RefundStatus(
        out_refund_no=refund.out_refund_no if refund is not None else "",
        state=RefundState.SUCCEEDED if moved else RefundState.PROCESSING,
        channel_state=f"fund_change={answer.fund_change or ''}",
        out_trade_no=answer.out_trade_no or (refund.out_trade_no if refund else None),
        amount_minor=refund.refund_minor if refund is not None else None,
        currency=CURRENCY,
        succeeded_at=parse_refund_time(answer.gmt_refund_pay) if moved else None,
    )


def refund_query_status(
    answer: RefundQueryResponse, out_refund_no: str, *, http_status: int
) -> RefundStatus:
    """An accepted (code 10000) refund query answer; ``ChannelOrderNotFound`` when Alipay
    reports no successful refund under this number (sending the same refund again is then
    the documented remedy: Alipay refunds once per out_request_no)."""
    if answer.out_request_no and answer.out_request_no != out_refund_no:
        raise ChannelUnknownOutcome(
            "UNEXPECTED_RESPONSE",
            f"refund query answer for {answer.out_request_no!r}, not {out_refund_no!r}",
            http_status=http_status,
        )
    if answer.refund_status != REFUND_SUCCESS:
        # No refund_status: "the refund request was not received, or failed" (opendocs). A
        # query sent within seconds of the refund can still see that for a refund that then
        # succeeds; the retry of the same out_request_no is safe either way.
        found = "no refund" if not answer.out_request_no else "no successful refund"
        raise ChannelOrderNotFound(
            "REFUND_NOT_EXIST",
            f"{found} {out_refund_no!r} (refund_status {answer.refund_status!r})",
            http_status=http_status,
        )
    try:
        amount_minor = from_yuan(answer.refund_amount or "")
    except ValueError:
        raise ChannelUnknownOutcome(
            "UNEXPECTED_RESPONSE",
            f"refund_amount {answer.refund_amount!r} is not an amount",
            http_status=http_status,
        ) from None
    return RefundStatus(
        out_refund_no=out_refund_no,
        state=RefundState.SUCCEEDED,
        channel_state=REFUND_SUCCESS,
        out_trade_no=answer.out_trade_no or None,
        amount_minor=amount_minor,
        currency=CURRENCY,
        succeeded_at=parse_refund_time(answer.gmt_refund_pay),
    )


def notification_refund_status(notification: RefundNotification) -> RefundStatus | None:
    """A verified refund notification as the refund it reports (Alipay notifies only refunds
    that succeeded); None without ``out_biz_no`` (a refund payfront did not ask for, e.g. one
    made in Alipay's merchant console) or with a ``refund_fee`` that is no amount.

    ``amount_minor`` stays None: ``refund_fee`` is the trade's total refunded so far, not this
    refund's amount (payfront knows that from its own refund under ``out_refund_no``).
    """
    if not notification.out_biz_no:
        return None
    try:
        from_yuan(notification.refund_fee or "")
    except ValueError:
        return None
    return RefundStatus(
        out_refund_no=notification.out_biz_no,
        state=RefundState.SUCCEEDED,
        channel_state=REFUND_SUCCESS,
        out_trade_no=notification.out_trade_no,
        amount_minor=None,
        currency=CURRENCY,
        succeeded_at=parse_refund_time(notification.gmt_refund),
    )
