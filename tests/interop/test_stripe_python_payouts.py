"""Connect transfers (payouts) against the Stripe emulator: the unmodified ``stripe`` library
creates, retrieves and lists transfers and verifies the ``transfer.created`` webhook, and
payfront's adapter pays out over HTTP (repeat, balance refusal, lost-answer lookup, webhook)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import stripe
from aiohttp import web

from channels.base import CreatePayout, PayoutState
from channels.errors import ChannelFatal, ChannelOrderNotFound
from tests.interop.harness import BackgroundSandbox, running_sandbox
from tests.interop.test_stripe_library import Account, client_for, send
from tests.interop.test_stripe_refunds_interop import adapter_for, paid_intent, register

DESTINATION = "acct_1PayeeConnected000"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundSandbox]:
    with running_sandbox(
        tmp_path_factory.mktemp("stripe-payouts-sandbox"),
        route="/hooks/{name}",
        answer=lambda: web.json_response({"received": True}),
        seed=13,
        hang_s=10,
    ) as background:
        yield background


@pytest.fixture
def account(sandbox: BackgroundSandbox) -> Account:
    return register(sandbox)


def top_up(sandbox: BackgroundSandbox, account: Account, amount: int) -> int:
    answer = sandbox.admin(
        "POST", f"/sandbox/stripe/accounts/{account.account_id}/balance", {"amount": amount}
    )
    assert answer.status_code == 200, answer.text
    return int(answer.json()["balance"])


def now() -> datetime:
    return datetime.now(UTC)


def test_library_transfers_from_the_charges_balance(
    sandbox: BackgroundSandbox, account: Account
) -> None:
    client = client_for(sandbox, account, retries=0)
    paid_intent(client, "pay_lib_t1")  # 19.99 in, less 2.9% + 30: 18.81 net
    made = client.v1.transfers.create(
        params={
            "amount": 1500,
            "currency": "usd",
            "destination": DESTINATION,
            "transfer_group": "grp-1",
            "metadata": {"out_payout_no": "wdr_lib_1"},
        }
    )
    assert made.object == "transfer" and made.amount == 1500 and not made.reversed
    assert client.v1.transfers.retrieve(made.id).metadata["out_payout_no"] == "wdr_lib_1"
    listed = client.v1.transfers.list(params={"transfer_group": "grp-1"})
    assert [t.id for t in listed.data] == [made.id]
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.transfers.create(
            params={"amount": 1000, "currency": "usd", "destination": DESTINATION}
        )
    assert refused.value.code == "balance_insufficient"

    delivery = sandbox.next_event(account.name, "transfer.created")
    header = delivery.headers["Stripe-Signature"]
    event = stripe.Webhook.construct_event(delivery.body, header, account.webhook_secret)
    assert event.data.object.id == made.id
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(delivery.body + b" ", header, account.webhook_secret)


def test_adapter_pays_out_against_the_sandbox(sandbox: BackgroundSandbox, account: Account) -> None:
    channel = adapter_for(sandbox, account)
    top_up(sandbox, account, 5000)

    def payout(number: str, amount: int) -> CreatePayout:
        return CreatePayout(
            out_payout_no=number,
            amount_minor=amount,
            currency="USD",
            payee_id=DESTINATION,
            remark="wallet withdrawal",
        )

    first = payout("wdr_pf_1", 3000)
    made = channel.parse_payout(
        send(channel.build_payout(first, now=now())), payout=first, now=now()
    )
    assert made.state is PayoutState.SUCCEEDED and made.channel_payout_no
    # Sent again (lost answer): Stripe replays the same transfer for the same key.
    again = channel.parse_payout(
        send(channel.build_payout(first, now=now())), payout=first, now=now()
    )
    assert again.channel_payout_no == made.channel_payout_no

    over = payout("wdr_pf_2", 2001)
    with pytest.raises(ChannelFatal) as refused:
        channel.parse_payout(send(channel.build_payout(over, now=now())), payout=over, now=now())
    assert refused.value.code == "balance_insufficient"

    # The lost-answer lookup finds it by transfer_group; by id too.
    for query in (
        channel.build_payout_query("wdr_pf_1", now=now()),
        channel.build_payout_query("wdr_pf_1", channel_payout_no=made.channel_payout_no, now=now()),
    ):
        found = channel.parse_payout_query(send(query), out_payout_no="wdr_pf_1", now=now())
        assert found.channel_payout_no == made.channel_payout_no and found.amount_minor == 3000
    with pytest.raises(ChannelOrderNotFound):
        query = channel.build_payout_query("wdr_pf_9", now=now())
        channel.parse_payout_query(send(query), out_payout_no="wdr_pf_9", now=now())

    delivery = sandbox.next_event(account.name, "transfer.created")
    event = channel.parse_callback(delivery.headers, delivery.body, now=now())
    assert event.payout is not None and event.payout.out_payout_no == "wdr_pf_1"
    assert event.payout.state is PayoutState.SUCCEEDED
