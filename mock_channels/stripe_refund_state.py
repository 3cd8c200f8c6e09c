"""What the Stripe emulator knows about money after a charge: refunds with their status table,
and balance transactions (a charge's, a refund's, a failed refund's), each rendered as
Stripe's API shows it (docs.stripe.com/api/refunds/object,
docs.stripe.com/api/balance_transactions/object).

A refund is ``pending`` or ``succeeded`` when made; a pending one settles ``succeeded`` or
``failed`` later, and a card refund may turn ``failed`` after having been ``succeeded`` (Stripe's
``pm_card_refundFail``). ``requires_action`` and ``canceled`` (refunds that need the shopper's
details) are not emulated.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Any


def _now() -> int:
    return int(time.time())


class RefundStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RefundEvent(enum.StrEnum):
    SETTLE = "settle"
    FAIL = "fail"


REFUND_TRANSITIONS: dict[tuple[RefundStatus, RefundEvent], RefundStatus] = {
    (RefundStatus.PENDING, RefundEvent.SETTLE): RefundStatus.SUCCEEDED,
    (RefundStatus.PENDING, RefundEvent.FAIL): RefundStatus.FAILED,
    (RefundStatus.SUCCEEDED, RefundEvent.FAIL): RefundStatus.FAILED,
}

# Stripe's failure reasons (docs.stripe.com/api/refunds/object#refund_object-failure_reason).
FAILURE_REASONS = frozenset(
    {
        "lost_or_stolen_card",
        "expired_or_canceled_card",
        "charge_for_pending_refund_disputed",
        "insufficient_funds",
        "declined",
        "merchant_request",
        "unknown",
    }
)


class IllegalRefundTransition(Exception):
    def __init__(self, status: RefundStatus, event: RefundEvent) -> None:
        super().__init__(f"a refund cannot {event.value} in status {status.value}")
        self.status = status
        self.event = event


@dataclass
class Refund:
    id: str
    account_id: str
    amount: int
    currency: str
    charge: str
    payment_intent: str
    reason: str | None
    metadata: dict[str, str]
    balance_transaction: str
    status: RefundStatus = RefundStatus.SUCCEEDED
    failure_reason: str | None = None
    failure_balance_transaction: str | None = None
    created: int = field(default_factory=_now)

    def apply(self, event: RefundEvent) -> RefundStatus:
        try:
            self.status = REFUND_TRANSITIONS[(self.status, event)]
        except KeyError:
            raise IllegalRefundTransition(self.status, event) from None
        return self.status

    def to_api(self) -> dict[str, Any]:
        rendered: dict[str, Any] = {
            "id": self.id,
            "object": "refund",
            "amount": self.amount,
            "balance_transaction": self.balance_transaction,
            "charge": self.charge,
            "created": self.created,
            "currency": self.currency,
            "destination_details": {"card": {"type": "refund"}, "type": "card"},
            "metadata": dict(self.metadata),
            "payment_intent": self.payment_intent,
            "reason": self.reason,
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": self.status.value,
            "transfer_reversal": None,
        }
        if self.status is RefundStatus.FAILED:
            rendered["failure_balance_transaction"] = self.failure_balance_transaction
            rendered["failure_reason"] = self.failure_reason
        return rendered


class TransactionType(enum.StrEnum):
    CHARGE = "charge"
    REFUND = "refund"
    REFUND_FAILURE = "refund_failure"
    # Payouts (``stripe_payouts``): funds added by the sandbox admin, and Connect transfers.
    TOPUP = "topup"
    TRANSFER = "transfer"


# Funds of a card charge become available two days later (Stripe's default in the US).
AVAILABLE_AFTER_S = 2 * 24 * 3600


@dataclass
class BalanceTransaction:
    """Money in or out of the account's balance. ``amount`` is signed (a refund negative),
    ``fee`` Stripe's fee (none on refunds), ``source`` the charge's or refund's id."""

    id: str
    account_id: str
    type: TransactionType
    amount: int
    fee: int
    currency: str
    source: str
    description: str | None
    created: int = field(default_factory=_now)

    def to_api(self, source: dict[str, Any] | None = None) -> dict[str, Any]:
        """The transaction as Stripe renders it; ``source`` expands the source object."""
        available_on = self.created + AVAILABLE_AFTER_S
        fee_details = []
        if self.fee:
            fee_details.append(
                {
                    "amount": self.fee,
                    "application": None,
                    "currency": self.currency,
                    "description": "Stripe processing fees",
                    "type": "stripe_fee",
                }
            )
        return {
            "id": self.id,
            "object": "balance_transaction",
            "amount": self.amount,
            "available_on": available_on,
            "created": self.created,
            "currency": self.currency,
            "description": self.description,
            "exchange_rate": None,
            "fee": self.fee,
            "fee_details": fee_details,
            "net": self.amount - self.fee,
            "reporting_category": self.type.value,
            "source": source if source is not None else self.source,
            "status": "available" if available_on <= _now() else "pending",
            "type": self.type.value,
        }
