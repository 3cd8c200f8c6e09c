"""Stripe's statement of one day for payfront's adapter: the account's balance transactions
(``GET /v1/balance_transactions``) created that UTC day, with their source objects expanded,
read as payfront's ``StatementLine`` s.

What the answers give (docs.stripe.com/api/balance_transactions/object): ``amount`` is signed
(a charge positive, a refund negative) in the *settlement* currency, ``fee`` is Stripe's fee
in that currency (none is taken for a refund; the charge's fee is not given back), ``type`` is
``charge`` (cards) or ``payment`` (some other methods) for money in, ``refund`` or
``payment_refund`` for money out. Balance transactions carry no metadata of their own
(support.stripe.com, "how metadata works with related objects"), so payfront's numbers come
from the expanded ``source``: a charge carries its PaymentIntent's metadata (``pay_no``, copied
when the intent is confirmed), a refund the metadata payfront gave it (``out_refund_no``,
``out_trade_no``).

Lines with no payfront number (a charge of another integration on the account, a refund made
in the Dashboard) are kept with ``out_trade_no=""`` and Stripe's ids, so reconciliation sees
the money. Other types (payouts, fees, ``refund_failure`` …) have no line kind and are skipped:
a refund that fails after its day shows as a ``refund_failure`` on the day it failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from pydantic import StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError

from channels import stripe_refunds as refunds
from channels import stripe_wire as wire
from channels.base import StatementLine, StatementLineKind
from channels.errors import ChannelUnknownOutcome

PAGE_LIMIT = 100
PAYMENT_TYPES = frozenset({"charge", "payment"})
REFUND_TYPES = frozenset({"refund", "payment_refund"})


class BalanceTransaction(wire.WireModel):
    id: StrictStr
    object: StrictStr
    amount: StrictInt
    currency: StrictStr
    created: StrictInt
    fee: StrictInt
    type: StrictStr
    exchange_rate: StrictFloat | StrictInt | None = None
    # An id, or the object itself when the request asked for ``expand[]=data.source``.
    source: StrictStr | dict[str, Any] | None = None


class BalanceTransactionList(wire.WireModel):
    object: StrictStr
    data: list[BalanceTransaction]
    has_more: StrictBool


def day_bounds(day: date) -> tuple[int, int]:
    """The UTC day as Unix seconds ``[start, end)``."""
    start = datetime.combine(day, time(), UTC)
    return int(start.timestamp()), int((start + timedelta(days=1)).timestamp())


def page_path(day: date, starting_after: str | None = None) -> str:
    """One page of the day's balance transactions, newest first, sources expanded."""
    start, end = day_bounds(day)
    query = [
        ("created[gte]", str(start)),
        ("created[lt]", str(end)),
        ("limit", str(PAGE_LIMIT)),
        ("expand[]", "data.source"),
    ]
    if starting_after is not None:
        query.append(("starting_after", starting_after))
    return "/v1/balance_transactions?" + urlencode(query)


def _unknown(code: str, message: str) -> ChannelUnknownOutcome:
    return ChannelUnknownOutcome(code, message, http_status=200)


def load_page(body: bytes) -> BalanceTransactionList:
    listing = wire.load(BalanceTransactionList, body)
    if listing is None or listing.object != "list":
        raise _unknown("UNREADABLE_STATEMENT", "not a list of balance transactions")
    return listing


def day_of(listing: BalanceTransactionList, cursor: Mapping[str, str]) -> date | None:
    """The statement's day: the cursor's, else that of any transaction (every one of them
    was created that UTC day: the request asked for no other)."""
    if cursor.get("day"):
        try:
            return date.fromisoformat(cursor["day"])
        except ValueError:
            raise _unknown("BAD_CURSOR", f"cursor day {cursor['day']!r}") from None
    if not listing.data:
        return None
    moment = wire.timestamp(listing.data[-1].created)
    if moment is None:
        raise _unknown("UNREADABLE_STATEMENT", "a transaction's time is out of range")
    return moment.date()


def to_lines(listing: BalanceTransactionList, day: date | None) -> tuple[StatementLine, ...]:
    lines = []
    for transaction in listing.data:
        occurred_at = wire.timestamp(transaction.created)
        if occurred_at is None or (day is not None and occurred_at.date() != day):
            raise _unknown("STATEMENT_OUT_OF_DAY", f"{transaction.id} was not created on {day}")
        line = _line(transaction, occurred_at)
        if line is not None:
            lines.append(line)
    return tuple(lines)


def _line(transaction: BalanceTransaction, occurred_at: datetime) -> StatementLine | None:
    if transaction.type in PAYMENT_TYPES:
        kind = StatementLineKind.PAYMENT
    elif transaction.type in REFUND_TYPES:
        kind = StatementLineKind.REFUND
    else:
        return None
    if not isinstance(transaction.source, dict):
        raise _unknown("UNEXPANDED_SOURCE", f"{transaction.id} has no expanded source")
    out_refund_no = channel_refund_no = None
    try:
        if kind is StatementLineKind.PAYMENT:
            charge = wire.Charge.model_validate(transaction.source)
            out_trade_no = charge.metadata.get(wire.PAY_NO_METADATA_KEY, "")
            source_amount, source_currency = charge.amount, charge.currency
            channel_trade_no = charge.payment_intent
        else:
            refund = refunds.Refund.model_validate(transaction.source)
            out_trade_no = refund.metadata.get(refunds.OUT_TRADE_NO_KEY, "")
            source_amount, source_currency = refund.amount, refund.currency
            channel_trade_no = refund.payment_intent
            out_refund_no = refund.metadata.get(refunds.OUT_REFUND_NO_KEY)
            channel_refund_no = refund.id
    except ValidationError:
        raise _unknown("UNREADABLE_STATEMENT", f"{transaction.id}'s source is unreadable") from None
    if transaction.currency.lower() == source_currency.lower():
        amount, currency = abs(transaction.amount), transaction.currency
    else:
        # Converted at settlement: the line keeps what the order asked for (the source's
        # amount and currency); the fee stays in the settlement currency, as Stripe took it.
        amount, currency = source_amount, source_currency
    return StatementLine(
        kind=kind,
        out_trade_no=out_trade_no,
        amount_minor=amount,
        currency=currency.upper(),
        fee_minor=transaction.fee,
        occurred_at=occurred_at,
        channel_state=transaction.type,
        channel_trade_no=channel_trade_no,
        out_refund_no=out_refund_no,
        channel_refund_no=channel_refund_no,
    )
