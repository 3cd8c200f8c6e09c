"""What the Alipay emulator knows: applications, trades and their state machine, and a trade
exactly as ``alipay.trade.query`` and the trade notification show it.

A precreated QR code (or an opened page/wap cashier) is not yet a trade at Alipay: it becomes
one when the buyer scans (logs in), so until then query and close answer ACQ.TRADE_NOT_EXIST.
Trades live in memory only; applications and the Alipay key are persisted by ``alipay_store``.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from mock_channels.alipay_crypto import load_app_public_key
from mock_channels.alipay_models import beijing, fen_to_yuan

# 当面付's standard service fee rate (0.6%), the default of the sandbox's trade bills.
DEFAULT_FEE_RATE = Decimal("0.006")


@dataclass(frozen=True, slots=True)
class App:
    app_id: str
    seller_id: str
    app_public_key_pem: str
    public_key: rsa.RSAPublicKey = field(repr=False, compare=False)
    fee_rate: Decimal = DEFAULT_FEE_RATE

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> App:
        pem = str(record["app_public_key_pem"])
        return cls(
            app_id=str(record["app_id"]),
            seller_id=str(record["seller_id"]),
            app_public_key_pem=pem,
            public_key=load_app_public_key(pem),
            fee_rate=Decimal(str(record.get("fee_rate") or DEFAULT_FEE_RATE)),
        )

    def to_record(self) -> dict[str, str]:
        return {
            "app_id": self.app_id,
            "seller_id": self.seller_id,
            "app_public_key_pem": self.app_public_key_pem,
            "fee_rate": str(self.fee_rate),
        }


class TradeStatus(enum.StrEnum):
    # Sandbox-only: the QR code / cashier exists, the trade does not (yet, or ever).
    PENDING = "PENDING"
    LAPSED = "LAPSED"
    # Alipay's trade_status values.
    WAIT_BUYER_PAY = "WAIT_BUYER_PAY"
    TRADE_SUCCESS = "TRADE_SUCCESS"
    TRADE_FINISHED = "TRADE_FINISHED"
    TRADE_CLOSED = "TRADE_CLOSED"


EXISTING = frozenset(
    {
        TradeStatus.WAIT_BUYER_PAY,
        TradeStatus.TRADE_SUCCESS,
        TradeStatus.TRADE_FINISHED,
        TradeStatus.TRADE_CLOSED,
    }
)
PAID = frozenset({TradeStatus.TRADE_SUCCESS, TradeStatus.TRADE_FINISHED})


class TradeEvent(enum.StrEnum):
    SCAN = "scan"
    PAY = "pay"
    CLOSE = "close"
    EXPIRE = "expire"
    # The refunds reached the trade's total: Alipay closes the trade (TRADE_CLOSED).
    REFUND_ALL = "refund_all"


TRANSITIONS: dict[tuple[TradeStatus, TradeEvent], TradeStatus] = {
    (TradeStatus.PENDING, TradeEvent.SCAN): TradeStatus.WAIT_BUYER_PAY,
    (TradeStatus.PENDING, TradeEvent.EXPIRE): TradeStatus.LAPSED,
    (TradeStatus.WAIT_BUYER_PAY, TradeEvent.SCAN): TradeStatus.WAIT_BUYER_PAY,
    (TradeStatus.WAIT_BUYER_PAY, TradeEvent.PAY): TradeStatus.TRADE_SUCCESS,
    (TradeStatus.WAIT_BUYER_PAY, TradeEvent.CLOSE): TradeStatus.TRADE_CLOSED,
    (TradeStatus.WAIT_BUYER_PAY, TradeEvent.EXPIRE): TradeStatus.TRADE_CLOSED,
    (TradeStatus.TRADE_SUCCESS, TradeEvent.REFUND_ALL): TradeStatus.TRADE_CLOSED,
}


class IllegalTransition(Exception):
    def __init__(self, status: TradeStatus, event: TradeEvent) -> None:
        super().__init__(f"{event.value} is not allowed in {status.value}")
        self.status = status
        self.event = event


@dataclass
class Refund:
    """One refund of a trade, under its out_request_no (Alipay refunds at once or refuses)."""

    out_request_no: str
    amount_fen: int
    reason: str | None
    gmt_refund_pay: dt.datetime
    notify_id: str
    notify_attempts: list[dict[str, Any]] = field(default_factory=list)

    def admin_view(self) -> dict[str, Any]:
        return {
            "out_request_no": self.out_request_no,
            "refund_amount": fen_to_yuan(self.amount_fen),
            "refund_reason": self.reason,
            "gmt_refund_pay": beijing(self.gmt_refund_pay),
            "notify_id": self.notify_id,
            "notify_attempts": list(self.notify_attempts),
        }


@dataclass
class Trade:
    """One out_trade_no of one app, from the QR code (or cashier) on."""

    app_id: str
    seller_id: str
    out_trade_no: str
    api_method: str
    # The create request as compared for ACQ.CONTEXT_INCONSISTENT.
    identity: dict[str, Any]
    notify_url: str | None
    total_fen: int
    subject: str
    body: str | None
    passback_params: str | None
    created_at: dt.datetime
    expire_at: dt.datetime | None
    qr_code: str | None = None
    status: TradeStatus = TradeStatus.PENDING
    trade_no: str | None = None
    buyer_id: str | None = None
    buyer_logon_id: str | None = None
    gmt_create: dt.datetime | None = None
    gmt_payment: dt.datetime | None = None
    gmt_close: dt.datetime | None = None
    paid_fen: int | None = None
    notify_id: str | None = None
    notify_attempts: list[dict[str, Any]] = field(default_factory=list)
    notifies_lost: int = 0
    refunds: dict[str, Refund] = field(default_factory=dict)

    @property
    def exists(self) -> bool:
        """Whether Alipay knows the trade (query/close find it)."""
        return self.status in EXISTING

    def apply(self, event: TradeEvent) -> TradeStatus:
        """Move along ``TRANSITIONS``; anything not in the table is refused."""
        try:
            self.status = TRANSITIONS[(self.status, event)]
        except KeyError:
            raise IllegalTransition(self.status, event) from None
        return self.status

    def refresh(self, now: dt.datetime) -> TradeStatus:
        """Past ``expire_at``, an unpaid trade closes (a QR code never scanned lapses)."""
        expired = self.expire_at is not None and now >= self.expire_at
        if expired and (self.status, TradeEvent.EXPIRE) in TRANSITIONS:
            self.apply(TradeEvent.EXPIRE)
            self.gmt_close = self.expire_at
        return self.status

    @property
    def paid_total_fen(self) -> int:
        return self.paid_fen if self.paid_fen is not None else self.total_fen

    @property
    def refunded_fen(self) -> int:
        return sum(refund.amount_fen for refund in self.refunds.values())

    def reported_total(self) -> str:
        return fen_to_yuan(self.paid_total_fen)

    def query_content(self) -> dict[str, Any]:
        """The trade as ``alipay_trade_query_response`` shows it (code 10000)."""
        paid = self.status in PAID
        amount = self.reported_total()
        content: dict[str, Any] = {
            "code": "10000",
            "msg": "Success",
            "trade_no": self.trade_no,
            "out_trade_no": self.out_trade_no,
            "buyer_logon_id": self.buyer_logon_id,
            "trade_status": self.status.value,
            "total_amount": fen_to_yuan(self.total_fen) if not paid else amount,
            "buyer_pay_amount": amount if paid else "0.00",
            "point_amount": "0.00",
            "invoice_amount": amount if paid else "0.00",
        }
        if paid and self.gmt_payment is not None:
            content["send_pay_date"] = beijing(self.gmt_payment)
        content["receipt_amount"] = amount if paid else "0.00"
        content["buyer_user_id"] = self.buyer_id
        if paid:
            content["fund_bill_list"] = [{"amount": amount, "fund_channel": "ALIPAYACCOUNT"}]
        return content

    def notification_fields(self, now: dt.datetime) -> dict[str, str]:
        """A trade_status_sync notification's fields, before ``sign``."""
        amount = self.reported_total()
        fields = {
            "gmt_create": beijing(self.gmt_create or self.created_at),
            "charset": "utf-8",
            "seller_id": self.seller_id,
            "subject": self.subject,
            "buyer_id": self.buyer_id or "",
            "invoice_amount": amount,
            "notify_id": self.notify_id or "",
            "fund_bill_list": f'[{{"amount":"{amount}","fundChannel":"ALIPAYACCOUNT"}}]',
            "notify_type": "trade_status_sync",
            "trade_status": self.status.value,
            "receipt_amount": amount,
            "app_id": self.app_id,
            "buyer_pay_amount": amount,
            "sign_type": "RSA2",
            "gmt_payment": beijing(self.gmt_payment or now),
            "notify_time": beijing(now),
            "version": "1.0",
            "out_trade_no": self.out_trade_no,
            "total_amount": amount,
            "trade_no": self.trade_no or "",
            "auth_app_id": self.app_id,
            "point_amount": "0.00",
        }
        if self.body:
            fields["body"] = self.body
        if self.passback_params:
            fields["passback_params"] = self.passback_params
        return fields

    def admin_view(self, now: dt.datetime) -> dict[str, Any]:
        """Everything the sandbox knows, for ``GET /sandbox/alipay/orders/{out_trade_no}``."""
        self.refresh(now)
        return {
            "app_id": self.app_id,
            "out_trade_no": self.out_trade_no,
            "method": self.api_method,
            "status": self.status.value,
            "exists_at_alipay": self.exists,
            "total_amount": fen_to_yuan(self.total_fen),
            "subject": self.subject,
            "qr_code": self.qr_code,
            "trade_no": self.trade_no,
            "created_at": beijing(self.created_at),
            "expire_at": beijing(self.expire_at) if self.expire_at else None,
            "notify_url": self.notify_url,
            "request": self.identity,
            "query": self.query_content() if self.exists else None,
            "notify_id": self.notify_id,
            "notify_attempts": list(self.notify_attempts),
            "notifies_lost": self.notifies_lost,
            "refunds": [refund.admin_view() for refund in self.refunds.values()],
        }


@dataclass
class TradeBook:
    """All trades of one sandbox, in memory."""

    by_key: dict[tuple[str, str], Trade] = field(default_factory=dict)
    by_trade_no: dict[str, Trade] = field(default_factory=dict)

    def get(self, app_id: str, out_trade_no: str) -> Trade | None:
        return self.by_key.get((app_id, out_trade_no))

    def get_by_trade_no(self, app_id: str, trade_no: str) -> Trade | None:
        trade = self.by_trade_no.get(trade_no)
        return trade if trade is not None and trade.app_id == app_id else None

    def find(self, out_trade_no: str) -> list[Trade]:
        """Every app's trade with this number (the sandbox's shopper needs no app_id)."""
        return [trade for (_, number), trade in self.by_key.items() if number == out_trade_no]

    def add(self, trade: Trade) -> None:
        self.by_key[(trade.app_id, trade.out_trade_no)] = trade

    def index_trade_no(self, trade: Trade) -> None:
        if trade.trade_no is not None:
            self.by_trade_no[trade.trade_no] = trade
