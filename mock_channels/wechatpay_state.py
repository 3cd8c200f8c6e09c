"""What the WeChat Pay emulator knows: merchants, orders, the order state machine, and the
transaction resource exactly as WeChat's query API and payment callback show it.

Orders live in memory only (a restarted sandbox forgets them, as a test wants); merchants and the
platform key are persisted by ``wechatpay_store``.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from mock_channels.wechatpay_crypto import load_merchant_public_key

BEIJING = dt.timezone(dt.timedelta(hours=8))
DEFAULT_FEE_RATE = Decimal("0.006")


def rfc3339(moment: dt.datetime, *, millis: bool = False) -> str:
    """Beijing time like WeChat writes it: ``2018-06-08T10:34:56+08:00``."""
    return moment.astimezone(BEIJING).isoformat(timespec="milliseconds" if millis else "seconds")


class PlatformMode(enum.StrEnum):
    """Which platform credential a merchant verifies with; decides ``Wechatpay-Serial``."""

    PUBLIC_KEY = "public_key"
    CERTIFICATE = "certificate"


@dataclass(frozen=True, slots=True)
class Merchant:
    mchid: str
    appid: str
    merchant_serial_no: str
    merchant_public_key_pem: str
    apiv3_key: str
    platform_mode: PlatformMode
    public_key: rsa.RSAPublicKey = field(repr=False, compare=False)
    # The fee rate the trade bill charges (0.006 = 0.60%, WeChat's common rate).
    fee_rate: Decimal = DEFAULT_FEE_RATE

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Merchant:
        pem = str(record["merchant_public_key_pem"])
        return cls(
            mchid=str(record["mchid"]),
            appid=str(record["appid"]),
            merchant_serial_no=str(record["merchant_serial_no"]),
            merchant_public_key_pem=pem,
            apiv3_key=str(record["apiv3_key"]),
            platform_mode=PlatformMode(record.get("platform_mode", PlatformMode.PUBLIC_KEY)),
            public_key=load_merchant_public_key(pem),
            fee_rate=Decimal(str(record.get("fee_rate", DEFAULT_FEE_RATE))),
        )

    def to_record(self) -> dict[str, str]:
        return {
            "mchid": self.mchid,
            "appid": self.appid,
            "merchant_serial_no": self.merchant_serial_no,
            "merchant_public_key_pem": self.merchant_public_key_pem,
            "apiv3_key": self.apiv3_key,
            "platform_mode": self.platform_mode.value,
            "fee_rate": str(self.fee_rate),
        }


class TradeState(enum.StrEnum):
    NOTPAY = "NOTPAY"
    SUCCESS = "SUCCESS"
    REFUND = "REFUND"
    CLOSED = "CLOSED"
    REVOKED = "REVOKED"
    USERPAYING = "USERPAYING"
    PAYERROR = "PAYERROR"


TRADE_STATE_DESC: dict[TradeState, str] = {
    TradeState.NOTPAY: "订单未支付",
    TradeState.SUCCESS: "支付成功",
    TradeState.REFUND: "转入退款",
    TradeState.CLOSED: "订单已关闭",
    TradeState.REVOKED: "已撤销",
    TradeState.USERPAYING: "用户支付中",
    TradeState.PAYERROR: "支付失败，请重新下单支付",
}

# Trade states in which the shopper's money has moved; such an order can no longer be closed.
PAID_STATES = frozenset({TradeState.SUCCESS, TradeState.REFUND})


class OrderEvent(enum.StrEnum):
    PAY_SUCCESS = "pay_success"
    PAY_FAIL = "pay_fail"
    CLOSE = "close"
    EXPIRE = "expire"
    REFUND = "refund"


TRANSITIONS: dict[tuple[TradeState, OrderEvent], TradeState] = {
    (TradeState.NOTPAY, OrderEvent.PAY_SUCCESS): TradeState.SUCCESS,
    (TradeState.NOTPAY, OrderEvent.PAY_FAIL): TradeState.PAYERROR,
    (TradeState.NOTPAY, OrderEvent.CLOSE): TradeState.CLOSED,
    (TradeState.NOTPAY, OrderEvent.EXPIRE): TradeState.CLOSED,
    # A failed payment leaves the order open: the shopper may try another card.
    (TradeState.PAYERROR, OrderEvent.PAY_SUCCESS): TradeState.SUCCESS,
    (TradeState.PAYERROR, OrderEvent.PAY_FAIL): TradeState.PAYERROR,
    (TradeState.PAYERROR, OrderEvent.CLOSE): TradeState.CLOSED,
    (TradeState.PAYERROR, OrderEvent.EXPIRE): TradeState.CLOSED,
    # Closing twice is accepted by WeChat (204 again).
    (TradeState.CLOSED, OrderEvent.CLOSE): TradeState.CLOSED,
    # An accepted refund (partial or full) turns a paid order's trade_state to REFUND.
    (TradeState.SUCCESS, OrderEvent.REFUND): TradeState.REFUND,
    (TradeState.REFUND, OrderEvent.REFUND): TradeState.REFUND,
}


class IllegalTransition(Exception):
    def __init__(self, state: TradeState, event: OrderEvent) -> None:
        super().__init__(f"{event.value} is not allowed in trade_state {state.value}")
        self.state = state
        self.event = event


@dataclass
class Order:
    """One WeChat transaction, keyed by (mchid, out_trade_no)."""

    mchid: str
    appid: str
    out_trade_no: str
    trade_type: str
    # The create request as WeChat compares it for idempotency (defaults filled in).
    params: dict[str, Any]
    credential: dict[str, str]
    notify_url: str
    total: int
    currency: str
    attach: str | None
    created_at: dt.datetime
    expire_at: dt.datetime | None
    trade_state: TradeState = TradeState.NOTPAY
    transaction_id: str | None = None
    success_time: dt.datetime | None = None
    payer_openid: str | None = None
    bank_type: str | None = None
    paid_total: int | None = None
    paid_currency: str | None = None
    notification_id: str | None = None
    callback_attempts: list[dict[str, Any]] = field(default_factory=list)
    callbacks_lost: int = 0

    def apply(self, event: OrderEvent) -> TradeState:
        """Move along ``TRANSITIONS``; anything not in the table is refused."""
        try:
            self.trade_state = TRANSITIONS[(self.trade_state, event)]
        except KeyError:
            raise IllegalTransition(self.trade_state, event) from None
        return self.trade_state

    def refresh(self, now: dt.datetime) -> TradeState:
        """An unpaid order past its ``time_expire`` reads as CLOSED from then on."""
        if (
            self.expire_at is not None
            and now >= self.expire_at
            and (self.trade_state, OrderEvent.EXPIRE) in TRANSITIONS
        ):
            self.apply(OrderEvent.EXPIRE)
        return self.trade_state

    def transaction_resource(self) -> dict[str, Any]:
        """The order as ``GET /v3/pay/transactions/...`` answers (and the callback carries).

        Before payment WeChat omits transaction_id, trade_type, bank_type, payer, success_time
        and attach, and the amount holds only ``total`` and ``payer_currency``.
        """
        resource: dict[str, Any] = {
            "appid": self.appid,
            "mchid": self.mchid,
            "out_trade_no": self.out_trade_no,
        }
        attempted = self.transaction_id is not None
        if attempted:
            resource["transaction_id"] = self.transaction_id
            resource["trade_type"] = self.trade_type
        resource["trade_state"] = self.trade_state.value
        resource["trade_state_desc"] = TRADE_STATE_DESC[self.trade_state]
        if attempted:
            resource["bank_type"] = self.bank_type
            resource["attach"] = self.attach or ""
        if self.trade_state in PAID_STATES and self.success_time is not None:
            resource["success_time"] = rfc3339(self.success_time)
        if attempted:
            resource["payer"] = {"openid": self.payer_openid}
        if self.trade_state in PAID_STATES:
            paid_total = self.total if self.paid_total is None else self.paid_total
            paid_currency = self.paid_currency or self.currency
            resource["amount"] = {
                "total": paid_total,
                "payer_total": paid_total,
                "currency": paid_currency,
                "payer_currency": paid_currency,
            }
        else:
            resource["amount"] = {"total": self.total, "payer_currency": self.currency}
        resource["promotion_detail"] = []
        return resource

    def admin_view(self, now: dt.datetime) -> dict[str, Any]:
        """Everything the sandbox knows about the order, for ``GET /sandbox/wechatpay/orders``."""
        self.refresh(now)
        return {
            "mchid": self.mchid,
            "out_trade_no": self.out_trade_no,
            "trade_type": self.trade_type,
            "trade_state": self.trade_state.value,
            "created_at": rfc3339(self.created_at),
            "expire_at": rfc3339(self.expire_at, millis=True) if self.expire_at else None,
            "notify_url": self.notify_url,
            "request": self.params,
            "credential": self.credential,
            "transaction": self.transaction_resource(),
            "notification_id": self.notification_id,
            "callback_attempts": list(self.callback_attempts),
            "callbacks_lost": self.callbacks_lost,
        }


@dataclass
class OrderBook:
    """All orders of one sandbox, in memory."""

    by_key: dict[tuple[str, str], Order] = field(default_factory=dict)
    by_transaction_id: dict[str, Order] = field(default_factory=dict)

    def get(self, mchid: str, out_trade_no: str) -> Order | None:
        return self.by_key.get((mchid, out_trade_no))

    def find(self, out_trade_no: str) -> list[Order]:
        """Every merchant's order with this number (the sandbox's shopper needs no mchid)."""
        return [order for (_, number), order in self.by_key.items() if number == out_trade_no]

    def get_by_transaction_id(self, mchid: str, transaction_id: str) -> Order | None:
        order = self.by_transaction_id.get(transaction_id)
        return order if order is not None and order.mchid == mchid else None

    def add(self, order: Order) -> None:
        self.by_key[(order.mchid, order.out_trade_no)] = order

    def index_transaction(self, order: Order) -> None:
        if order.transaction_id is not None:
            self.by_transaction_id[order.transaction_id] = order
