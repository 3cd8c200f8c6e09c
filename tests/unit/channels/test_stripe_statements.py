"""Tests for Stripe statements in the adapter (channels/stripe_statements.py): the balance
transactions request of one UTC day, lines from charges and refunds with their expanded
sources, paging with ``starting_after``, and what is skipped or refused."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from channels.base import HttpResponse, StatementLineKind
from channels.errors import ChannelFatal, ChannelRetryable, ChannelUnknownOutcome
from channels.stripe import Stripe, from_credentials

NOW = datetime(2026, 11, 25, 4, 0, 0, tzinfo=UTC)
DAY = date(2026, 11, 24)
START = int(datetime(2026, 11, 24, tzinfo=UTC).timestamp())
END = START + 86400
PI_ID = "pi_3PayfrontIntent000001"


def channel() -> Stripe:
    return from_credentials(
        {"secret_key": "sk_test_51Statement00", "webhook_secret": "whsec_statement00000"}
    )


def charge_source(pay_no: str | None = "pay_1", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "ch_3Charge1",
        "object": "charge",
        "amount": 1999,
        "created": START + 100,
        "currency": "usd",
        "payment_intent": PI_ID,
        "metadata": {"pay_no": pay_no} if pay_no else {},
    }
    body.update(overrides)
    return body


def refund_source(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "re_3Refund1",
        "object": "refund",
        "amount": 500,
        "created": START + 200,
        "currency": "usd",
        "charge": "ch_3Charge1",
        "payment_intent": PI_ID,
        "status": "succeeded",
        "metadata": {"out_refund_no": "rfd_1", "out_trade_no": "pay_1"},
    }
    body.update(overrides)
    return body


def txn(type_: str, amount: int, source: Any, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"txn_{type_}_{amount}",
        "object": "balance_transaction",
        "amount": amount,
        "available_on": START + 2 * 86400,
        "created": START + 300,
        "currency": "usd",
        "description": None,
        "exchange_rate": None,
        "fee": 88 if type_ == "charge" else 0,
        "fee_details": [],
        "net": amount - (88 if type_ == "charge" else 0),
        "reporting_category": type_,
        "source": source,
        "status": "pending",
        "type": type_,
    }
    body.update(overrides)
    return body


def listing(*transactions: dict[str, Any], has_more: bool = False) -> HttpResponse:
    body = {
        "object": "list",
        "data": list(transactions),
        "has_more": has_more,
        "url": "/v1/balance_transactions",
    }
    return HttpResponse(200, {"Content-Type": "application/json"}, orjson.dumps(body))


def test_build_statement_asks_for_one_utc_day_with_sources() -> None:
    request = channel().build_statement(DAY, now=NOW)
    split = urlsplit(request.url)
    assert request.method == "GET"
    assert (split.netloc, split.path) == ("api.stripe.com", "/v1/balance_transactions")
    assert parse_qsl(split.query) == [
        ("created[gte]", str(START)),
        ("created[lt]", str(END)),
        ("limit", "100"),
        ("expand[]", "data.source"),
    ]
    assert request.body == b"" and "Idempotency-Key" not in request.headers


def test_charge_and_refund_lines() -> None:
    page = channel().parse_statement(
        listing(
            txn("refund", -500, refund_source(), created=START + 400),
            txn("charge", 1999, charge_source()),
            txn("payment", 300, charge_source("pay_2", id="py_1", amount=300)),
            txn("payment_refund", -300, refund_source(id="re_2", amount=300)),
        ),
        cursor={},
        now=NOW,
    )
    assert page.next_request is None
    refund, charge, payment, payment_refund = page.lines
    assert refund.kind is StatementLineKind.REFUND
    assert (refund.out_trade_no, refund.out_refund_no, refund.channel_refund_no) == (
        "pay_1",
        "rfd_1",
        "re_3Refund1",
    )
    assert (refund.amount_minor, refund.fee_minor, refund.currency) == (500, 0, "USD")
    assert refund.channel_trade_no == PI_ID
    assert refund.occurred_at == datetime.fromtimestamp(START + 400, UTC)
    assert refund.channel_state == "refund"
    assert charge.kind is StatementLineKind.PAYMENT
    assert (charge.out_trade_no, charge.channel_trade_no) == ("pay_1", PI_ID)
    assert (charge.amount_minor, charge.fee_minor, charge.currency) == (1999, 88, "USD")
    assert charge.out_refund_no is None and charge.channel_refund_no is None
    assert (payment.kind, payment.out_trade_no, payment.amount_minor) == (
        StatementLineKind.PAYMENT,
        "pay_2",
        300,
    )
    assert (payment_refund.kind, payment_refund.amount_minor) == (StatementLineKind.REFUND, 300)


def test_other_types_are_skipped_and_foreign_money_kept_without_our_number() -> None:
    page = channel().parse_statement(
        listing(
            txn("refund_failure", 500, refund_source()),
            txn("payout", -10000, "po_1"),
            txn("stripe_fee", -100, None),
            txn("charge", 1999, charge_source(pay_no=None)),
            txn("refund", -500, refund_source(metadata={})),
        ),
        cursor={},
        now=NOW,
    )
    foreign_charge, dashboard_refund = page.lines
    assert (foreign_charge.out_trade_no, foreign_charge.channel_trade_no) == ("", PI_ID)
    assert (dashboard_refund.out_trade_no, dashboard_refund.out_refund_no) == ("", None)
    assert dashboard_refund.channel_refund_no == "re_3Refund1"


def test_converted_transaction_keeps_the_orders_amount_and_currency() -> None:
    """A 10.00 EUR charge settled as 11.00 USD: the line says what the order asked."""
    converted = txn(
        "charge",
        1100,
        charge_source(amount=1000, currency="eur"),
        exchange_rate=1.1,
        fee=62,
    )
    (line,) = channel().parse_statement(listing(converted), cursor={}, now=NOW).lines
    assert (line.amount_minor, line.currency, line.fee_minor) == (1000, "EUR", 62)


def test_zero_decimal_amounts_are_whole_units() -> None:
    jpy = txn("charge", 500, charge_source(amount=500, currency="jpy"), currency="jpy", fee=18)
    (line,) = channel().parse_statement(listing(jpy), cursor={}, now=NOW).lines
    assert (line.amount_minor, line.currency, line.fee_minor) == (500, "JPY", 18)


def test_more_pages_follow_starting_after_with_the_same_day() -> None:
    adapter = channel()
    first = adapter.parse_statement(
        listing(
            txn("charge", 1999, charge_source(), id="txn_newest", created=END - 1),
            txn("charge", 1000, charge_source("pay_2"), id="txn_last", created=START + 5),
            has_more=True,
        ),
        cursor={},
        now=NOW,
    )
    assert len(first.lines) == 2
    assert first.next_request is not None
    assert first.cursor == {"day": "2026-11-24", "starting_after": "txn_last"}
    split = urlsplit(first.next_request.url)
    assert split.path == "/v1/balance_transactions"
    assert parse_qsl(split.query) == [
        ("created[gte]", str(START)),
        ("created[lt]", str(END)),
        ("limit", "100"),
        ("expand[]", "data.source"),
        ("starting_after", "txn_last"),
    ]
    assert first.next_request.headers["Authorization"] == "Bearer sk_test_51Statement00"
    last = adapter.parse_statement(
        listing(txn("charge", 10, charge_source("pay_3"), created=START)),
        cursor=first.cursor,
        now=NOW,
    )
    assert last.next_request is None and len(last.lines) == 1
    empty = adapter.parse_statement(listing(), cursor={}, now=NOW)
    assert empty.lines == () and empty.next_request is None


def test_a_transaction_of_another_day_is_refused() -> None:
    outside = txn("charge", 1999, charge_source(), created=END)
    with pytest.raises(ChannelUnknownOutcome) as refused:
        channel().parse_statement(listing(outside), cursor={"day": DAY.isoformat()}, now=NOW)
    assert refused.value.code == "STATEMENT_OUT_OF_DAY"


@pytest.mark.parametrize(
    "answer",
    [
        listing(txn("charge", 1999, "ch_not_expanded")),
        listing(txn("charge", 1999, {"id": "ch_1", "object": "charge"})),
        listing(txn("refund", -500, refund_source(amount="500"))),
        listing(txn("charge", 19.99, charge_source())),
        HttpResponse(200, {}, b'{"object":"list","data":{},"has_more":false}'),
        HttpResponse(200, {}, b'{"object":"refund"}'),
        HttpResponse(200, {}, b"<html>"),
    ],
)
def test_unreadable_statements_are_unknown(answer: HttpResponse) -> None:
    with pytest.raises(ChannelUnknownOutcome):
        channel().parse_statement(answer, cursor={}, now=NOW)


def test_statement_errors_are_classified() -> None:
    adapter = channel()
    limited = HttpResponse(
        429, {}, orjson.dumps({"error": {"type": "invalid_request_error", "code": "rate_limit"}})
    )
    with pytest.raises(ChannelRetryable):
        adapter.parse_statement(limited, cursor={}, now=NOW)
    bad = HttpResponse(
        400,
        {},
        orjson.dumps({"error": {"type": "invalid_request_error", "code": "parameter_invalid"}}),
    )
    with pytest.raises(ChannelFatal):
        adapter.parse_statement(bad, cursor={}, now=NOW)
    with pytest.raises(ChannelUnknownOutcome):
        adapter.parse_statement(listing(), cursor={"day": "yesterday"}, now=NOW)
