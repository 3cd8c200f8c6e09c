"""What the WeChat emulator does after a payment, as its v3 routes and admin API call it:
refunds and their query, the refund controls, trade bills and their download.

Functions of the sandbox's state; the rules live in ``wechatpay_refunds`` and
``wechatpay_bills``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import ValidationError

from mock_channels.wechatpay_bills import parse_bill_query, render_tradebill
from mock_channels.wechatpay_errors import ApiError, param_error, parse_json_object
from mock_channels.wechatpay_models import (
    CreateRefundBody,
    FieldIssue,
    RefundMode,
    SettleRefund,
    first_issue,
)
from mock_channels.wechatpay_refunds import OUTCOMES, Refund
from mock_channels.wechatpay_sandbox import WeChatPaySandbox
from mock_channels.wechatpay_state import Merchant


def create_refund(
    sandbox: WeChatPaySandbox, merchant: Merchant, body: bytes, now: dt.datetime
) -> dict[str, Any]:
    try:
        request = CreateRefundBody.model_validate(parse_json_object(body))
    except ValidationError as exc:
        raise param_error(first_issue(exc)) from None
    if (request.transaction_id is None) == (request.out_trade_no is None):
        issue = "transaction_id 与 out_trade_no 必须二选一"
        raise param_error(FieldIssue(field="/out_trade_no", issue=issue))
    if request.out_trade_no is not None:
        order = sandbox.orders.get(merchant.mchid, request.out_trade_no)
    else:
        order = sandbox.orders.get_by_transaction_id(merchant.mchid, request.transaction_id or "")
    refund, new = sandbox.refunds.create(order, request, now)
    if new:
        sandbox.schedule_refund(merchant, refund)
    sandbox.refunds.refresh(merchant, refund, now)
    return refund.resource()


def query_refund(
    sandbox: WeChatPaySandbox, merchant: Merchant, out_refund_no: str, now: dt.datetime
) -> dict[str, Any]:
    refund = sandbox.refunds.get(merchant.mchid, out_refund_no)
    if refund is None:
        raise ApiError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
    sandbox.refunds.refresh(merchant, refund, now)
    return refund.resource()


def tradebill(
    sandbox: WeChatPaySandbox, merchant: Merchant, query: dict[str, str], base_url: str
) -> dict[str, str]:
    day, bill_type = parse_bill_query(query.get("bill_date"), query.get("bill_type"))
    tar_type = query.get("tar_type")
    if tar_type not in (None, "GZIP"):
        raise ApiError(400, "PARAM_ERROR", f"tar_type 不支持 {tar_type}")
    orders = [order for order in sandbox.orders.by_key.values() if order.mchid == merchant.mchid]
    refunds = [
        refund for (mchid, _), refund in sandbox.refunds.by_key.items() if mchid == merchant.mchid
    ]
    edits = sandbox.statement_edits.of(merchant.mchid)
    raw = render_tradebill(merchant, orders, refunds, day, bill_type, edits)
    if raw is None:
        raise ApiError(400, "NO_STATEMENT_EXIST", "账单文件不存在")
    return sandbox.bills.offer(merchant.mchid, raw, gzipped=tar_type == "GZIP", base_url=base_url)


def download_bill(sandbox: WeChatPaySandbox, merchant: Merchant, token: str | None) -> bytes:
    return sandbox.bills.take(merchant.mchid, token)


# -- the sandbox admin API ------------------------------------------------------------------


def _admin_refund(
    sandbox: WeChatPaySandbox, mchid: str | None, out_refund_no: str
) -> tuple[Merchant, Refund]:
    if mchid:
        refund = sandbox.refunds.get(mchid, out_refund_no)
    else:
        found = sandbox.refunds.find(out_refund_no)
        if len(found) > 1:
            raise ApiError(409, "AMBIGUOUS", "several merchants have this refund; give mchid")
        refund = found[0] if found else None
    merchant = sandbox.merchants.get(refund.order.mchid) if refund is not None else None
    if refund is None or merchant is None:
        raise ApiError(404, "RESOURCE_NOT_EXISTS", "no such refund")
    return merchant, refund


def refund_view(
    sandbox: WeChatPaySandbox, mchid: str | None, out_refund_no: str, now: dt.datetime
) -> dict[str, Any]:
    merchant, refund = _admin_refund(sandbox, mchid, out_refund_no)
    sandbox.refunds.refresh(merchant, refund, now)
    return refund.admin_view()


def settle_refund(
    sandbox: WeChatPaySandbox, out_refund_no: str, request: SettleRefund, now: dt.datetime
) -> dict[str, Any]:
    """End a PROCESSING refund now (success, abnormal or closed) and send its callback."""
    merchant, refund = _admin_refund(sandbox, request.mchid, out_refund_no)
    sandbox.refunds.settle(merchant, refund, OUTCOMES[request.outcome], now)
    return refund.admin_view()


def set_refund_mode(sandbox: WeChatPaySandbox, mchid: str, mode: RefundMode) -> dict[str, str]:
    if mchid not in sandbox.merchants:
        raise ApiError(404, "MCH_NOT_EXISTS", "no such merchant")
    sandbox.refunds.modes[mchid] = mode.outcome
    return {"mchid": mchid, "outcome": mode.outcome}
