"""What the Stripe emulator knows: accounts, PaymentIntents and their state machine, charges
and events, each rendered exactly as Stripe's API shows it (refunds and balance transactions:
``stripe_refund_state``), and the book that holds them all.

Objects live in memory only (a restarted sandbox forgets them, as a test wants); accounts are
persisted by ``stripe_store``.
"""

from __future__ import annotations

import enum
import secrets
import string
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from mock_channels.stripe_refund_state import BalanceTransaction, Refund

# The API version the sandbox renders objects and events in.
SANDBOX_API_VERSION = "2025-03-31.basil"

_ALNUM = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    """``pi_…``, ``ch_…``, ``evt_…``: a prefix and random letters and digits, as Stripe's."""
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


def unix_now() -> int:
    return int(time.time())


# -- accounts -------------------------------------------------------------------------------


@dataclass
class WebhookSecret:
    secret: str
    # Unix time after which a rolled (previous) secret no longer signs; None while current.
    expires_at: float | None = None


@dataclass
class Account:
    """A Stripe account with one secret key and one webhook endpoint."""

    account_id: str
    secret_key: str
    webhook_secrets: list[WebhookSecret]
    webhook_url: str | None = None
    enabled_events: list[str] = field(default_factory=lambda: ["*"])
    created: int = field(default_factory=unix_now)
    # Stripe's fee on a charge: percent of the amount (rounded half up) plus a fixed part in
    # the currency's smallest unit (2.9% + 30 is Stripe's US card price).
    fee_percent: Decimal = Decimal("2.9")
    fee_fixed: int = 30
    # "auto": a pending refund settles by itself a while later; "manual": only when told to
    # (``POST /sandbox/stripe/refunds/{id}/settle``).
    refund_settlement: Literal["auto", "manual"] = "auto"

    @property
    def webhook_secret(self) -> str:
        return self.webhook_secrets[0].secret

    def signing_secrets(self, now: float) -> list[str]:
        """The current secret, then rolled ones not yet expired: Stripe signs with each."""
        return [
            entry.secret
            for entry in self.webhook_secrets
            if entry.expires_at is None or entry.expires_at > now
        ]

    def wants(self, event_type: str) -> bool:
        return "*" in self.enabled_events or event_type in self.enabled_events

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Account:
        return cls(
            account_id=str(record["account_id"]),
            secret_key=str(record["secret_key"]),
            webhook_secrets=[
                WebhookSecret(str(entry["secret"]), entry.get("expires_at"))
                for entry in record["webhook_secrets"]
            ],
            webhook_url=record.get("webhook_url"),
            enabled_events=[str(name) for name in record.get("enabled_events", ["*"])],
            created=int(record.get("created", unix_now())),
            fee_percent=Decimal(str(record.get("fee_percent", "2.9"))),
            fee_fixed=int(record.get("fee_fixed", 30)),
            refund_settlement="manual" if record.get("refund_settlement") == "manual" else "auto",
        )

    def to_record(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "secret_key": self.secret_key,
            "webhook_secrets": [
                {"secret": entry.secret, "expires_at": entry.expires_at}
                for entry in self.webhook_secrets
            ],
            "webhook_url": self.webhook_url,
            "enabled_events": self.enabled_events,
            "created": self.created,
            "fee_percent": str(self.fee_percent),
            "fee_fixed": self.fee_fixed,
            "refund_settlement": self.refund_settlement,
        }

    def public_view(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "secret_key": self.secret_key,
            "webhook_secret": self.webhook_secret,
            "webhook_url": self.webhook_url,
            "enabled_events": list(self.enabled_events),
            "fee_percent": str(self.fee_percent),
            "fee_fixed": self.fee_fixed,
            "refund_settlement": self.refund_settlement,
            "livemode": False,
        }


# -- PaymentIntents -------------------------------------------------------------------------


class IntentStatus(enum.StrEnum):
    REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    REQUIRES_CONFIRMATION = "requires_confirmation"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    REQUIRES_CAPTURE = "requires_capture"
    SUCCEEDED = "succeeded"
    CANCELED = "canceled"


class IntentEvent(enum.StrEnum):
    ATTACH_METHOD = "attach_method"  # created with a payment_method, not confirmed
    SUCCEED = "succeed"
    FAIL = "fail"  # a declined attempt: back to requires_payment_method
    PROCESS = "process"  # an asynchronous method is settling
    CANCEL = "cancel"


_OPEN = (
    IntentStatus.REQUIRES_PAYMENT_METHOD,
    IntentStatus.REQUIRES_CONFIRMATION,
    IntentStatus.REQUIRES_ACTION,
)

# docs.stripe.com/payments/paymentintents/lifecycle; cancel is allowed in requires_* states
# (docs.stripe.com/api/payment_intents/cancel).
TRANSITIONS: dict[tuple[IntentStatus, IntentEvent], IntentStatus] = {
    (IntentStatus.REQUIRES_PAYMENT_METHOD, IntentEvent.ATTACH_METHOD): (
        IntentStatus.REQUIRES_CONFIRMATION
    ),
    **{(status, IntentEvent.SUCCEED): IntentStatus.SUCCEEDED for status in _OPEN},
    **{(status, IntentEvent.FAIL): IntentStatus.REQUIRES_PAYMENT_METHOD for status in _OPEN},
    **{(status, IntentEvent.PROCESS): IntentStatus.PROCESSING for status in _OPEN},
    **{(status, IntentEvent.CANCEL): IntentStatus.CANCELED for status in _OPEN},
    (IntentStatus.REQUIRES_CAPTURE, IntentEvent.CANCEL): IntentStatus.CANCELED,
    (IntentStatus.PROCESSING, IntentEvent.SUCCEED): IntentStatus.SUCCEEDED,
    (IntentStatus.PROCESSING, IntentEvent.FAIL): IntentStatus.REQUIRES_PAYMENT_METHOD,
}

CANCELABLE = frozenset(status for status, event in TRANSITIONS if event is IntentEvent.CANCEL)


class IllegalTransition(Exception):
    def __init__(self, status: IntentStatus, event: IntentEvent) -> None:
        super().__init__(f"{event.value} is not allowed in status {status.value}")
        self.status = status
        self.event = event


@dataclass
class Charge:
    id: str
    account_id: str
    amount: int
    currency: str
    payment_intent: str
    payment_method: str
    description: str | None
    metadata: dict[str, str]
    succeeded: bool
    failure_code: str | None = None
    failure_message: str | None = None
    decline_code: str | None = None
    amount_refunded: int = 0
    created: int = field(default_factory=unix_now)
    balance_transaction: str | None = None

    def to_api(self) -> dict[str, Any]:
        captured = self.amount if self.succeeded else 0
        return {
            "id": self.id,
            "object": "charge",
            "amount": self.amount,
            "amount_captured": captured,
            "amount_refunded": self.amount_refunded,
            "balance_transaction": self.balance_transaction,
            "captured": self.succeeded,
            "created": self.created,
            "currency": self.currency,
            "description": self.description,
            "failure_code": self.failure_code,
            "failure_message": self.failure_message,
            "livemode": False,
            "metadata": dict(self.metadata),
            "outcome": {
                "network_status": "approved_by_network"
                if self.succeeded
                else "declined_by_network",
                "reason": None if self.succeeded else self.decline_code,
                "risk_level": "normal",
                "seller_message": "Payment complete." if self.succeeded else "The bank declined.",
                "type": "authorized" if self.succeeded else "issuer_declined",
            },
            "paid": self.succeeded,
            "payment_intent": self.payment_intent,
            "payment_method": self.payment_method,
            "refunded": self.succeeded and self.amount_refunded >= self.amount,
            "status": "succeeded" if self.succeeded else "failed",
        }


@dataclass
class PaymentIntent:
    id: str
    account_id: str
    amount: int
    currency: str
    description: str | None
    metadata: dict[str, str]
    client_secret: str
    payment_method_types: list[str]
    automatic_payment_methods: dict[str, Any] | None
    capture_method: str
    receipt_email: str | None = None
    payment_method: str | None = None
    status: IntentStatus = IntentStatus.REQUIRES_PAYMENT_METHOD
    amount_received: int = 0
    latest_charge: str | None = None
    last_payment_error: dict[str, Any] | None = None
    canceled_at: int | None = None
    cancellation_reason: str | None = None
    created: int = field(default_factory=unix_now)
    event_ids: list[str] = field(default_factory=list)
    succeeded_event_id: str | None = None

    def apply(self, event: IntentEvent) -> IntentStatus:
        """Move along ``TRANSITIONS``; anything not in the table is refused."""
        try:
            self.status = TRANSITIONS[(self.status, event)]
        except KeyError:
            raise IllegalTransition(self.status, event) from None
        return self.status

    def to_api(self, charge: Charge | None = None) -> dict[str, Any]:
        """The intent as Stripe renders it; ``charge`` expands ``latest_charge``."""
        return {
            "id": self.id,
            "object": "payment_intent",
            "amount": self.amount,
            "amount_capturable": 0,
            "amount_details": {"tip": {}},
            "amount_received": self.amount_received,
            "application": None,
            "application_fee_amount": None,
            "automatic_payment_methods": self.automatic_payment_methods,
            "canceled_at": self.canceled_at,
            "cancellation_reason": self.cancellation_reason,
            "capture_method": self.capture_method,
            "client_secret": self.client_secret,
            "confirmation_method": "automatic",
            "created": self.created,
            "currency": self.currency,
            "customer": None,
            "description": self.description,
            "last_payment_error": self.last_payment_error,
            "latest_charge": charge.to_api() if charge is not None else self.latest_charge,
            "livemode": False,
            "metadata": dict(self.metadata),
            "next_action": None,
            "on_behalf_of": None,
            "payment_method": self.payment_method,
            "payment_method_options": {},
            "payment_method_types": list(self.payment_method_types),
            "processing": None,
            "receipt_email": self.receipt_email,
            "review": None,
            "setup_future_usage": None,
            "shipping": None,
            "source": None,
            "statement_descriptor": None,
            "statement_descriptor_suffix": None,
            "status": self.status.value,
            "transfer_data": None,
            "transfer_group": None,
        }


# -- events ---------------------------------------------------------------------------------


@dataclass
class Event:
    """One event; ``data_object`` is the object's snapshot when the event happened."""

    id: str
    account_id: str
    type: str
    data_object: dict[str, Any]
    request_id: str | None
    idempotency_key: str | None
    created: int = field(default_factory=unix_now)
    delivery_attempts: list[dict[str, Any]] = field(default_factory=list)
    deliveries_lost: int = 0
    delivered: bool = False

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "event",
            "api_version": SANDBOX_API_VERSION,
            "created": self.created,
            "data": {"object": self.data_object},
            "livemode": False,
            "pending_webhooks": 0 if self.delivered else 1,
            "request": {"id": self.request_id, "idempotency_key": self.idempotency_key},
            "type": self.type,
        }

    def admin_view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "created": self.created,
            "delivered": self.delivered,
            "delivery_attempts": list(self.delivery_attempts),
            "deliveries_lost": self.deliveries_lost,
        }


@dataclass
class Book:
    """Every object of one sandbox, by id; each belongs to one account."""

    intents: dict[str, PaymentIntent] = field(default_factory=dict)
    charges: dict[str, Charge] = field(default_factory=dict)
    refunds: dict[str, Refund] = field(default_factory=dict)
    balance_transactions: dict[str, BalanceTransaction] = field(default_factory=dict)
    events: dict[str, Event] = field(default_factory=dict)

    def intent(self, account_id: str | None, intent_id: str) -> PaymentIntent | None:
        """An intent, visible to its own account only (``None`` account: the sandbox admin)."""
        found = self.intents.get(intent_id)
        if found is None or (account_id is not None and found.account_id != account_id):
            return None
        return found

    def charge(self, account_id: str, charge_id: str) -> Charge | None:
        found = self.charges.get(charge_id)
        return found if found is not None and found.account_id == account_id else None

    def event(self, account_id: str, event_id: str) -> Event | None:
        found = self.events.get(event_id)
        return found if found is not None and found.account_id == account_id else None

    def refund(self, account_id: str | None, refund_id: str) -> Refund | None:
        found = self.refunds.get(refund_id)
        if found is None or (account_id is not None and found.account_id != account_id):
            return None
        return found

    def balance_transaction(self, account_id: str, txn_id: str) -> BalanceTransaction | None:
        found = self.balance_transactions.get(txn_id)
        return found if found is not None and found.account_id == account_id else None
