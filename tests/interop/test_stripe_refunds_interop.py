"""Refunds and balance transactions: the unmodified ``stripe`` library against the Stripe
emulator, its ``refund.*`` webhooks verified by ``stripe.Webhook.construct_event``, and payfront's
adapter talking to the running sandbox over HTTP (refunds, the lost-answer lookup, a day's
statement over two pages)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import stripe
from aiohttp import web

from channels.base import (
    CreateOrder,
    CreateRefund,
    RefundState,
    StatementLineKind,
)
from channels.errors import ChannelFatal, ChannelOrderNotFound
from channels.stripe import Stripe, from_credentials
from tests.interop.harness import BackgroundSandbox, running_sandbox
from tests.interop.test_stripe_library import Account, client_for, create_params, send


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundSandbox]:
    with running_sandbox(
        tmp_path_factory.mktemp("stripe-refunds-sandbox"),
        route="/hooks/{name}",
        answer=lambda: web.json_response({"received": True}),
        seed=11,
        hang_s=10,
    ) as background:
        yield background


def register(sandbox: BackgroundSandbox, **settings: Any) -> Account:
    name = uuid.uuid4().hex[:8]
    body = {"webhook_url": f"{sandbox.notify_url}/{name}", **settings}
    answer = sandbox.admin("POST", "/sandbox/stripe/accounts", body)
    assert answer.status_code == 200, answer.text
    registered = answer.json()
    return Account(
        name, registered["account_id"], registered["secret_key"], registered["webhook_secret"]
    )


@pytest.fixture
def account(sandbox: BackgroundSandbox) -> Account:
    return register(sandbox)


def adapter_for(sandbox: BackgroundSandbox, account: Account) -> Stripe:
    return from_credentials(
        {
            "secret_key": account.secret_key,
            "webhook_secret": account.webhook_secret,
            "api_base": sandbox.base_url,
            "account_id": account.account_id,
        }
    )


def paid_intent(
    client: stripe.StripeClient, pay_no: str, method: str = "pm_card_visa"
) -> stripe.PaymentIntent:
    intent = client.v1.payment_intents.create(params=create_params(pay_no))
    confirmed = client.v1.payment_intents.confirm(intent.id, params={"payment_method": method})
    assert confirmed.status == "succeeded"
    return confirmed


# -- the library's calls --------------------------------------------------------------------


def test_library_creates_retrieves_and_lists_refunds(
    sandbox: BackgroundSandbox, account: Account
) -> None:
    client = client_for(sandbox, account, retries=0)
    intent = paid_intent(client, "pay_lib_r1")
    made = [
        client.v1.refunds.create(
            params={
                "payment_intent": intent.id,
                "amount": amount,
                "reason": "requested_by_customer",
                "metadata": {"out_refund_no": f"rfd_lib_{n}", "out_trade_no": "pay_lib_r1"},
            }
        )
        for n, amount in enumerate((300, 400, 500))
    ]
    first = made[0]
    assert isinstance(first, stripe.Refund)
    assert (first.status, first.amount, first.currency) == ("succeeded", 300, "usd")
    assert first.payment_intent == intent.id
    assert first.metadata["out_refund_no"] == "rfd_lib_0"
    assert first.reason == "requested_by_customer"

    fetched = client.v1.refunds.retrieve(first.id)
    assert (fetched.id, fetched.amount, fetched.metadata["out_trade_no"]) == (
        first.id,
        300,
        "pay_lib_r1",
    )

    page = client.v1.refunds.list(params={"payment_intent": intent.id, "limit": 2})
    assert [r.id for r in page.data] == [made[2].id, made[1].id]
    assert page.has_more is True
    # The library follows ``starting_after`` itself.
    everything = [r.id for r in page.auto_paging_iter()]
    assert everything == [made[2].id, made[1].id, made[0].id]

    with pytest.raises(stripe.InvalidRequestError) as too_much:
        client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 1000})
    assert too_much.value.code == "amount_too_large"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.refunds.retrieve("re_doesnotexist")
    assert missing.value.http_status == 404


def test_library_refund_idempotency(sandbox: BackgroundSandbox, account: Account) -> None:
    client = client_for(sandbox, account, retries=0)
    intent = paid_intent(client, "pay_lib_r2")
    options: Any = {"idempotency_key": "refund-42"}
    params: Any = {"payment_intent": intent.id, "amount": 500}
    first = client.v1.refunds.create(params=params, options=options)
    again = client.v1.refunds.create(params=params, options=options)
    assert again.id == first.id
    assert again.last_response is not None
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    with pytest.raises(stripe.IdempotencyError):
        client.v1.refunds.create(params={**params, "amount": 600}, options=options)
    assert len(client.v1.refunds.list(params={"payment_intent": intent.id}).data) == 1


# -- webhooks -------------------------------------------------------------------------------


def test_refund_webhooks_verify_with_the_library_and_the_adapter(
    sandbox: BackgroundSandbox, account: Account
) -> None:
    client = client_for(sandbox, account)
    intent = paid_intent(client, "pay_hook_r", method="pm_card_pendingRefund")
    refund = client.v1.refunds.create(
        params={
            "payment_intent": intent.id,
            "amount": 700,
            "metadata": {"out_refund_no": "rfd_hook", "out_trade_no": "pay_hook_r"},
        }
    )
    assert refund.status == "pending"
    adapter = adapter_for(sandbox, account)
    seen = {}
    for event_type in ("refund.created", "refund.updated"):
        delivery = sandbox.next_event(account.name, event_type)
        header = delivery.headers["Stripe-Signature"]
        event = stripe.Webhook.construct_event(delivery.body, header, account.webhook_secret)
        assert event.type == event_type
        assert event.data.object["id"] == refund.id
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(delivery.body + b" ", header, account.webhook_secret)
        parsed = adapter.parse_callback(delivery.headers, delivery.body, now=datetime.now(UTC))
        assert parsed.trade is None and parsed.refund is not None
        assert parsed.event_id == event.id
        assert (parsed.refund.out_refund_no, parsed.refund.out_trade_no) == (
            "rfd_hook",
            "pay_hook_r",
        )
        assert (parsed.refund.channel_refund_no, parsed.refund.amount_minor) == (refund.id, 700)
        seen[event_type] = parsed.refund.state
    assert seen == {
        "refund.created": RefundState.PROCESSING,
        "refund.updated": RefundState.SUCCEEDED,
    }


# -- payfront's adapter over HTTP -----------------------------------------------------------


def refund_of(out_refund_no: str, amount: int, pi_id: str | None) -> CreateRefund:
    return CreateRefund(
        out_refund_no=out_refund_no,
        out_trade_no="pay_adapter_r",
        refund_minor=amount,
        total_minor=1999,
        currency="USD",
        notify_url="http://unused",
        channel_trade_no=pi_id,
        reason="the shopper changed their mind",
    )


def test_adapter_refunds_against_the_sandbox(sandbox: BackgroundSandbox, account: Account) -> None:
    adapter = adapter_for(sandbox, account)
    now = datetime.now(UTC)
    order = CreateOrder(
        out_trade_no="pay_adapter_r",
        amount_minor=1999,
        currency="USD",
        description="A cup of tea & cake",
        notify_url="http://unused",
        method="payment_intent",
    )
    created = adapter.parse_create(send(adapter.build_create(order, now=now)), now=now)
    pi_id = created.channel_trade_no
    assert pi_id is not None
    paid = sandbox.admin("POST", f"/sandbox/stripe/payment_intents/{pi_id}/pay", {})
    assert paid.status_code == 200, paid.text

    first = adapter.parse_refund(
        send(adapter.build_refund(refund_of("rfd_ad_1", 500, pi_id), now=now)), now=now
    )
    second = adapter.parse_refund(
        send(adapter.build_refund(refund_of("rfd_ad_2", 700, pi_id), now=now)), now=now
    )
    for status, number, amount in ((first, "rfd_ad_1", 500), (second, "rfd_ad_2", 700)):
        assert status.state is RefundState.SUCCEEDED
        assert (status.out_refund_no, status.out_trade_no) == (number, "pay_adapter_r")
        assert (status.amount_minor, status.currency) == (amount, "USD")
        assert status.channel_refund_no is not None and status.succeeded_at is not None
    assert first.channel_refund_no != second.channel_refund_no

    # Sent again (a retry after a lost answer): Stripe replays the same refund.
    repeated = adapter.parse_refund(
        send(adapter.build_refund(refund_of("rfd_ad_1", 500, pi_id), now=now)), now=now
    )
    assert repeated.channel_refund_no == first.channel_refund_no

    # 1999 - 500 - 700 = 799 left: a third of 1000 is refused for good.
    with pytest.raises(ChannelFatal) as refused:
        adapter.parse_refund(
            send(adapter.build_refund(refund_of("rfd_ad_3", 1000, pi_id), now=now)), now=now
        )
    assert refused.value.code == "amount_too_large"

    # The lost-answer path: no refund id stored; the intent's list has it by metadata.
    lookup = adapter.build_refund_query(
        "rfd_ad_2", out_trade_no="pay_adapter_r", channel_trade_no=pi_id, now=now
    )
    found = adapter.parse_refund_query(send(lookup), out_refund_no="rfd_ad_2", now=now)
    assert (found.channel_refund_no, found.amount_minor) == (second.channel_refund_no, 700)
    by_id = adapter.build_refund_query(
        "rfd_ad_1",
        out_trade_no="pay_adapter_r",
        channel_trade_no=pi_id,
        channel_refund_no=first.channel_refund_no,
        now=now,
    )
    assert adapter.parse_refund_query(send(by_id), out_refund_no="rfd_ad_1", now=now) == first
    never_made = adapter.build_refund_query(
        "rfd_ad_3", out_trade_no="pay_adapter_r", channel_trade_no=pi_id, now=now
    )
    with pytest.raises(ChannelOrderNotFound):
        adapter.parse_refund_query(send(never_made), out_refund_no="rfd_ad_3", now=now)

    # The free-text reason rode along in the metadata, as the library sees it.
    client = client_for(sandbox, account)
    seen = client.v1.refunds.retrieve(str(first.channel_refund_no))
    assert seen.metadata["refund_reason"] == "the shopper changed their mind"
    assert seen.reason is None


def test_adapter_sees_a_refund_fail_later(sandbox: BackgroundSandbox, account: Account) -> None:
    client = client_for(sandbox, account)
    intent = paid_intent(client, "pay_adapter_f", method="pm_card_refundFail")
    adapter = adapter_for(sandbox, account)
    now = datetime.now(UTC)
    made = adapter.parse_refund(
        send(adapter.build_refund(refund_of("rfd_ad_f", 1999, intent.id), now=now)), now=now
    )
    assert made.state is RefundState.SUCCEEDED  # at first
    failed_event = sandbox.next_event(account.name, "refund.failed")
    event = adapter.parse_callback(failed_event.headers, failed_event.body, now=datetime.now(UTC))
    assert event.refund is not None
    assert event.refund.state is RefundState.FAILED
    assert event.refund.failure_reason == "expired_or_canceled_card"
    query = adapter.build_refund_query(
        "rfd_ad_f",
        out_trade_no="pay_adapter_f",
        channel_trade_no=intent.id,
        channel_refund_no=made.channel_refund_no,
        now=now,
    )
    later = adapter.parse_refund_query(send(query), out_refund_no="rfd_ad_f", now=now)
    assert (later.state, later.failure_reason) == (RefundState.FAILED, "expired_or_canceled_card")


# -- statements -----------------------------------------------------------------------------


def test_statement_of_today_over_two_pages(sandbox: BackgroundSandbox) -> None:
    """101 charges and 2 refunds: more than one page of 100; the adapter follows the next
    page itself, and the library's own paging sees the same transactions."""
    quiet = register(sandbox, webhook_url=None, fee_percent="2.9", fee_fixed=30)
    client = client_for(sandbox, quiet)
    intents = [
        client.v1.payment_intents.create(
            params=create_params(
                f"pay_st_{n:03d}", amount=1000 + n, payment_method="pm_card_visa", confirm=True
            )
        )
        for n in range(101)
    ]
    for n, intent in enumerate(intents[:2]):
        client.v1.refunds.create(
            params={
                "payment_intent": intent.id,
                "amount": 100 + n,
                "metadata": {"out_refund_no": f"rfd_st_{n}", "out_trade_no": f"pay_st_{n:03d}"},
            }
        )
    adapter = adapter_for(sandbox, quiet)
    now = datetime.now(UTC)
    first = adapter.parse_statement(
        send(adapter.build_statement(now.date(), now=now)), cursor={}, now=now
    )
    assert len(first.lines) == 100
    assert first.next_request is not None
    second = adapter.parse_statement(send(first.next_request), cursor=first.cursor, now=now)
    assert second.next_request is None
    lines = [*first.lines, *second.lines]
    assert len(lines) == 103

    payments = {line.out_trade_no: line for line in lines if line.kind is StatementLineKind.PAYMENT}
    refunds = [line for line in lines if line.kind is StatementLineKind.REFUND]
    assert len(payments) == 101
    line = payments["pay_st_007"]
    assert (line.amount_minor, line.currency, line.channel_trade_no) == (1007, "USD", intents[7].id)
    # 2.9% of 1007 = 29.203 → 29, plus 30.
    assert line.fee_minor == 59
    assert line.channel_state == "charge"
    assert sorted(
        (r.out_refund_no, r.out_trade_no, r.amount_minor, r.fee_minor) for r in refunds
    ) == [
        ("rfd_st_0", "pay_st_000", 100, 0),
        ("rfd_st_1", "pay_st_001", 101, 0),
    ]
    assert all(r.channel_refund_no and r.channel_refund_no.startswith("re_") for r in refunds)

    listed = client.v1.balance_transactions.list(params={"limit": 100, "expand": ["data.source"]})
    library_ids = [txn.id for txn in listed.auto_paging_iter()]
    assert len(library_ids) == 103
    assert isinstance(listed.data[0].source, stripe.Refund)
