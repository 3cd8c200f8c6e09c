"""Refunds in the WeChat Pay emulator: ``POST /v3/refund/domestic/refunds`` and its query, with
WeChat's rules, the refund's life (PROCESSING, then SUCCESS — or ABNORMAL / CLOSED when the
sandbox is told so — after a time-scaled delay) and the resources the API and the refund
callback show.

Rules, from WeChat's refund API error table: only a paid order can be refunded (404
RESOURCE_NOT_EXISTS "订单号不存在" otherwise); ``amount.total`` must be the order's; refunds that
did not close may not add up past the total (400 INVALID_REQUEST "申请退款金额超过订单可退金额",
or "订单已全额退款"); an order takes at most 50 refunds; the same out_refund_no with the same
order and amounts is the same refund, with others 400 INVALID_REQUEST
"订单金额或退款金额与之前请求不一致，请核实后再试".
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mock_channels.wechatpay_crypto import random_digits
from mock_channels.wechatpay_errors import ApiError
from mock_channels.wechatpay_models import CreateRefundBody
from mock_channels.wechatpay_notify import notification_body
from mock_channels.wechatpay_state import (
    BEIJING,
    PAID_STATES,
    Merchant,
    Order,
    OrderEvent,
    rfc3339,
)

# Change-wallet refunds arrive "within 5 minutes"; the sandbox settles after this many seconds
# times its time scale.
REFUND_PROCESSING_S = 10.0
MAX_REFUNDS_PER_ORDER = 50
USER_RECEIVED_ACCOUNT = "支付用户零钱"


class RefundStatus(enum.StrEnum):
    PROCESSING = "PROCESSING"
    SUCCESS = "SUCCESS"
    CLOSED = "CLOSED"
    ABNORMAL = "ABNORMAL"


# The callback each final state sends: event_type and summary.
NOTIFICATIONS: dict[RefundStatus, tuple[str, str]] = {
    RefundStatus.SUCCESS: ("REFUND.SUCCESS", "退款成功"),
    RefundStatus.ABNORMAL: ("REFUND.ABNORMAL", "退款异常"),
    RefundStatus.CLOSED: ("REFUND.CLOSED", "退款关闭"),
}
OUTCOMES: dict[str, RefundStatus] = {
    "success": RefundStatus.SUCCESS,
    "abnormal": RefundStatus.ABNORMAL,
    "closed": RefundStatus.CLOSED,
}


def _mismatch() -> ApiError:
    return ApiError(400, "INVALID_REQUEST", "订单金额或退款金额与之前请求不一致，请核实后再试")


def _refund_id(now: dt.datetime) -> str:
    """29 digits, shaped like WeChat's ``50000000382019052709732678859``."""
    return "5030" + now.astimezone(BEIJING).strftime("%Y%m%d") + random_digits(17)


@dataclass
class Refund:
    """One refund, keyed by (mchid, out_refund_no)."""

    order: Order
    out_refund_no: str
    refund_id: str
    refund: int
    reason: str | None
    notify_url: str | None
    created_at: dt.datetime
    settle_at: dt.datetime
    status: RefundStatus = RefundStatus.PROCESSING
    success_time: dt.datetime | None = None
    notification_id: str | None = None
    callback_attempts: list[dict[str, Any]] = field(default_factory=list)
    callbacks_lost: int = 0

    @property
    def counts(self) -> bool:
        """Whether it takes from the refundable amount (a closed refund gave it back)."""
        return self.status is not RefundStatus.CLOSED

    def _amount(self) -> dict[str, Any]:
        paid = self.order.total if self.order.paid_total is None else self.order.paid_total
        return {"total": self.order.total, "refund": self.refund, "payer_total": paid}

    def resource(self) -> dict[str, Any]:
        """The refund as the refund API and the refund query answer it."""
        resource: dict[str, Any] = {
            "refund_id": self.refund_id,
            "out_refund_no": self.out_refund_no,
            "transaction_id": self.order.transaction_id,
            "out_trade_no": self.order.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": USER_RECEIVED_ACCOUNT,
        }
        if self.success_time is not None:
            resource["success_time"] = rfc3339(self.success_time)
        amount = self._amount()
        resource |= {
            "create_time": rfc3339(self.created_at),
            "status": self.status.value,
            "funds_account": "AVAILABLE",
            "amount": {
                "total": amount["total"],
                "refund": self.refund,
                "from": [],
                "payer_total": amount["payer_total"],
                "payer_refund": self.refund,
                "settlement_refund": self.refund,
                "settlement_total": amount["total"],
                "discount_refund": 0,
                "currency": self.order.currency,
                "refund_fee": 0,
            },
            "promotion_detail": [],
        }
        return resource

    def notification_resource(self) -> dict[str, Any]:
        """The decrypted resource of a ``REFUND.*`` callback (state named ``refund_status``)."""
        resource: dict[str, Any] = {
            "mchid": self.order.mchid,
            "transaction_id": self.order.transaction_id,
            "out_trade_no": self.order.out_trade_no,
            "refund_id": self.refund_id,
            "out_refund_no": self.out_refund_no,
            "refund_status": self.status.value,
        }
        if self.success_time is not None:
            resource["success_time"] = rfc3339(self.success_time)
        amount = self._amount()
        resource["user_received_account"] = USER_RECEIVED_ACCOUNT
        resource["amount"] = {**amount, "payer_refund": self.refund}
        return resource

    def admin_view(self) -> dict[str, Any]:
        return {
            "mchid": self.order.mchid,
            "refund": self.resource(),
            "notify_url": self.notify_url,
            "settle_at": rfc3339(self.settle_at, millis=True),
            "notification_id": self.notification_id,
            "callback_attempts": list(self.callback_attempts),
            "callbacks_lost": self.callbacks_lost,
        }


def refund_notification_body(merchant: Merchant, refund: Refund, now: dt.datetime) -> bytes:
    """The ``REFUND.*`` notification of a refund in a final state."""
    event_type, summary = NOTIFICATIONS[refund.status]
    return notification_body(
        merchant,
        notification_id=refund.notification_id or str(uuid.uuid4()),
        event_type=event_type,
        summary=summary,
        original_type="refund",
        resource=refund.notification_resource(),
        now=now,
    )


# Called when a refund reaches a final state: sends its callback.
Notify = Callable[[Merchant, Refund, dt.datetime], None]


@dataclass
class RefundDesk:
    """Every refund of one sandbox, in memory, and the rules for making them."""

    time_scale: float
    notify: Notify
    by_key: dict[tuple[str, str], Refund] = field(default_factory=dict)
    by_order: dict[tuple[str, str], list[Refund]] = field(default_factory=dict)
    # Per merchant: how refunds end after the delay ("hold" keeps them PROCESSING).
    modes: dict[str, str] = field(default_factory=dict)

    def get(self, mchid: str, out_refund_no: str) -> Refund | None:
        return self.by_key.get((mchid, out_refund_no))

    def find(self, out_refund_no: str) -> list[Refund]:
        return [refund for (_, number), refund in self.by_key.items() if number == out_refund_no]

    def of_order(self, order: Order) -> list[Refund]:
        return self.by_order.get((order.mchid, order.out_trade_no), [])

    def create(
        self, order: Order | None, body: CreateRefundBody, now: dt.datetime
    ) -> tuple[Refund, bool]:
        """The refund for this request, and whether it is new (False: the same request again)."""
        if order is None or order.refresh(now) not in PAID_STATES:
            raise ApiError(404, "RESOURCE_NOT_EXISTS", "订单号不存在")
        existing = self.get(order.mchid, body.out_refund_no)
        if existing is not None:
            same = (
                existing.order is order
                and existing.refund == body.amount.refund
                and body.amount.total == order.total
            )
            if not same:
                raise _mismatch()
            return existing, False
        if body.amount.total != order.total:
            raise _mismatch()
        taken = [refund for refund in self.of_order(order) if refund.counts]
        refundable = order.total - sum(refund.refund for refund in taken)
        if refundable <= 0:
            raise ApiError(400, "INVALID_REQUEST", "订单已全额退款")
        if body.amount.refund > refundable:
            raise ApiError(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
        if len(self.of_order(order)) >= MAX_REFUNDS_PER_ORDER:
            raise ApiError(400, "INVALID_REQUEST", "订单退款次数已达上限")
        refund = Refund(
            order=order,
            out_refund_no=body.out_refund_no,
            refund_id=_refund_id(now),
            refund=body.amount.refund,
            reason=body.reason,
            notify_url=body.notify_url,
            created_at=now,
            settle_at=now + dt.timedelta(seconds=REFUND_PROCESSING_S * self.time_scale),
        )
        order.apply(OrderEvent.REFUND)
        self.by_key[(order.mchid, refund.out_refund_no)] = refund
        self.by_order.setdefault((order.mchid, order.out_trade_no), []).append(refund)
        return refund, True

    def refresh(self, merchant: Merchant, refund: Refund, now: dt.datetime) -> RefundStatus:
        """A PROCESSING refund past its delay ends as the merchant's refund mode says."""
        mode = self.modes.get(merchant.mchid, "success")
        if refund.status is RefundStatus.PROCESSING and now >= refund.settle_at and mode != "hold":
            self.settle(merchant, refund, OUTCOMES[mode], refund.settle_at)
        return refund.status

    def settle(
        self, merchant: Merchant, refund: Refund, outcome: RefundStatus, at: dt.datetime
    ) -> None:
        """End a PROCESSING refund and send its callback; a final refund is refused (409)."""
        if refund.status is not RefundStatus.PROCESSING:
            raise ApiError(409, "REFUND_FINAL", f"the refund is already {refund.status.value}")
        refund.status = outcome
        if outcome is RefundStatus.SUCCESS:
            refund.success_time = at
        refund.notification_id = str(uuid.uuid4())
        self.notify(merchant, refund, at)
