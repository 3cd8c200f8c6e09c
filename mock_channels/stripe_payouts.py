"""Connect transfers in the Stripe emulator: ``POST /v1/transfers``, ``GET /v1/transfers`` and
``GET /v1/transfers/{id}``, drawn on the platform account's balance, with the
``transfer.created`` event.

Rules (docs.stripe.com/api/transfers, docs.stripe.com/connect/separate-charges-and-transfers):

- a transfer is made at once or refused: 400 ``balance_insufficient`` when the account's
  balance in that currency is short (the answer is kept under the Idempotency-Key, as Stripe
  keeps every answer of a request that began executing);
- the balance is the net of the account's balance transactions in that currency: charges less
  Stripe's fee, refunds, failed refunds, admin top-ups (``topup``, ``POST
  /sandbox/stripe/accounts/{id}/balance``) and transfers (``transfer``, negative). Unlike
  Stripe, a charge's money counts at once: real charges stay ``pending`` for two days, and
  only the ``available`` part can be transferred;
- ``destination`` must look like a connected account id (``acct_…``) other than the caller's
  own; the sandbox has no Connect onboarding, so any such id is a connected account;
- lists filter by ``destination`` and ``transfer_group``, newest first. Reversals are not
  emulated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mock_channels.stripe_errors import StripeApiError, parameter_invalid
from mock_channels.stripe_forms import Params
from mock_channels.stripe_params import (
    CURRENCIES,
    integer,
    known_only,
    metadata,
    string,
)
from mock_channels.stripe_payments import Emit, RequestMeta
from mock_channels.stripe_refund_state import BalanceTransaction, TransactionType
from mock_channels.stripe_state import Book, new_id, unix_now

TRANSFER_PARAMS = frozenset(
    {
        "amount",
        "currency",
        "destination",
        "description",
        "metadata",
        "transfer_group",
        "source_transaction",
        "source_type",
        "expand",
    }
)
_ACCOUNT_ID = re.compile(r"acct_[A-Za-z0-9]{6,}")


@dataclass
class Transfer:
    id: str
    account_id: str
    amount: int
    currency: str
    destination: str
    description: str | None
    transfer_group: str | None
    metadata: dict[str, str]
    balance_transaction: str
    created: int = field(default_factory=unix_now)

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "transfer",
            "amount": self.amount,
            "amount_reversed": 0,
            "balance_transaction": self.balance_transaction,
            "created": self.created,
            "currency": self.currency,
            "description": self.description,
            "destination": self.destination,
            "destination_payment": "py_" + self.id.removeprefix("tr_"),
            "livemode": False,
            "metadata": dict(self.metadata),
            "reversals": {
                "object": "list",
                "data": [],
                "has_more": False,
                "total_count": 0,
                "url": f"/v1/transfers/{self.id}/reversals",
            },
            "reversed": False,
            "source_transaction": None,
            "source_type": "card",
            "transfer_group": self.transfer_group,
        }


class TopUp(BaseModel):
    """Body of ``POST /sandbox/stripe/accounts/{account_id}/balance``: funds to add."""

    model_config = ConfigDict(extra="forbid")

    amount: int = Field(ge=1, le=99_999_999)
    currency: str = Field(default="usd", pattern=r"^[a-z]{3}$")


def insufficient_balance() -> StripeApiError:
    return StripeApiError(
        400,
        "You have insufficient available funds in your Stripe account. Try adding funds "
        "directly to your available balance by creating Charges using the 4000000000000077 "
        "test card.",
        code="balance_insufficient",
        saved=True,
    )


class Transfers:
    def __init__(self, book: Book, emit: Emit) -> None:
        self.book = book
        self._emit = emit
        self.by_id: dict[str, Transfer] = {}

    def balance(self, account_id: str, currency: str) -> int:
        """The account's balance in ``currency``: the net of its balance transactions."""
        return sum(
            t.amount - t.fee
            for t in self.book.balance_transactions.values()
            if t.account_id == account_id and t.currency == currency
        )

    def _record(
        self, account_id: str, type_: TransactionType, amount: int, currency: str, source: str
    ) -> BalanceTransaction:
        transaction = BalanceTransaction(
            id=new_id("txn_3"),
            account_id=account_id,
            type=type_,
            amount=amount,
            fee=0,
            currency=currency,
            source=source,
            description=None,
        )
        self.book.balance_transactions[transaction.id] = transaction
        return transaction

    def top_up(self, account_id: str, amount: int, currency: str) -> int:
        """Add funds (the sandbox admin's top-up); the new balance."""
        self._record(account_id, TransactionType.TOPUP, amount, currency, new_id("tu_"))
        return self.balance(account_id, currency)

    def create(self, account_id: str, params: Params, meta: RequestMeta) -> Transfer:
        known_only(params, TRANSFER_PARAMS)
        # No charge minimum (0.50 usd) applies to a transfer: one cent is a transfer.
        amount = integer(params, "amount", required=True) or 0
        currency = string(params, "currency", required=True) or ""
        if amount < 1:
            raise parameter_invalid(
                "amount", "Invalid positive integer", "parameter_invalid_integer"
            )
        if currency not in CURRENCIES:
            raise parameter_invalid("currency", f"Invalid currency: {currency}")
        destination = string(params, "destination", required=True) or ""
        if not _ACCOUNT_ID.fullmatch(destination) or destination == account_id:
            raise StripeApiError(
                400,
                f"No such destination: '{destination}'",
                code="resource_missing",
                param="destination",
            )
        if string(params, "source_transaction") is not None:
            raise parameter_invalid("source_transaction", "source_transaction is not emulated")
        if amount > self.balance(account_id, currency):
            raise insufficient_balance()
        transfer_id = new_id("tr_3")
        txn = self._record(account_id, TransactionType.TRANSFER, -amount, currency, transfer_id)
        transfer = Transfer(
            id=transfer_id,
            account_id=account_id,
            amount=amount,
            currency=currency,
            destination=destination,
            description=string(params, "description"),
            transfer_group=string(params, "transfer_group"),
            metadata=metadata(params),
            balance_transaction=txn.id,
        )
        self.by_id[transfer.id] = transfer
        self._emit(account_id, "transfer.created", transfer.to_api(), meta)
        return transfer

    def get(self, account_id: str, transfer_id: str) -> Transfer | None:
        found = self.by_id.get(transfer_id)
        return found if found is not None and found.account_id == account_id else None

    def newest_first(
        self, account_id: str, destination: str | None, transfer_group: str | None
    ) -> list[Transfer]:
        return [
            t
            for t in reversed(self.by_id.values())
            if t.account_id == account_id
            and (destination is None or t.destination == destination)
            and (transfer_group is None or t.transfer_group == transfer_group)
        ]
