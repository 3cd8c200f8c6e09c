"""Refunds in the Alipay emulator: ``alipay.trade.refund`` and
``alipay.trade.fastpay.refund.query`` with Alipay's rules, and the refund notification.

Rules (opendocs 统一收单交易退款接口 / 退款查询, their 业务错误码 tables):

- only a paid trade (TRADE_SUCCESS) is refunded: WAIT_BUYER_PAY → ACQ.TRADE_STATUS_ERROR, closed
  (unpaid, or fully refunded) → ACQ.TRADE_HAS_CLOSE, TRADE_FINISHED → ACQ.TRADE_HAS_FINISHED;
- one refund larger than the trade, or a partial one without out_request_no →
  ACQ.REFUND_AMT_NOT_EQUAL_TOTAL; refunds adding up to more than the trade →
  ACQ.REASON_TRADE_REFUND_FEE_ERR; without out_request_no the refund is numbered by the
  trade's out_trade_no;
- the same out_request_no again: with the same amount, the earlier refund's answer with
  ``fund_change`` "N" (no money moved this time); with another amount →
  ACQ.DISCORDANT_REPEAT_REQUEST;
- a refund reaching the trade's total closes the trade (TRADE_CLOSED);
- ``refund_fee`` in answers and notifications is the trade's total refunded so far;
- the refund query answers 10000 without refund data for a refund it does not know, and
  ``gmt_refund_pay`` only when ``query_options`` asks for it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from mock_channels import alipay_errors as errors
from mock_channels.alipay_models import RefundCreate, RefundQuery, beijing, fen_to_yuan
from mock_channels.alipay_state import Refund, Trade, TradeEvent, TradeStatus

REFUND_SUCCESS = "REFUND_SUCCESS"


def check_refundable(trade: Trade | None) -> Trade:
    if trade is None or not trade.exists:
        raise errors.trade_not_exist()
    if trade.status is TradeStatus.WAIT_BUYER_PAY:
        raise errors.business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
    if trade.status is TradeStatus.TRADE_CLOSED:
        raise errors.business("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
    if trade.status is TradeStatus.TRADE_FINISHED:
        raise errors.business("ACQ.TRADE_HAS_FINISHED", "交易已经完结")
    return trade


def refund(
    trade: Trade | None, request: RefundCreate, now: dt.datetime, notify_id: str
) -> tuple[dict[str, Any], Refund | None]:
    """Refund (part of) a trade: the answer's content and the new refund (None for a repeat)."""
    if trade is None or not trade.exists:
        raise errors.trade_not_exist()
    out_request_no = request.out_request_no or trade.out_trade_no
    earlier = trade.refunds.get(out_request_no)
    if earlier is not None:
        if earlier.amount_fen != request.refund_amount:
            raise errors.business("ACQ.DISCORDANT_REPEAT_REQUEST", "请求信息不一致")
        return answer(trade, earlier, fund_change="N"), None
    check_refundable(trade)
    total = trade.paid_total_fen
    partial = request.refund_amount != total
    if request.refund_amount > total or (partial and request.out_request_no is None):
        raise errors.business("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
    if trade.refunded_fen + request.refund_amount > total:
        raise errors.business("ACQ.REASON_TRADE_REFUND_FEE_ERR", "退款金额无效")
    made = Refund(
        out_request_no=out_request_no,
        amount_fen=request.refund_amount,
        reason=request.refund_reason,
        gmt_refund_pay=now,
        notify_id=notify_id,
    )
    trade.refunds[out_request_no] = made
    if trade.refunded_fen == total:
        trade.apply(TradeEvent.REFUND_ALL)
        trade.gmt_close = now
    return answer(trade, made, fund_change="Y"), made


def answer(trade: Trade, made: Refund, *, fund_change: str) -> dict[str, Any]:
    """``alipay_trade_refund_response`` for one refund (code 10000)."""
    return {
        "code": "10000",
        "msg": "Success",
        "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
        "buyer_logon_id": trade.buyer_logon_id,
        "fund_change": fund_change,
        "refund_fee": fen_to_yuan(trade.refunded_fen),
        "gmt_refund_pay": beijing(made.gmt_refund_pay),
        "buyer_user_id": trade.buyer_id,
    }


def query(trade: Trade | None, request: RefundQuery) -> dict[str, Any]:
    """``alipay_trade_fastpay_refund_query_response`` (code 10000, with or without a refund)."""
    if trade is None or not trade.exists:
        raise errors.trade_not_exist()
    made = trade.refunds.get(request.out_request_no)
    if made is None:
        # "如果没有查询到则代表未退款成功": a success answer that carries no refund.
        return {"code": "10000", "msg": "Success"}
    content: dict[str, Any] = {
        "code": "10000",
        "msg": "Success",
        "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
        "out_request_no": made.out_request_no,
        "total_amount": fen_to_yuan(trade.total_fen),
        "refund_amount": fen_to_yuan(made.amount_fen),
        "refund_status": REFUND_SUCCESS,
    }
    if made.reason:
        content["refund_reason"] = made.reason
    if "gmt_refund_pay" in request.query_options:
        content["gmt_refund_pay"] = beijing(made.gmt_refund_pay)
    return content


def notification_fields(trade: Trade, made: Refund, now: dt.datetime) -> dict[str, str]:
    """The trade notification Alipay sends for a refund: the trade's fields and status (still
    TRADE_SUCCESS after a partial refund, TRADE_CLOSED after a full one) plus ``out_biz_no``
    (the refund's out_request_no), ``refund_fee`` (total refunded) and ``gmt_refund``."""
    fields = trade.notification_fields(now)
    millis = made.gmt_refund_pay.microsecond // 1000
    fields |= {
        "notify_id": made.notify_id,
        "trade_status": trade.status.value,
        "out_biz_no": made.out_request_no,
        "refund_fee": fen_to_yuan(trade.refunded_fen),
        "gmt_refund": f"{beijing(made.gmt_refund_pay)}.{millis:03d}",
    }
    if trade.status is TradeStatus.TRADE_CLOSED and trade.gmt_close is not None:
        fields["gmt_close"] = beijing(trade.gmt_close)
    return fields
