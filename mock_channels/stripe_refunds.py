"""What the Stripe emulator's refund endpoints do, apart from HTTP: make a refund of a charge
the way Stripe does, settle it later, and list refunds.

Stripe's test payment methods decide how a refund of their charge goes
(docs.stripe.com/testing#refunds): ``pm_card_pendingRefund``'s refunds start ``pending`` and turn
``succeeded`` some time later; ``pm_card_refundFail``'s start ``succeeded`` and turn ``failed``
(``expired_or_canceled_card``) some time later; every other card's succeed at once. "Some time
later" is ``SETTLE_AFTER_S`` of sandbox time, or never for an account whose
``refund_settlement`` is ``manual``: then the sandbox admin settles each refund
(``POST /sandbox/stripe/refunds/{id}/settle``) — succeed a pending one, fail a pending or a
succeeded one.

Events (since API version 2024-10-28.acacia, for every refund): ``refund.created`` with the new
refund (and ``charge.refunded`` with the charge), ``refund.updated`` when its status changes,
and ``refund.failed`` as well when it fails — whose money goes back to the balance (a
``refund_failure`` balance transaction) and is refundable again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mock_channels.stripe_balance import Balance
from mock_channels.stripe_errors import StripeApiError, resource_missing
from mock_channels.stripe_lists import ListRequest, page
from mock_channels.stripe_params import CreateRefund
from mock_channels.stripe_payments import Emit, RequestMeta
from mock_channels.stripe_refund_state import (
    IllegalRefundTransition,
    Refund,
    RefundEvent,
    RefundStatus,
)
from mock_channels.stripe_state import Account, Book, Charge, IntentStatus, new_id

SETTLE_AFTER_S = 60.0
PENDING_REFUND_METHOD = "pm_card_pendingRefund"
FAILING_REFUND_METHOD = "pm_card_refundFail"
FAILING_REFUND_REASON = "expired_or_canceled_card"

# (delay in sandbox seconds, what to do then): run later by the sandbox.
Later = Callable[[float, Callable[[], None]], None]


class Refunds:
    def __init__(
        self,
        book: Book,
        accounts: dict[str, Account],
        balance: Balance,
        emit: Emit,
        later: Later,
    ) -> None:
        self.book = book
        self._accounts = accounts
        self._balance = balance
        self._emit = emit
        self._later = later

    def create(self, account_id: str, params: CreateRefund, meta: RequestMeta) -> Refund:
        charge = self._refundable_charge(account_id, params)
        remaining = charge.amount - charge.amount_refunded
        if remaining <= 0:
            raise StripeApiError(
                400,
                f"Charge {charge.id} has already been refunded.",
                code="charge_already_refunded",
                saved=True,
            )
        amount = remaining if params.amount is None else params.amount
        if amount > remaining:
            raise StripeApiError(
                400,
                f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                f"({remaining})",
                code="amount_too_large",
                param="amount",
                saved=True,
            )
        pending = charge.payment_method == PENDING_REFUND_METHOD
        refund = Refund(
            id=new_id("re_3"),
            account_id=account_id,
            amount=amount,
            currency=charge.currency,
            charge=charge.id,
            payment_intent=charge.payment_intent,
            reason=params.reason,
            metadata=dict(params.metadata),
            balance_transaction="",
            status=RefundStatus.PENDING if pending else RefundStatus.SUCCEEDED,
        )
        refund.balance_transaction = self._balance.refunded(refund, charge)
        self.book.refunds[refund.id] = refund
        charge.amount_refunded += amount
        self._emit(account_id, "charge.refunded", charge.to_api(), meta)
        self._event(refund, "refund.created", meta)
        account = self._accounts.get(account_id)
        if account is not None and account.refund_settlement == "auto":
            if pending:
                self._later(SETTLE_AFTER_S, lambda: self._settle_quietly(refund, None))
            elif charge.payment_method == FAILING_REFUND_METHOD:
                self._later(
                    SETTLE_AFTER_S, lambda: self._settle_quietly(refund, FAILING_REFUND_REASON)
                )
        return refund

    def settle(self, refund: Refund, failure_reason: str | None) -> Refund:
        """Succeed a pending refund (``failure_reason`` None), or fail a pending or succeeded
        one; its events follow. A refund already final is refused."""
        event = RefundEvent.SETTLE if failure_reason is None else RefundEvent.FAIL
        refund.apply(event)
        meta = RequestMeta()
        if refund.status is RefundStatus.FAILED:
            refund.failure_reason = failure_reason
            refund.failure_balance_transaction = self._balance.refund_failed(refund)
            charge = self.book.charges.get(refund.charge)
            if charge is not None:
                charge.amount_refunded -= refund.amount
            self._event(refund, "refund.updated", meta)
            self._event(refund, "refund.failed", meta)
        else:
            self._event(refund, "refund.updated", meta)
        return refund

    def _settle_quietly(self, refund: Refund, failure_reason: str | None) -> None:
        # The admin may have settled it first: then there is nothing left to do.
        try:
            self.settle(refund, failure_reason)
        except IllegalRefundTransition:
            return

    def _event(self, refund: Refund, event_type: str, meta: RequestMeta) -> None:
        event = self._emit(refund.account_id, event_type, refund.to_api(), meta)
        intent = self.book.intents.get(refund.payment_intent)
        if intent is not None:
            intent.event_ids.append(event.id)

    def find(
        self, account_id: str, request: ListRequest, intent_id: str | None, charge_id: str | None
    ) -> tuple[list[Refund], bool]:
        if intent_id is not None and self.book.intent(account_id, intent_id) is None:
            raise resource_missing("payment_intent", intent_id, "payment_intent")
        if charge_id is not None and self.book.charge(account_id, charge_id) is None:
            raise resource_missing("charge", charge_id, "charge")
        newest_first = [
            r for r in reversed(self.book.refunds.values()) if r.account_id == account_id
        ]

        def keep(refund: Refund) -> bool:
            return (intent_id is None or refund.payment_intent == intent_id) and (
                charge_id is None or refund.charge == charge_id
            )

        return page(newest_first, request, keep, "refund")

    def views(self, intent_id: str) -> list[dict[str, Any]]:
        return [r.to_api() for r in self.book.refunds.values() if r.payment_intent == intent_id]

    def _refundable_charge(self, account_id: str, params: CreateRefund) -> Charge:
        if params.charge is not None:
            charge = self.book.charge(account_id, params.charge)
            if charge is None:
                raise resource_missing("charge", params.charge, "charge")
        else:
            intent_id = params.payment_intent or ""
            intent = self.book.intent(account_id, intent_id)
            if intent is None:
                raise resource_missing("payment_intent", intent_id, "payment_intent")
            found = self.book.charges.get(intent.latest_charge or "")
            if intent.status is not IntentStatus.SUCCEEDED or found is None:
                raise StripeApiError(
                    400,
                    f"This PaymentIntent ({intent.id}) does not have a successful charge to "
                    "refund.",
                    code="charge_not_refundable",
                    param="payment_intent",
                )
            charge = found
        if not charge.succeeded:
            raise StripeApiError(
                400, f"Charge {charge.id} has not succeeded.", code="charge_not_refundable"
            )
        return charge
