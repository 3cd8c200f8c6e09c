"""The public JSON shapes of payfront's objects (API answers and webhook payloads)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Row


class AsRow:
    """Values just inserted, read like a row read back: lets a view render an object in the
    transaction that writes it, without selecting it again."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.isoformat().replace("+00:00", "Z")


def _failure(pay: Any) -> dict[str, str] | None:
    if pay.failure_code is None:
        return None
    return {"code": pay.failure_code, "message": pay.failure_message or ""}


def payment_object(pay: Any, trade: Any) -> dict[str, Any]:
    """A pay order with its trade, as merchants see it (``GET /v1/payments/{pay_no}``)."""
    return {
        "object": "payment",
        "pay_no": pay.pay_no,
        "trade_no": pay.trade_no,
        "token": pay.token,
        "status": pay.status,
        "amount": pay.amount_minor,
        "currency": pay.currency,
        "merchant_order_no": trade.merchant_order_no,
        "channel": pay.channel,
        "method": pay.method,
        "description": pay.description,
        "metadata": trade.metadata,
        "credential": pay.credential,
        "failure": _failure(pay),
        "expires_at": iso(pay.expires_at),
        "created_at": iso(pay.created_at),
        "paid_at": iso(pay.paid_at),
        "paid_amount": pay.paid_minor,
        # Refunds succeeded or still in progress (failed ones give their amount back).
        "amount_refunded": pay.refunded_minor,
        "livemode": pay.livemode,
    }


def refund_object(refund: Any) -> dict[str, Any]:
    """A refund, as merchants see it (``GET /v1/refunds/{refund_no}``)."""
    return {
        "object": "refund",
        "refund_no": refund.refund_no,
        "pay_no": refund.pay_no,
        "trade_no": refund.trade_no,
        "merchant_refund_no": refund.merchant_refund_no,
        "status": refund.status,
        "amount": refund.amount_minor,
        "currency": refund.currency,
        "channel": refund.channel,
        "reason": refund.reason,
        "metadata": refund.metadata,
        "failure": _failure(refund),
        "created_at": iso(refund.created_at),
        "succeeded_at": iso(refund.succeeded_at),
        "livemode": refund.livemode,
    }


def token_object(pay: Row[Any]) -> dict[str, Any]:
    """What a shopper's front-end may see through the token: no merchant data beyond this."""
    return {
        "object": "token",
        "token": pay.token,
        "pay_no": pay.pay_no,
        "status": pay.status,
        "amount": pay.amount_minor,
        "currency": pay.currency,
        "description": pay.description,
        "expires_at": iso(pay.expires_at),
        "credential": pay.credential,
        "failure": _failure(pay),
    }
