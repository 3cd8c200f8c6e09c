"""The unmodified ``stripe`` library against the Stripe emulator, and against payfront's adapter.

The library is synchronous (``requests``), so the sandbox and a webhook receiver run on their
own event loop in a background thread. The library sends an ``Idempotency-Key`` on every POST
and retries timeouts, 409s and 5xx with it; ``stripe.Webhook.construct_event`` verifies events
exactly as a Stripe integration does; ``stripe.WebhookSignature`` signs test events the way
Stripe's own helpers do, and payfront's ``parse_callback`` must accept them.
"""

from __future__ import annotations

import queue
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
import stripe
from aiohttp import web

from channels.base import CreateOrder, HttpResponse, TradeState
from channels.stripe import STRIPE_VERSION, from_credentials
from tests.interop.harness import BackgroundSandbox, running_sandbox


@dataclass
class Account:
    name: str
    account_id: str
    secret_key: str
    webhook_secret: str


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundSandbox]:
    with running_sandbox(
        tmp_path_factory.mktemp("stripe-sandbox"),
        route="/hooks/{name}",
        answer=lambda: web.json_response({"received": True}),
        seed=5,
        hang_s=10,
    ) as background:
        yield background


@pytest.fixture
def account(sandbox: BackgroundSandbox) -> Account:
    """A fresh account per test, with its own webhook inbox."""
    name = uuid.uuid4().hex[:8]
    answer = sandbox.admin(
        "POST", "/sandbox/stripe/accounts", {"webhook_url": f"{sandbox.notify_url}/{name}"}
    )
    assert answer.status_code == 200, answer.text
    registered = answer.json()
    return Account(
        name, registered["account_id"], registered["secret_key"], registered["webhook_secret"]
    )


def client_for(
    sandbox: BackgroundSandbox, account: Account, *, timeout: float = 10, retries: int = 2
) -> stripe.StripeClient:
    return stripe.StripeClient(
        account.secret_key,
        base_addresses={"api": sandbox.base_url},
        # A synchronous client with a short timeout, so that a held answer times out fast.
        http_client=stripe.RequestsClient(timeout=timeout),
        max_network_retries=retries,
    )


def create_params(pay_no: str, **extra: Any) -> dict[str, Any]:
    return {
        "amount": 1999,
        "currency": "usd",
        "description": "A cup of tea & cake",
        "metadata": {"pay_no": pay_no},
        "automatic_payment_methods": {"enabled": True},
        **extra,
    }


# -- the library's calls --------------------------------------------------------------------


def test_create_retrieve_confirm_cancel(sandbox: BackgroundSandbox, account: Account) -> None:
    client = client_for(sandbox, account)
    intent = client.v1.payment_intents.create(params=create_params("pay_lib_1"))
    assert intent.id.startswith("pi_")
    assert intent.status == "requires_payment_method"
    assert intent.client_secret is not None and intent.client_secret.startswith(intent.id)
    assert intent.metadata["pay_no"] == "pay_lib_1"
    assert intent.automatic_payment_methods is not None
    assert intent.automatic_payment_methods.enabled is True

    fetched = client.v1.payment_intents.retrieve(intent.id)
    assert fetched.id == intent.id and fetched.amount == 1999 and fetched.currency == "usd"

    canceled = client.v1.payment_intents.cancel(
        intent.id, params={"cancellation_reason": "requested_by_customer"}
    )
    assert canceled.status == "canceled"
    assert canceled.cancellation_reason == "requested_by_customer"

    other = client.v1.payment_intents.create(params=create_params("pay_lib_2"))
    confirmed = client.v1.payment_intents.confirm(
        other.id, params={"payment_method": "pm_card_visa"}
    )
    assert confirmed.status == "succeeded"
    assert confirmed.amount_received == 1999
    expanded = client.v1.payment_intents.retrieve(other.id, params={"expand": ["latest_charge"]})
    assert isinstance(expanded.latest_charge, stripe.Charge)
    assert expanded.latest_charge.metadata["pay_no"] == "pay_lib_2"


def test_library_errors_are_typed(sandbox: BackgroundSandbox, account: Account) -> None:
    client = client_for(sandbox, account, retries=0)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.payment_intents.retrieve("pi_doesnotexist")
    assert missing.value.code == "resource_missing"
    assert missing.value.http_status == 404

    intent = client.v1.payment_intents.create(params=create_params("pay_lib_err"))
    with pytest.raises(stripe.CardError) as declined:
        client.v1.payment_intents.confirm(
            intent.id, params={"payment_method": "pm_card_chargeDeclined"}
        )
    assert declined.value.code == "card_declined"
    assert declined.value.http_status == 402

    with pytest.raises(stripe.AuthenticationError):
        stripe.StripeClient(
            "sk_test_notregistered00000",
            base_addresses={"api": sandbox.base_url},
            http_client=stripe.RequestsClient(timeout=10),
        ).v1.payment_intents.retrieve(intent.id)

    with pytest.raises(stripe.InvalidRequestError) as invalid:
        client.v1.payment_intents.create(params={"amount": 10, "currency": "usd"})
    assert invalid.value.code == "amount_too_small"
    assert invalid.value.param == "amount"


def test_idempotency_keys_replay_and_refuse(sandbox: BackgroundSandbox, account: Account) -> None:
    client = client_for(sandbox, account, retries=0)
    options: Any = {"idempotency_key": "order-42"}
    first = client.v1.payment_intents.create(params=create_params("pay_42"), options=options)
    again = client.v1.payment_intents.create(params=create_params("pay_42"), options=options)
    assert again.id == first.id
    assert again.last_response is not None
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    with pytest.raises(stripe.IdempotencyError):
        client.v1.payment_intents.create(
            params=create_params("pay_42", amount=2000),
            options=options,
        )


def test_the_library_retries_a_timeout_with_its_key(
    sandbox: BackgroundSandbox, account: Account
) -> None:
    """The first answer is held back (the intent is made); the library times out and sends
    the same request with the same Idempotency-Key; the sandbox replays: one intent."""
    faults = sandbox.admin(
        "PUT", f"/sandbox/stripe/faults/{account.account_id}", {"timeout_rate": 1}
    )
    assert faults.status_code == 200
    client = client_for(sandbox, account, timeout=0.5, retries=1)
    intent = client.v1.payment_intents.create(params=create_params("pay_retry"))
    assert intent.last_response is not None
    assert intent.last_response.headers["Idempotent-Replayed"] == "true"
    created = sandbox.next_event(account.name, "payment_intent.created")
    assert created.event["data"]["object"]["id"] == intent.id
    assert (
        created.event["request"]["idempotency_key"]
        == intent.last_response.headers["Idempotency-Key"]
    )
    sandbox.admin("DELETE", f"/sandbox/stripe/faults/{account.account_id}")
    with pytest.raises(queue.Empty):
        sandbox.next_event(account.name, "payment_intent.created", timeout=0.3)


# -- webhooks -------------------------------------------------------------------------------


def test_construct_event_accepts_the_sandbox_events(
    sandbox: BackgroundSandbox, account: Account
) -> None:
    client = client_for(sandbox, account)
    intent = client.v1.payment_intents.create(params=create_params("pay_hook"))
    paid = sandbox.admin("POST", f"/sandbox/stripe/payment_intents/{intent.id}/pay", {})
    assert paid.status_code == 200, paid.text

    delivery = sandbox.next_event(account.name, "payment_intent.succeeded")
    event = stripe.Webhook.construct_event(
        delivery.body, delivery.headers["Stripe-Signature"], account.webhook_secret
    )
    assert event.type == "payment_intent.succeeded"
    succeeded = event.data.object
    assert succeeded["id"] == intent.id
    assert succeeded["status"] == "succeeded"
    assert succeeded["metadata"]["pay_no"] == "pay_hook"

    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            delivery.body + b" ", delivery.headers["Stripe-Signature"], account.webhook_secret
        )
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            delivery.body, delivery.headers["Stripe-Signature"], "whsec_notthesecret"
        )

    # The same bytes and header are accepted by payfront's adapter.
    adapter = from_credentials(
        {"secret_key": account.secret_key, "webhook_secret": account.webhook_secret}
    )
    parsed = adapter.parse_callback(delivery.headers, delivery.body, now=datetime.now(UTC))
    assert parsed.event_id == event.id
    assert parsed.trade.state is TradeState.PAID
    assert parsed.trade.out_trade_no == "pay_hook"


def test_rolled_secrets_verify_with_the_library(
    sandbox: BackgroundSandbox, account: Account
) -> None:
    rolled = sandbox.admin(
        "POST", f"/sandbox/stripe/accounts/{account.account_id}/roll_webhook_secret", {}
    ).json()
    client = client_for(sandbox, account)
    client.v1.payment_intents.create(params=create_params("pay_rolled"))
    delivery = sandbox.next_event(account.name, "payment_intent.created")
    header = delivery.headers["Stripe-Signature"]
    for secret in (account.webhook_secret, rolled["webhook_secret"]):
        assert stripe.Webhook.construct_event(delivery.body, header, secret).type == (
            "payment_intent.created"
        )


def test_events_signed_by_stripes_helpers_are_accepted_by_the_adapter() -> None:
    secret = "whsec_" + uuid.uuid4().hex
    adapter = from_credentials({"secret_key": "sk_test_helper0001", "webhook_secret": secret})
    now = datetime.now(UTC)
    payload = orjson.dumps(
        {
            "id": "evt_helper_1",
            "object": "event",
            "api_version": STRIPE_VERSION,
            "created": int(now.timestamp()),
            "data": {
                "object": {
                    "id": "pi_helper_1",
                    "object": "payment_intent",
                    "amount": 500,
                    "amount_received": 500,
                    "currency": "jpy",
                    "status": "succeeded",
                    "metadata": {"pay_no": "pay_helper_1"},
                    "latest_charge": "ch_helper_1",
                }
            },
            "livemode": False,
            "type": "payment_intent.succeeded",
        }
    ).decode()
    header = stripe.WebhookSignature.generate_signature_header(payload, secret)
    event = adapter.parse_callback({"Stripe-Signature": header}, payload.encode(), now=now)
    assert event.event_id == "evt_helper_1"
    assert (event.trade.amount_minor, event.trade.currency) == (500, "JPY")
    # And the library itself agrees with the adapter about that header.
    assert stripe.Webhook.construct_event(payload, header, secret).id == "evt_helper_1"


# -- payfront's adapter against the sandbox, cross-checked by the library -------------------


def send(request: Any) -> HttpResponse:
    with httpx.Client(timeout=10) as client:
        answer = client.request(
            request.method, request.url, headers=dict(request.headers), content=request.body
        )
    return HttpResponse(answer.status_code, dict(answer.headers), answer.content)


def test_adapter_create_is_what_the_library_would_send(
    sandbox: BackgroundSandbox, account: Account
) -> None:
    """The adapter's form body means the same parameters as the library's: the library,
    sending the adapter's Idempotency-Key with the same parameters, gets the replay."""
    adapter = from_credentials(
        {
            "secret_key": account.secret_key,
            "webhook_secret": account.webhook_secret,
            "api_base": sandbox.base_url,
            "account_id": account.account_id,
        }
    )
    now = datetime.now(UTC)
    order = CreateOrder(
        out_trade_no="pay_adapter_1",
        amount_minor=1999,
        currency="USD",
        description="A cup of tea & cake",
        notify_url="http://unused",
        method="payment_intent",
    )
    created = adapter.parse_create(send(adapter.build_create(order, now=now)), now=now)
    assert created.channel_trade_no is not None
    client = client_for(sandbox, account, retries=0)
    replayed = client.v1.payment_intents.create(
        params=create_params("pay_adapter_1"),
        options={"idempotency_key": "payfront-create-pay_adapter_1"},
    )
    assert replayed.id == created.channel_trade_no
    assert replayed.last_response is not None
    assert replayed.last_response.headers["Idempotent-Replayed"] == "true"

    status = adapter.parse_query(
        send(adapter.build_query("pay_adapter_1", channel_trade_no=replayed.id, now=now)), now=now
    )
    assert (status.state, status.amount_minor, status.currency) == (
        TradeState.NOT_PAID,
        1999,
        "USD",
    )
    close = adapter.build_close("pay_adapter_1", channel_trade_no=replayed.id, now=now)
    assert adapter.parse_close(send(close), now=now) is None
    assert adapter.parse_close(send(close), now=now) is None  # replayed: still closed
    assert client.v1.payment_intents.retrieve(replayed.id).status == "canceled"
