"""The Channel protocol's contract, one set of test functions run against every channel's
adapter and its sandbox over real HTTP: create, query, pay and callback, close, refunds and
refund callbacks, today's statement, and how failures are classified.

What differs between channels is asked of the driver (``tests/contract/drivers.py``), never
decided here by the channel's name.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from typing import Any

import httpx
import pytest
from _pytest.mark.structures import ParameterSet

from channels.base import (
    ChannelEvent,
    PrepayResult,
    RefundState,
    StatementLineKind,
    TradeState,
)
from channels.errors import (
    CallbackRejected,
    ChannelFatal,
    ChannelOrderNotFound,
    ChannelUnknownOutcome,
)
from tests.contract.drivers import CHANNELS
from tests.contract.harness import WAIT_S, Contract, PaidOrder

UNPAID = (TradeState.NOT_PAID, TradeState.PAYING)


# Known adapter bugs, one parametrized case each (strict: the case fails until fixed).
def channels(**known_bugs: str) -> list[ParameterSet]:
    """Every channel, each a module-scoped ``driver``; ``known_bugs`` maps a channel to the
    reason its case is expected to fail (strictly: it must fail until fixed)."""
    return [
        pytest.param(
            name,
            id=name,
            marks=(
                [pytest.mark.xfail(strict=True, reason=known_bugs[name])]
                if name in known_bugs
                else []
            ),
        )
        for name in CHANNELS
    ]


def every_channel(**known_bugs: str) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("driver", channels(**known_bugs), indirect=True, scope="module")


def tampered(body: bytes) -> bytes:
    """``body`` with one byte changed: the letter or digit nearest its middle that is not part
    of a ``%XX`` escape (so a form stays a well-formed form and JSON stays JSON); a digit
    becomes another digit, a letter changes case."""
    middle = len(body) // 2
    for position in sorted(range(len(body)), key=lambda i: abs(i - middle)):
        byte = body[position : position + 1]
        if not byte.isalnum() or b"%" in body[max(0, position - 2) : position]:
            continue
        changed = byte.swapcase() if byte.isalpha() else (b"2" if byte == b"1" else b"1")
        return body[:position] + changed + body[position + 1 :]
    raise AssertionError(f"nothing to change in {body!r}")


# -- 1. create --------------------------------------------------------------------------------


@every_channel()
async def test_create_answers_a_credential_and_is_idempotent(contract: Contract) -> None:
    order = contract.new_order()
    first = await contract.create(order)
    assert first.credential, "a create yields the shopper's credential"
    assert all(isinstance(value, str) and value for value in first.credential.values())

    # The same order again, identical parameters: the channel recognises the same order.
    second = await contract.create(order)
    same_credential = second.credential == first.credential
    same_channel_order = first.channel_trade_no is not None and (
        second.channel_trade_no == first.channel_trade_no
    )
    assert same_credential or same_channel_order, (first, second)

    # The same number with other parameters is refused for good.
    changed = dataclasses.replace(order, amount_minor=order.amount_minor + 1)
    with pytest.raises(ChannelFatal):
        await contract.create(changed)


# -- 2. query before payment ------------------------------------------------------------------


@every_channel()
async def test_query_before_payment_is_not_paid(contract: Contract) -> None:
    order = contract.new_order(amount_minor=1500)
    prepay = await contract.create(order)

    if contract.driver.unopened_order_exists:
        status = await contract.query(order, prepay)
        assert status.state in UNPAID, status
        assert status.out_trade_no == order.out_trade_no
    else:
        # As documented (Alipay QR): the order does not exist until the shopper opens it.
        with pytest.raises(ChannelOrderNotFound):
            await contract.query(order, prepay)

    await contract.driver.open(contract.admin, order, prepay)
    status = await contract.query(order, prepay)
    assert status.state in UNPAID, status
    assert status.out_trade_no == order.out_trade_no
    assert status.amount_minor in (None, 1500)


# -- 3. payment, query and callback -----------------------------------------------------------


@every_channel()
async def test_paid_order_is_reported_by_query_and_callback(contract: Contract) -> None:
    paid = await contract.paid_order(amount_minor=1234)
    order, status = paid.order, paid.status
    assert status.state is TradeState.PAID, status
    assert status.out_trade_no == order.out_trade_no
    assert (status.amount_minor, status.currency) == (1234, order.currency)
    assert status.channel_trade_no
    assert status.paid_at is not None and status.paid_at.tzinfo is not None

    delivery, event = await contract.callback(
        lambda e: (
            e.trade is not None
            and e.trade.out_trade_no == order.out_trade_no
            and e.trade.state is TradeState.PAID
        )
    )
    assert event.trade is not None and event.refund is None
    assert (event.trade.amount_minor, event.trade.currency) == (1234, order.currency)
    assert event.trade.channel_trade_no == status.channel_trade_no
    assert event.trade.paid_at is not None
    assert event.event_id

    # The adapter's ack is the channel's documented one, and the sandbox (which judges answers
    # the way the channel does) counted the receiver's answer, that ack, as acknowledging.
    assert contract.driver.is_documented_ack(contract.channel.ack_success())
    attempts = await _callback_attempts(contract, paid)
    assert attempts[0]["error"] is None, attempts

    with pytest.raises(CallbackRejected):
        contract.channel.parse_callback(
            delivery.headers, tampered(delivery.body), now=contract.now()
        )


async def _callback_attempts(contract: Contract, paid: PaidOrder) -> list[dict[str, Any]]:
    # The sandbox records an attempt once the receiver's answer is read.
    deadline = time.monotonic() + WAIT_S
    while True:
        attempts = await contract.driver.payment_callback_attempts(
            contract.admin, paid.order, paid.prepay
        )
        if attempts or time.monotonic() > deadline:
            assert attempts, "the sandbox recorded no delivery of the payment callback"
            return attempts
        await asyncio.sleep(0.02)


# -- 4. close ---------------------------------------------------------------------------------


@every_channel()
async def test_close(contract: Contract) -> None:
    # An order the shopper opened and did not pay: closed.
    opened = contract.new_order()
    opened_prepay = await contract.create(opened)
    await contract.driver.open(contract.admin, opened, opened_prepay)
    await contract.close(opened, opened_prepay)
    assert (await contract.query(opened, opened_prepay)).state is TradeState.CLOSED

    # An order nobody opened: closed, or (where documented) not found at the channel.
    unopened = contract.new_order()
    unopened_prepay = await contract.create(unopened)
    if contract.driver.unopened_order_exists:
        await contract.close(unopened, unopened_prepay)
        assert (await contract.query(unopened, unopened_prepay)).state is TradeState.CLOSED
    else:
        with pytest.raises(ChannelOrderNotFound):
            await contract.close(unopened, unopened_prepay)
        with pytest.raises(ChannelOrderNotFound):
            await contract.query(unopened, unopened_prepay)

    # A paid order is not closed.
    paid = await contract.paid_order()
    with pytest.raises(contract.driver.close_paid_error):
        await contract.close(paid.order, paid.prepay)
    assert (await contract.query(paid.order, paid.prepay)).state is TradeState.PAID


@every_channel()
async def test_closing_a_closed_order_is_no_error(contract: Contract) -> None:
    # Channel.parse_close: "raise a ChannelError unless the order is closed". A channel whose
    # close answer cannot tell closed from paid (Alipay: ACQ.TRADE_STATUS_ERROR for both)
    # says unknown outcome, and the query settles it.
    order = contract.new_order()
    prepay = await contract.create(order)
    await contract.driver.open(contract.admin, order, prepay)
    await contract.close(order, prepay)
    try:
        await contract.close(order, prepay)
    except ChannelUnknownOutcome:
        assert (await contract.query(order, prepay)).state is TradeState.CLOSED
    assert (await contract.query(order, prepay)).state is TradeState.CLOSED


# -- 5. refunds -------------------------------------------------------------------------------


@every_channel()
async def test_refunds(contract: Contract) -> None:
    paid = await contract.paid_order(amount_minor=1000)

    first = contract.new_refund(paid, 300)
    accepted = await contract.refund(first)
    assert accepted.out_refund_no == first.out_refund_no
    assert accepted.state in (RefundState.PROCESSING, RefundState.SUCCEEDED), accepted
    assert accepted.amount_minor == 300
    settled = await contract.settled(paid, first.out_refund_no)
    assert (settled.state, settled.amount_minor) == (RefundState.SUCCEEDED, 300), settled

    # The same refund again (same number, same amount) is the same refund, not a second one.
    again = await contract.refund(first)
    assert again.out_refund_no == first.out_refund_no
    assert again.state in (RefundState.PROCESSING, RefundState.SUCCEEDED), again
    if accepted.channel_refund_no is not None:
        assert again.channel_refund_no == accepted.channel_refund_no

    # The same number with another amount is refused for good.
    with pytest.raises(ChannelFatal):
        await contract.refund(dataclasses.replace(first, refund_minor=200))

    second = contract.new_refund(paid, 300)
    await contract.refund(second)
    assert (await contract.settled(paid, second.out_refund_no)).state is RefundState.SUCCEEDED

    # 400 remain (had the repeat refunded twice, only 100 would): more is refused for good...
    too_much = contract.new_refund(paid, 401)
    with pytest.raises(ChannelFatal):
        await contract.refund(too_much)
    with pytest.raises(ChannelOrderNotFound):
        await contract.query_refund(paid, too_much.out_refund_no)
    # ... and exactly the rest goes through.
    rest = contract.new_refund(paid, 400)
    await contract.refund(rest)
    assert (await contract.settled(paid, rest.out_refund_no)).state is RefundState.SUCCEEDED

    for refund in (first, second, rest):
        found = await contract.query_refund(paid, refund.out_refund_no)
        assert found.out_refund_no == refund.out_refund_no
        assert (found.state, found.amount_minor) == (RefundState.SUCCEEDED, refund.refund_minor)
        if found.channel_refund_no is not None:
            by_id = await contract.query_refund(
                paid, refund.out_refund_no, channel_refund_no=found.channel_refund_no
            )
            assert (by_id.out_refund_no, by_id.amount_minor) == (
                refund.out_refund_no,
                refund.refund_minor,
            )
    with pytest.raises(ChannelOrderNotFound):
        await contract.query_refund(paid, "RFunknown" + paid.order.out_trade_no[-12:])

    # Each refund is reported by a verified refund callback.
    for refund in (first, second, rest):

        def about(event: ChannelEvent, number: str = refund.out_refund_no) -> bool:
            return (
                event.refund is not None
                and event.refund.out_refund_no == number
                and event.refund.state is RefundState.SUCCEEDED
            )

        _, event = await contract.callback(about)
        assert event.trade is None and event.refund is not None
        assert event.refund.amount_minor in (None, refund.refund_minor)


# -- 6. statement -----------------------------------------------------------------------------


@every_channel()
async def test_statement_of_today(contract: Contract) -> None:
    paid = await contract.paid_order(amount_minor=2000)
    refunds = [contract.new_refund(paid, 500), contract.new_refund(paid, 200)]
    for refund in refunds:
        await contract.refund(refund)
        settled = await contract.settled(paid, refund.out_refund_no)
        assert settled.state is RefundState.SUCCEEDED

    lines = await contract.statement(contract.driver.statement_day(contract.now()))
    mine = [line for line in lines if line.out_trade_no == paid.order.out_trade_no]
    payments = [line for line in mine if line.kind is StatementLineKind.PAYMENT]
    assert len(payments) == 1, mine
    payment = payments[0]
    assert (payment.amount_minor, payment.currency) == (2000, paid.order.currency)
    assert payment.channel_trade_no in (None, paid.status.channel_trade_no)
    assert payment.fee_minor >= 0

    refund_lines = [line for line in mine if line.kind is StatementLineKind.REFUND]
    assert Counter(line.out_refund_no for line in refund_lines) == Counter(
        refund.out_refund_no for refund in refunds
    ), refund_lines
    amounts = {line.out_refund_no: line.amount_minor for line in refund_lines}
    assert amounts == {refund.out_refund_no: refund.refund_minor for refund in refunds}
    assert all(line.currency == paid.order.currency for line in refund_lines)


# -- 7. error classification ------------------------------------------------------------------


@every_channel()
async def test_server_error_is_an_unknown_outcome(contract: Contract) -> None:
    paid = await contract.paid_order(amount_minor=1000)
    order = contract.new_order()
    refund = contract.new_refund(paid, 300)
    await contract.set_faults(error_rate=1.0)
    try:
        # The request was sent: whatever the channel did is not known from here.
        with pytest.raises(ChannelUnknownOutcome):
            await contract.create(order)
        with pytest.raises(ChannelUnknownOutcome):
            await contract.refund(refund)
    finally:
        await contract.clear_faults()

    # Sending the same calls again is safe.
    assert isinstance(await contract.create(order), PrepayResult)
    await contract.refund(refund)
    settled = await contract.settled(paid, refund.out_refund_no)
    assert (settled.state, settled.amount_minor) == (RefundState.SUCCEEDED, 300)


@every_channel()
async def test_held_answer_is_an_unknown_outcome(
    contract: Contract, short_http: httpx.AsyncClient
) -> None:
    paid = await contract.paid_order(amount_minor=1000)
    order = contract.new_order()
    refund = contract.new_refund(paid, 300)
    await contract.set_faults(timeout_rate=1.0)
    try:
        # The sandbox acts, then holds the answer past the client's timeout.
        with pytest.raises(ChannelUnknownOutcome):
            await contract.create(order, http=short_http)
        with pytest.raises(ChannelUnknownOutcome):
            await contract.refund(refund, http=short_http)
    finally:
        await contract.clear_faults()

    # The same calls again are recognised as the same order and the same refund.
    prepay = await contract.create(order)
    await contract.driver.open(contract.admin, order, prepay)
    assert (await contract.query(order, prepay)).state in UNPAID
    await contract.refund(refund)
    settled = await contract.settled(paid, refund.out_refund_no)
    assert (settled.state, settled.amount_minor) == (RefundState.SUCCEEDED, 300)
    # Refunded once: the other 700 are still there.
    rest = contract.new_refund(paid, 700)
    await contract.refund(rest)
    assert (await contract.settled(paid, rest.out_refund_no)).state is RefundState.SUCCEEDED


@every_channel()
async def test_unverifiable_answer_is_an_unknown_outcome(contract: Contract) -> None:
    if not contract.driver.answers_signed:
        pytest.skip(f"{contract.driver.name} does not sign its answers (their integrity is TLS's)")
    paid = await contract.paid_order()
    genuine = await contract.query_response(paid.order, paid.prepay)
    assert contract.channel.parse_query(genuine, now=contract.now()).state is TradeState.PAID

    altered = dataclasses.replace(genuine, body=tampered(genuine.body))
    with pytest.raises(ChannelUnknownOutcome):
        contract.channel.parse_query(altered, now=contract.now())

    # The genuine answer, checked against another key, is no better than a forged one.
    wrong_key = contract.driver.wrong_key_credentials()
    assert wrong_key is not None
    with pytest.raises(ChannelUnknownOutcome):
        contract.driver.adapter(wrong_key).parse_query(genuine, now=contract.now())

    order = contract.new_order()
    request = contract.channel.build_create(order, now=contract.now())
    assert not isinstance(request, PrepayResult)
    answer = await contract.send(request)
    with pytest.raises(ChannelUnknownOutcome):
        contract.channel.parse_create(
            dataclasses.replace(answer, body=tampered(answer.body)), order=order, now=contract.now()
        )
