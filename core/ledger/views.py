"""The merchant API's JSON shapes of balances and settlements (gateway/openapi_models.py
documents them)."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from core.ledger.balances import CurrencyBalance
from core.ledger.settlement import SETTLEMENT_TZ, Settlement
from core.views import iso


def balance_object(balances: list[CurrencyBalance], *, livemode: bool) -> dict[str, Any]:
    return {
        "object": "balance",
        "livemode": livemode,
        "pending": [{"currency": b.currency, "amount": b.pending_minor} for b in balances],
        "available": [{"currency": b.currency, "amount": b.available_minor} for b in balances],
    }


def settlement_object(settlement: Settlement) -> dict[str, Any]:
    return {
        "object": "settlement",
        "date": settlement.day.isoformat(),
        "timezone": SETTLEMENT_TZ.key,
        "currency": settlement.currency,
        "collected": settlement.collected_minor,
        "refunded": settlement.refunded_minor,
        "fees": settlement.fees_minor,
        "payable": settlement.payable_minor,
        "payment_count": settlement.payments,
        "refund_count": settlement.refunds,
        "status": settlement.status.value,
        "available_at": iso(settlement.available_at.astimezone(UTC)),
        "settlement": None
        if settlement.entry_id is None or settlement.settled_at is None
        else {
            "entry_id": settlement.entry_id,
            "amount": settlement.settled_minor,
            "settled_at": iso(settlement.settled_at),
        },
        "livemode": settlement.livemode,
    }
