"""What the Stripe emulator's payment endpoints do, apart from HTTP: create, confirm and cancel
PaymentIntents the way Stripe does, with the charges, balance transactions and events each step
makes (refunds: ``stripe_refunds``).

Confirming takes Stripe's test PaymentMethods (``pm_card_visa`` succeeds,
``pm_card_chargeDeclined`` is declined, …: docs.stripe.com/testing). A declined attempt leaves
the intent in ``requires_payment_method`` with ``last_payment_error``, answers 402
``card_error``, and emits ``charge.failed`` + ``payment_intent.payment_failed``; a success
emits ``charge.succeeded`` + ``payment_intent.succeeded``. Stripe copies the intent's metadata
to the charge when it is confirmed (support.stripe.com, "how metadata works with related
objects").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mock_channels.stripe_errors import StripeApiError, parameter_invalid
from mock_channels.stripe_params import CreateIntent
from mock_channels.stripe_state import (
    CANCELABLE,
    Book,
    Charge,
    Event,
    IntentEvent,
    IntentStatus,
    PaymentIntent,
    new_id,
    unix_now,
)


@dataclass(frozen=True)
class RequestMeta:
    """The API request an event came from (``event.request``); None for shopper actions."""

    request_id: str | None = None
    idempotency_key: str | None = None


NO_REQUEST = RequestMeta()

# account_id, event type, the object's snapshot, the request → the stored event.
Emit = Callable[[str, str, dict[str, Any], RequestMeta], Event]

# Stripe's test PaymentMethods: None succeeds, else (code, decline_code).
TEST_PAYMENT_METHODS: dict[str, tuple[str, str] | None] = {
    "pm_card_visa": None,
    "pm_card_mastercard": None,
    "pm_card_amex": None,
    "pm_card_us": None,
    "pm_card_jp": None,
    # Charges succeed; their refunds go pending then succeeded, or succeeded then failed.
    "pm_card_pendingRefund": None,
    "pm_card_refundFail": None,
    "pm_card_chargeDeclined": ("card_declined", "generic_decline"),
    "pm_card_visa_chargeDeclined": ("card_declined", "generic_decline"),
    "pm_card_chargeDeclinedInsufficientFunds": ("card_declined", "insufficient_funds"),
    "pm_card_chargeDeclinedExpiredCard": ("expired_card", "expired_card"),
}
DECLINE_MESSAGES = {
    "generic_decline": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
    "expired_card": "Your card has expired.",
}
CONFIRMABLE = frozenset(
    {
        IntentStatus.REQUIRES_PAYMENT_METHOD,
        IntentStatus.REQUIRES_CONFIRMATION,
        IntentStatus.REQUIRES_ACTION,
    }
)


def unexpected_state(
    intent: PaymentIntent, verb: str, participle: str, allowed: frozenset[IntentStatus]
) -> StripeApiError:
    listed = ", ".join(sorted(status.value for status in allowed))
    return StripeApiError(
        400,
        f"You cannot {verb} this PaymentIntent because it has a status of "
        f"{intent.status.value}. Only a PaymentIntent with one of the following statuses may "
        f"be {participle}: {listed}.",
        code="payment_intent_unexpected_state",
        extra={"payment_intent": intent.to_api()},
        saved=True,
    )


def card_outcome(payment_method: str) -> tuple[str, str] | None:
    if payment_method not in TEST_PAYMENT_METHODS:
        raise StripeApiError(
            400,
            f"No such PaymentMethod: '{payment_method}'",
            code="resource_missing",
            param="payment_method",
        )
    return TEST_PAYMENT_METHODS[payment_method]


# The charge that succeeded → the id of its balance transaction.
RecordCharge = Callable[[Charge], str]


class Payments:
    def __init__(self, book: Book, emit: Emit, record_charge: RecordCharge) -> None:
        self.book = book
        self._emit = emit
        self._record_charge = record_charge

    # -- PaymentIntents --------------------------------------------------------------------

    def create(self, account_id: str, params: CreateIntent, meta: RequestMeta) -> PaymentIntent:
        if params.confirm and not params.payment_method:
            raise parameter_invalid(
                "payment_method",
                "You must provide a payment_method when confirm=true.",
                "parameter_missing",
            )
        decline = card_outcome(params.payment_method) if params.payment_method else None
        intent_id = new_id("pi_3")
        intent = PaymentIntent(
            id=intent_id,
            account_id=account_id,
            amount=params.amount,
            currency=params.currency,
            description=params.description,
            metadata=dict(params.metadata),
            client_secret=f"{intent_id}_secret_{new_id('', 25)}",
            payment_method_types=list(params.payment_method_types),
            automatic_payment_methods=params.automatic_payment_methods,
            capture_method=params.capture_method,
            receipt_email=params.receipt_email,
        )
        self.book.intents[intent.id] = intent
        self._event(intent, "payment_intent.created", meta)
        if params.payment_method:
            intent.payment_method = params.payment_method
            intent.apply(IntentEvent.ATTACH_METHOD)
            if params.confirm:
                failure = self._attempt(intent, decline, meta)
                if failure is not None:
                    raise failure
        return intent

    def render(self, intent: PaymentIntent, expand: frozenset[str]) -> dict[str, Any]:
        charge = None
        if "latest_charge" in expand and intent.latest_charge is not None:
            charge = self.book.charges.get(intent.latest_charge)
        return intent.to_api(charge)

    def confirm(
        self, intent: PaymentIntent, payment_method: str | None, meta: RequestMeta
    ) -> PaymentIntent:
        if intent.status not in CONFIRMABLE:
            raise unexpected_state(intent, "confirm", "confirmed", CONFIRMABLE)
        method = payment_method or intent.payment_method
        if method is None:
            raise StripeApiError(
                400,
                "You cannot confirm this PaymentIntent because it's missing a payment method. "
                "You can either update the PaymentIntent with a payment method and then "
                "confirm it again, or confirm it again directly with a payment method.",
                code="payment_intent_unexpected_state",
                extra={"payment_intent": intent.to_api()},
            )
        decline = card_outcome(method)
        intent.payment_method = method
        failure = self._attempt(intent, decline, meta)
        if failure is not None:
            raise failure
        return intent

    def cancel(self, intent: PaymentIntent, reason: str | None, meta: RequestMeta) -> PaymentIntent:
        if intent.status not in CANCELABLE:
            raise unexpected_state(intent, "cancel", "canceled", CANCELABLE)
        intent.apply(IntentEvent.CANCEL)
        intent.canceled_at = unix_now()
        intent.cancellation_reason = reason
        self._event(intent, "payment_intent.canceled", meta)
        return intent

    # -- the shopper -----------------------------------------------------------------------

    def shopper_pays(
        self,
        intent: PaymentIntent,
        outcome: str,
        *,
        payment_method: str,
        decline_code: str,
        amount_received: int | None,
    ) -> None:
        """Play the shopper confirming with Stripe.js: succeed, be declined, or start an
        asynchronous payment (``processing``)."""
        if outcome == "processing":
            intent.payment_method = payment_method
            intent.apply(IntentEvent.PROCESS)
            self._event(intent, "payment_intent.processing", NO_REQUEST)
            return
        decline = None if outcome == "success" else ("card_declined", decline_code)
        intent.payment_method = payment_method
        self._attempt(intent, decline, NO_REQUEST, amount_received=amount_received)

    def _attempt(
        self,
        intent: PaymentIntent,
        decline: tuple[str, str] | None,
        meta: RequestMeta,
        *,
        amount_received: int | None = None,
    ) -> StripeApiError | None:
        """One payment attempt: a charge, the intent's move, the events; the API's answer to
        a declined attempt is returned for the caller to raise."""
        method = intent.payment_method or "pm_card_visa"
        charge = Charge(
            id=new_id("ch_3"),
            account_id=intent.account_id,
            amount=intent.amount,
            currency=intent.currency,
            payment_intent=intent.id,
            payment_method=method,
            description=intent.description,
            metadata=dict(intent.metadata),
            succeeded=decline is None,
        )
        if decline is None:
            charge.balance_transaction = self._record_charge(charge)
        self.book.charges[charge.id] = charge
        intent.latest_charge = charge.id
        if decline is None:
            intent.apply(IntentEvent.SUCCEED)
            intent.amount_received = intent.amount if amount_received is None else amount_received
            intent.last_payment_error = None
            self._emit(intent.account_id, "charge.succeeded", charge.to_api(), meta)
            event = self._event(intent, "payment_intent.succeeded", meta)
            intent.succeeded_event_id = event.id
            return None
        code, decline_code = decline
        message = DECLINE_MESSAGES.get(decline_code, "Your card was declined.")
        charge.failure_code = code
        charge.failure_message = message
        charge.decline_code = decline_code
        error: dict[str, Any] = {
            "charge": charge.id,
            "code": code,
            "decline_code": decline_code,
            "message": message,
            "payment_method": {"id": method, "object": "payment_method", "type": "card"},
            "type": "card_error",
        }
        intent.apply(IntentEvent.FAIL)
        intent.last_payment_error = error
        self._emit(intent.account_id, "charge.failed", charge.to_api(), meta)
        self._event(intent, "payment_intent.payment_failed", meta)
        return StripeApiError(
            402,
            message,
            type_="card_error",
            code=code,
            extra={
                "charge": charge.id,
                "decline_code": decline_code,
                "payment_intent": intent.to_api(),
                "payment_method": error["payment_method"],
            },
            saved=True,
        )

    def _event(self, intent: PaymentIntent, event_type: str, meta: RequestMeta) -> Event:
        event = self._emit(intent.account_id, event_type, intent.to_api(), meta)
        intent.event_ids.append(event.id)
        return event
