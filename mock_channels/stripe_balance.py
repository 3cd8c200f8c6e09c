"""The Stripe emulator's balance: the balance transactions a charge, a refund and a failed
refund make, with Stripe's fee on charges (the account's percent plus fixed part; no fee is
taken for a refund and the charge's fee is not given back: docs.stripe.com/refunds), and their
rendering with an expanded ``source``."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from mock_channels.stripe_refund_state import BalanceTransaction, Refund, TransactionType
from mock_channels.stripe_state import Account, Book, Charge, new_id


def stripe_fee(account: Account | None, amount: int) -> int:
    if account is None:
        return 0
    percent = (Decimal(amount) * account.fee_percent / 100).quantize(
        Decimal(1), rounding=ROUND_HALF_UP
    )
    return int(percent) + account.fee_fixed


class Balance:
    def __init__(self, book: Book, accounts: dict[str, Account]) -> None:
        self.book = book
        self._accounts = accounts

    def _record(
        self,
        account_id: str,
        type_: TransactionType,
        amount: int,
        fee: int,
        currency: str,
        source: str,
        description: str | None,
    ) -> BalanceTransaction:
        transaction = BalanceTransaction(
            id=new_id("txn_3"),
            account_id=account_id,
            type=type_,
            amount=amount,
            fee=fee,
            currency=currency,
            source=source,
            description=description,
        )
        self.book.balance_transactions[transaction.id] = transaction
        return transaction

    def charge_succeeded(self, charge: Charge) -> str:
        """The charge's money in, less Stripe's fee; the transaction's id."""
        fee = stripe_fee(self._accounts.get(charge.account_id), charge.amount)
        fee = min(fee, charge.amount)
        return self._record(
            charge.account_id,
            TransactionType.CHARGE,
            charge.amount,
            fee,
            charge.currency,
            charge.id,
            charge.description,
        ).id

    def refunded(self, refund: Refund, charge: Charge) -> str:
        """The refund's money out (taken when the refund is made, pending or not)."""
        return self._record(
            refund.account_id,
            TransactionType.REFUND,
            -refund.amount,
            0,
            refund.currency,
            refund.id,
            f"REFUND FOR CHARGE ({charge.description or charge.id})",
        ).id

    def refund_failed(self, refund: Refund) -> str:
        """A failed refund's money back into the balance."""
        return self._record(
            refund.account_id,
            TransactionType.REFUND_FAILURE,
            refund.amount,
            0,
            refund.currency,
            refund.id,
            "REFUND FAILURE",
        ).id

    def render(self, transaction: BalanceTransaction, expand_source: bool) -> dict[str, Any]:
        source: dict[str, Any] | None = None
        if expand_source:
            charge = self.book.charges.get(transaction.source)
            refund = self.book.refunds.get(transaction.source)
            if charge is not None:
                source = charge.to_api()
            elif refund is not None:
                source = refund.to_api()
        return transaction.to_api(source)
