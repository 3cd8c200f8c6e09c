"""The Stripe emulator: API-key auth, bracket form parameters, validation, idempotency keys,
the PaymentIntent life cycle, refunds, signed webhooks with retries and secret rotation, fault
injection, and persistence. Signatures are checked here with ``hmac`` directly."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mock_channels.app import SandboxConfig, create_app
from mock_channels.stripe_forms import FormError, as_list, decode_form
from mock_channels.stripe_idempotency import IdempotencyKeys, SavedAnswer, fingerprint

FORM = "application/x-www-form-urlencoded"


# -- a webhook receiver and a sandbox -------------------------------------------------------


@dataclass
class Hook:
    """An account's webhook endpoint: records deliveries, answers from ``statuses`` in turn."""

    url: str = ""
    deliveries: list[tuple[dict[str, str], bytes, float]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.deliveries.append((dict(request.headers), await request.read(), time.monotonic()))
        self.arrived.set()
        status = self.statuses.pop(0) if self.statuses else 200
        return web.json_response({"received": status < 300}, status=status)

    async def wait_for(self, count: int, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.deliveries) < count:
                self.arrived.clear()
                await self.arrived.wait()

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body, _ in self.deliveries]

    def of_type(self, event_type: str) -> list[tuple[dict[str, str], bytes]]:
        return [
            (headers, body)
            for headers, body, _ in self.deliveries
            if json.loads(body)["type"] == event_type
        ]


@dataclass
class Answer:
    status: int
    headers: Any
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> dict[str, Any]:
        return dict(self.json()["error"])


@dataclass
class Box:
    client: TestClient[web.Request, web.Application]
    account: dict[str, Any]
    config: SandboxConfig

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.account['secret_key']}"}

    async def api(
        self,
        method: str,
        path: str,
        params: Any = None,
        *,
        key: str | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
        raw: str | None = None,
        timeout: float | None = None,
    ) -> Answer:
        sent = {**self.auth(key), **(headers or {})}
        if idempotency_key is not None:
            sent["Idempotency-Key"] = idempotency_key
        body = raw if raw is not None else (urlencode(params) if params is not None else "")
        if method == "GET":
            path = f"{path}?{body}" if body else path
            body = ""
        elif "Content-Type" not in sent:
            sent["Content-Type"] = FORM
        coro = self.client.request(method, path, data=body.encode(), headers=sent)
        response = await (asyncio.wait_for(coro, timeout) if timeout else coro)
        async with response:
            return Answer(response.status, response.headers, await response.read())

    async def admin(self, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
        response = await self.client.request(method, path, json=payload)
        async with response:
            text = await response.text()
            return response.status, (json.loads(text) if text else None)

    async def create(self, pay_no: str = "pay_0001", **params: Any) -> dict[str, Any]:
        fields = {"amount": 1999, "currency": "usd", "metadata[pay_no]": pay_no, **params}
        answer = await self.api("POST", "/v1/payment_intents", fields)
        assert answer.status == 200, answer.body
        return dict(answer.json())

    async def pay(self, intent_id: str, **body: Any) -> tuple[int, Any]:
        return await self.admin("POST", f"/sandbox/stripe/payment_intents/{intent_id}/pay", body)

    async def view(self, intent_id: str) -> dict[str, Any]:
        status, view = await self.admin("GET", f"/sandbox/stripe/payment_intents/{intent_id}")
        assert status == 200, view
        return dict(view)


async def start_box(state_dir: Path, registration: dict[str, Any], **config: Any) -> Box:
    settings = SandboxConfig(
        state_dir=state_dir,
        time_scale=config.pop("time_scale", 0.0001),
        callback_timeout_s=config.pop("callback_timeout_s", 1.0),
        seed=config.pop("seed", 1),
        **config,
    )
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    response = await client.post("/sandbox/stripe/accounts", json=registration)
    assert response.status == 200, await response.text()
    return Box(client, await response.json(), settings)


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    receiver = Hook()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    server = TestServer(app)
    await server.start_server()
    receiver.url = str(server.make_url("/hook"))
    yield receiver
    await server.close()


@pytest.fixture
async def box(tmp_path: Path, hook: Hook) -> AsyncIterator[Box]:
    sandbox = await start_box(tmp_path / "state", {"webhook_url": hook.url})
    yield sandbox
    await sandbox.client.close()


def verify(headers: dict[str, str], body: bytes, secret: str) -> bool:
    """Stripe's v1 check, written out: any v1 equal to HMAC-SHA256(secret, "t." + body)."""
    items = [item.split("=", 1) for item in headers["Stripe-Signature"].split(",")]
    timestamp = next(value for name, value in items if name == "t")
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return any(name == "v1" and hmac.compare_digest(value, expected) for name, value in items)


def signatures(headers: dict[str, str], scheme: str = "v1") -> list[str]:
    items = [item.split("=", 1) for item in headers["Stripe-Signature"].split(",")]
    return [value for name, value in items if name == scheme]


# -- forms and the idempotency store, directly ----------------------------------------------


def test_decode_form_nests_brackets() -> None:
    text = (
        "amount=100&metadata[pay_no]=P1&metadata%5Bcart%5D=42&expand[]=a&expand[]=b"
        "&payment_method_types[0]=card&payment_method_types[1]=link&automatic_payment_methods"
        "[enabled]=true&items[0][price]=p_1&description=&a=1&a=2"
    )
    assert decode_form(text) == {
        "amount": "100",
        "metadata": {"pay_no": "P1", "cart": "42"},
        "expand": ["a", "b"],
        "payment_method_types": {"0": "card", "1": "link"},
        "automatic_payment_methods": {"enabled": "true"},
        "items": {"0": {"price": "p_1"}},
        "description": "",
        "a": "2",
    }
    assert as_list({"1": "link", "0": "card"}, "p") == ["card", "link"]
    assert as_list(["x"], "p") == ["x"]


@pytest.mark.parametrize(
    "text",
    ["a=1&a[b]=2", "a[b]=2&a=1", "a[]=1&a[b]=2", "a=1&a[]=2", "[x]=1", "a[][b]=1", "a%ff=1"],
)
def test_decode_form_refuses_conflicts(text: str) -> None:
    with pytest.raises(FormError):
        decode_form(text)


@pytest.mark.parametrize("value", [{"0": "a", "2": "b"}, {"01": "a"}, {"x": "a"}, "str"])
def test_as_list_refuses_non_lists(value: Any) -> None:
    with pytest.raises(FormError):
        as_list(value, "p")


def test_idempotency_keys_expire_and_forget() -> None:
    now = [1000.0]
    keys = IdempotencyKeys(ttl_s=86400, clock=lambda: now[0])
    first = fingerprint("POST", "/v1/payment_intents", {"amount": "1", "m": {"a": "b", "c": "d"}})
    same = fingerprint("POST", "/v1/payment_intents", {"m": {"c": "d", "a": "b"}, "amount": "1"})
    assert first == same  # order does not matter
    assert keys.begin("acct_1", "k", first) is None
    keys.save("acct_1", "k", SavedAnswer(500, b"{}", {}))
    assert keys.begin("acct_1", "k", first) == SavedAnswer(500, b"{}", {})  # 500s replay too
    assert keys.begin("acct_2", "k", first) is None  # scoped per account
    now[0] += 86401
    assert keys.begin("acct_1", "k", first) is None  # pruned after 24 h: a new request
    keys.forget("acct_1", "k")
    assert keys.begin("acct_1", "k", first) is None


# -- accounts and authentication ------------------------------------------------------------


async def test_account_registration_and_persistence(tmp_path: Path, hook: Hook) -> None:
    state = tmp_path / "state"
    first = await start_box(state, {"webhook_url": hook.url})
    account = first.account
    assert account["account_id"].startswith("acct_")
    assert account["secret_key"].startswith("sk_test_")
    assert account["webhook_secret"].startswith("whsec_")
    assert account["webhook_url"] == hook.url
    assert account["livemode"] is False
    # Registering again with the key: the same account, the webhook URL updated.
    status, again = await first.admin(
        "POST",
        "/sandbox/stripe/accounts",
        {"secret_key": account["secret_key"], "webhook_url": hook.url + "?v=2"},
    )
    assert status == 200
    assert again["account_id"] == account["account_id"]
    assert again["webhook_url"] == hook.url + "?v=2"
    intent = await first.create()
    await first.client.close()
    assert (state / "stripe" / "accounts.json").stat().st_mode & 0o077 == 0

    restarted = await start_box(state, {"secret_key": account["secret_key"]})
    try:
        assert restarted.account["account_id"] == account["account_id"]
        assert restarted.account["webhook_secret"] == account["webhook_secret"]
        answer = await restarted.api("GET", f"/v1/payment_intents/{intent['id']}")
        assert answer.status == 404  # objects live in memory only
        assert answer.error["code"] == "resource_missing"
    finally:
        await restarted.client.close()


async def test_registration_restores_given_credentials(box: Box) -> None:
    given = {
        "account_id": "acct_1Restored00",
        "secret_key": "sk_test_restored_key_0001",
        "webhook_secret": "whsec_restoredsecret0001",
    }
    status, registered = await box.admin("POST", "/sandbox/stripe/accounts", given)
    assert status == 200
    assert {k: registered[k] for k in given} == given
    assert (await box.create(key_owner := "pay_r1"))["metadata"] == {"pay_no": key_owner}
    answer = await box.api("GET", "/v1/events/evt_none", key=given["secret_key"])
    assert answer.status == 404


@pytest.mark.parametrize(
    "body",
    [
        {"secret_key": "sk_live_realkey000001"},
        {"secret_key": "pk_test_publishable01"},
        {"webhook_url": "ftp://example.com/hook"},
        {"webhook_secret": "nope"},
        {"unknown": 1},
    ],
)
async def test_registration_is_validated(box: Box, body: dict[str, Any]) -> None:
    status, answer = await box.admin("POST", "/sandbox/stripe/accounts", body)
    assert status == 400
    assert answer["error"]["type"] == "invalid_request_error"


async def test_registration_conflicts(box: Box) -> None:
    status, _ = await box.admin(
        "POST",
        "/sandbox/stripe/accounts",
        {"account_id": box.account["account_id"], "secret_key": "sk_test_someotherkey01"},
    )
    assert status == 409


async def test_authentication(box: Box) -> None:
    missing = await box.client.get("/v1/payment_intents/pi_x")
    assert missing.status == 401
    assert "did not provide an API key" in (await missing.json())["error"]["message"]

    wrong = await box.api("GET", "/v1/payment_intents/pi_x", key="sk_test_wrongkey12345678")
    assert wrong.status == 401
    assert wrong.error["message"].startswith("Invalid API Key provided: sk_test_")
    assert "wrongkey1234" not in wrong.error["message"]  # masked

    basic = base64.b64encode(f"{box.account['secret_key']}:".encode()).decode()
    answer = await box.client.get(
        "/v1/payment_intents/pi_x", headers={"Authorization": f"Basic {basic}"}
    )
    assert answer.status == 404  # authenticated; the intent does not exist

    other = await box.api(
        "GET", "/v1/payment_intents/pi_x", headers={"Stripe-Account": "acct_1Someoneelse"}
    )
    assert other.status == 403
    own = await box.api(
        "GET",
        "/v1/payment_intents/pi_x",
        headers={"Stripe-Account": box.account["account_id"]},
    )
    assert own.status == 404


async def test_unknown_urls_answer_like_stripe(box: Box) -> None:
    for method, path in [("GET", "/v1/customers"), ("GET", "/v1/payment_intents")]:
        answer = await box.api(method, path)
        assert answer.status == 404
        assert answer.error["message"].startswith(f"Unrecognized request URL ({method}: {path})")
        assert answer.headers["Request-Id"].startswith("req_")


# -- PaymentIntents -------------------------------------------------------------------------


async def test_create_payment_intent(box: Box) -> None:
    answer = await box.api(
        "POST",
        "/v1/payment_intents",
        raw="amount=1999&currency=usd&description=Tea+%26+cake&metadata[pay_no]=pay_1"
        "&automatic_payment_methods[enabled]=true",
        headers={"Stripe-Version": "2024-06-20"},
    )
    assert answer.status == 200, answer.body
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.headers["Request-Id"].startswith("req_")
    assert answer.headers["Stripe-Version"] == "2024-06-20"
    intent = answer.json()
    assert intent["id"].startswith("pi_")
    assert intent["object"] == "payment_intent"
    assert intent["client_secret"].startswith(intent["id"] + "_secret_")
    assert intent["status"] == "requires_payment_method"
    assert (intent["amount"], intent["currency"], intent["amount_received"]) == (1999, "usd", 0)
    assert intent["description"] == "Tea & cake"
    assert intent["metadata"] == {"pay_no": "pay_1"}
    assert intent["automatic_payment_methods"] == {"allow_redirects": "always", "enabled": True}
    assert intent["livemode"] is False
    assert intent["latest_charge"] is None
    assert isinstance(intent["created"], int)


async def test_percent_encoded_brackets_mean_the_same(box: Box) -> None:
    literal = await box.create(**{"metadata[cart]": "42"})
    encoded = await box.api(
        "POST",
        "/v1/payment_intents",
        raw="amount=1999&currency=usd&metadata%5Bpay_no%5D=pay_0001&metadata%5Bcart%5D=42",
    )
    assert encoded.json()["metadata"] == literal["metadata"] == {"pay_no": "pay_0001", "cart": "42"}


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({"currency": "usd"}, "amount", "parameter_missing"),
        ({"amount": 100}, "currency", "parameter_missing"),
        ({"amount": "12.5", "currency": "usd"}, "amount", "parameter_invalid_integer"),
        ({"amount": 0, "currency": "usd"}, "amount", "parameter_invalid_integer"),
        ({"amount": 100, "currency": "USD"}, "currency", None),
        ({"amount": 100, "currency": "xyz"}, "currency", None),
        ({"amount": 49, "currency": "usd"}, "amount", "amount_too_small"),
        ({"amount": 49, "currency": "jpy"}, "amount", "amount_too_small"),
        ({"amount": 100_000_000, "currency": "usd"}, "amount", "amount_too_large"),
        ({"amount": 100, "currency": "usd", "foo": "bar"}, "foo", "parameter_unknown"),
        ({"amount": 100, "currency": "usd", "automatic_payment_methods[foo]": "1"}, "foo",
         "parameter_unknown"),
        ({"amount": 100, "currency": "usd", "automatic_payment_methods[enabled]": "yes"},
         "enabled", None),
        ({"amount": 100, "currency": "usd", "metadata[" + "k" * 41 + "]": "v"},
         "metadata[" + "k" * 41 + "]", None),
        ({"amount": 100, "currency": "usd", "metadata[k]": "v" * 501}, "metadata[k]", None),
        ({"amount": 100, "currency": "usd", "payment_method_types[0]": "card",
          "automatic_payment_methods[enabled]": "true"}, "payment_method_types", None),
        ({"amount": 100, "currency": "usd", "capture_method": "later"}, "capture_method", None),
        ({"amount": 100, "currency": "usd", "confirm": "true"}, "payment_method",
         "parameter_missing"),
        ({"amount": 100, "currency": "usd", "payment_method": "pm_nope"}, "payment_method",
         "resource_missing"),
        ({"amount": 100, "currency": "usd", "expand[]": "customer"}, "expand[0]", None),
    ],
)  # fmt: skip
async def test_create_validates_like_stripe(
    box: Box, params: dict[str, Any], param: str, code: str | None
) -> None:
    answer = await box.api("POST", "/v1/payment_intents", params, idempotency_key="k-invalid")
    assert answer.status == 400, answer.body
    assert answer.error["type"] == "invalid_request_error"
    assert answer.error.get("param") == param
    assert answer.error.get("code") == code
    # A refused request is not kept for its key: the corrected one goes through.
    fixed = await box.api(
        "POST",
        "/v1/payment_intents",
        {"amount": 100, "currency": "usd"},
        idempotency_key="k-invalid",
    )
    assert fixed.status == 200, fixed.body
    assert "Idempotent-Replayed" not in fixed.headers


async def test_too_many_metadata_keys_and_json_bodies_are_refused(box: Box) -> None:
    params = {"amount": 100, "currency": "usd", **{f"metadata[k{i}]": "v" for i in range(51)}}
    assert (await box.api("POST", "/v1/payment_intents", params)).error["param"] == "metadata"
    as_json = await box.api(
        "POST",
        "/v1/payment_intents",
        raw=json.dumps({"amount": 100, "currency": "usd"}),
        headers={"Content-Type": "application/json"},
    )
    assert as_json.status == 400


async def test_zero_decimal_amounts_are_whole_units(box: Box) -> None:
    intent = await box.create(amount=500, currency="jpy")
    assert (intent["amount"], intent["currency"]) == (500, "jpy")
    small = await box.api("POST", "/v1/payment_intents", {"amount": 49, "currency": "jpy"})
    assert small.error["message"] == "Amount must be at least 50 jpy"
    small = await box.api("POST", "/v1/payment_intents", {"amount": 49, "currency": "usd"})
    assert small.error["message"] == "Amount must be at least 0.50 usd"


# -- idempotency ----------------------------------------------------------------------------


async def test_same_key_same_params_replays_the_first_answer(box: Box) -> None:
    params = {"amount": 1999, "currency": "usd", "metadata[pay_no]": "pay_idem"}
    first = await box.api("POST", "/v1/payment_intents", params, idempotency_key="payfront-1")
    # The same parameters, encoded in another order and with encoded brackets.
    raw = "metadata%5Bpay_no%5D=pay_idem&currency=usd&amount=1999"
    again = await box.api("POST", "/v1/payment_intents", raw=raw, idempotency_key="payfront-1")
    assert first.status == again.status == 200
    assert again.body == first.body
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Idempotency-Key"] == "payfront-1"
    assert "Idempotent-Replayed" not in first.headers
    view = await box.view(first.json()["id"])
    assert [e["type"] for e in view["events"]] == ["payment_intent.created"]  # created once


async def test_same_key_other_params_or_endpoint_is_an_idempotency_error(box: Box) -> None:
    params = {"amount": 1999, "currency": "usd"}
    first = await box.api("POST", "/v1/payment_intents", params, idempotency_key="k-1")
    assert first.status == 200
    changed = await box.api(
        "POST", "/v1/payment_intents", {**params, "amount": 2000}, idempotency_key="k-1"
    )
    assert changed.status == 400
    assert changed.error["type"] == "idempotency_error"
    assert "k-1" in changed.error["message"]
    other_endpoint = await box.api(
        "POST", f"/v1/payment_intents/{first.json()['id']}/cancel", idempotency_key="k-1"
    )
    assert other_endpoint.status == 400
    assert other_endpoint.error["type"] == "idempotency_error"


async def test_keys_are_scoped_per_account(box: Box) -> None:
    status, other = await box.admin("POST", "/sandbox/stripe/accounts", {})
    assert status == 200
    params = {"amount": 1999, "currency": "usd"}
    mine = await box.api("POST", "/v1/payment_intents", params, idempotency_key="shared")
    theirs = await box.api(
        "POST", "/v1/payment_intents", params, idempotency_key="shared", key=other["secret_key"]
    )
    assert mine.json()["id"] != theirs.json()["id"]
    assert "Idempotent-Replayed" not in theirs.headers


async def test_a_key_in_use_is_a_conflict(box: Box) -> None:
    await box.admin(
        "PUT", f"/sandbox/stripe/faults/{box.account['account_id']}", {"latency_ms": 300}
    )
    params = {"amount": 1999, "currency": "usd"}
    slow = asyncio.create_task(
        box.api("POST", "/v1/payment_intents", params, idempotency_key="busy")
    )
    await asyncio.sleep(0.1)
    racing = await box.api("POST", "/v1/payment_intents", params, idempotency_key="busy")
    assert racing.status == 409
    assert racing.error["code"] == "idempotency_key_in_use"
    assert (await slow).status == 200


async def test_overlong_keys_are_refused(box: Box) -> None:
    answer = await box.api(
        "POST", "/v1/payment_intents", {"amount": 100, "currency": "usd"}, idempotency_key="k" * 256
    )
    assert answer.status == 400


# -- retrieve, confirm, cancel --------------------------------------------------------------


async def test_retrieve_with_expanded_charge(box: Box) -> None:
    intent = await box.create()
    assert (await box.pay(intent["id"]))[0] == 200
    plain = (await box.api("GET", f"/v1/payment_intents/{intent['id']}")).json()
    assert plain["status"] == "succeeded"
    assert plain["amount_received"] == 1999
    assert plain["latest_charge"].startswith("ch_")
    expanded = await box.api(
        "GET", f"/v1/payment_intents/{intent['id']}", {"expand[]": "latest_charge"}
    )
    charge = expanded.json()["latest_charge"]
    assert charge["id"] == plain["latest_charge"]
    assert charge["object"] == "charge"
    assert charge["status"] == "succeeded" and charge["paid"] is True
    assert charge["metadata"] == {"pay_no": "pay_0001"}  # copied from the intent
    assert charge["payment_intent"] == intent["id"]
    fetched = await box.api("GET", f"/v1/charges/{charge['id']}")
    assert fetched.json() == charge


async def test_objects_are_private_to_their_account(box: Box) -> None:
    intent = await box.create()
    _, other = await box.admin("POST", "/sandbox/stripe/accounts", {})
    answer = await box.api("GET", f"/v1/payment_intents/{intent['id']}", key=other["secret_key"])
    assert answer.status == 404
    assert answer.error == {
        "code": "resource_missing",
        "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
        "message": f"No such payment_intent: '{intent['id']}'",
        "param": "intent",
        "type": "invalid_request_error",
    }


async def test_confirm_success_and_decline(box: Box, hook: Hook) -> None:
    intent = await box.create()
    declined = await box.api(
        "POST",
        f"/v1/payment_intents/{intent['id']}/confirm",
        {"payment_method": "pm_card_chargeDeclinedInsufficientFunds"},
    )
    assert declined.status == 402
    error = declined.error
    assert (error["type"], error["code"], error["decline_code"]) == (
        "card_error",
        "card_declined",
        "insufficient_funds",
    )
    assert error["payment_intent"]["status"] == "requires_payment_method"
    assert error["payment_intent"]["last_payment_error"]["decline_code"] == "insufficient_funds"

    confirmed = await box.api(
        "POST", f"/v1/payment_intents/{intent['id']}/confirm", {"payment_method": "pm_card_visa"}
    )
    assert confirmed.status == 200
    assert confirmed.json()["status"] == "succeeded"
    assert confirmed.json()["last_payment_error"] is None

    again = await box.api("POST", f"/v1/payment_intents/{intent['id']}/confirm")
    assert again.status == 400
    assert again.error["code"] == "payment_intent_unexpected_state"
    unknown = await box.api(
        "POST", f"/v1/payment_intents/{(await box.create())['id']}/confirm",
        {"payment_method": "pm_card_unknown"},
    )  # fmt: skip
    assert unknown.status == 400 and unknown.error["param"] == "payment_method"

    await hook.wait_for(6)
    types = [event["type"] for event in hook.events()]
    for expected in ("charge.failed", "payment_intent.payment_failed", "charge.succeeded",
                     "payment_intent.succeeded"):  # fmt: skip
        assert expected in types


async def test_create_and_confirm_at_once(box: Box) -> None:
    intent = await box.create(payment_method="pm_card_visa", confirm="true")
    assert intent["status"] == "succeeded"
    pending = await box.create(payment_method="pm_card_visa")
    assert pending["status"] == "requires_confirmation"


async def test_cancel(box: Box) -> None:
    intent = await box.create()
    answer = await box.api(
        "POST",
        f"/v1/payment_intents/{intent['id']}/cancel",
        {"cancellation_reason": "abandoned"},
        idempotency_key="cancel-1",
    )
    assert answer.status == 200
    canceled = answer.json()
    assert canceled["status"] == "canceled"
    assert canceled["cancellation_reason"] == "abandoned"
    assert isinstance(canceled["canceled_at"], int)
    # Twice with another key: refused, and the error carries the intent.
    twice = await box.api("POST", f"/v1/payment_intents/{intent['id']}/cancel")
    assert twice.status == 400
    assert twice.error["code"] == "payment_intent_unexpected_state"
    assert twice.error["payment_intent"]["status"] == "canceled"
    assert "status of canceled" in twice.error["message"]
    # A cancelled intent cannot be paid.
    assert (await box.pay(intent["id"]))[0] == 409

    paid = await box.create()
    await box.pay(paid["id"])
    late = await box.api("POST", f"/v1/payment_intents/{paid['id']}/cancel")
    assert late.status == 400
    assert late.error["payment_intent"]["status"] == "succeeded"
    bad_reason = await box.api(
        "POST", f"/v1/payment_intents/{paid['id']}/cancel", {"cancellation_reason": "bored"}
    )
    assert bad_reason.status == 400 and bad_reason.error["param"] == "cancellation_reason"


# -- the shopper and webhooks ---------------------------------------------------------------


async def test_paying_sends_a_signed_event(box: Box, hook: Hook) -> None:
    intent = await box.create("pay_signed")
    status, view = await box.pay(intent["id"])
    assert status == 200
    assert view["payment_intent"]["status"] == "succeeded"
    await hook.wait_for(3)  # payment_intent.created, charge.succeeded, payment_intent.succeeded
    headers, body = hook.of_type("payment_intent.succeeded")[0]
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["User-Agent"].startswith("Stripe/1.0")
    assert verify(headers, body, box.account["webhook_secret"])
    assert not verify(headers, body + b" ", box.account["webhook_secret"])
    assert not verify(headers, body, "whsec_someoneelse")
    assert len(signatures(headers, "v0")) == 1  # test mode's extra scheme
    timestamp = int(dict(i.split("=", 1) for i in headers["Stripe-Signature"].split(","))["t"])
    assert abs(timestamp - time.time()) < 60
    event = json.loads(body)
    assert event["id"].startswith("evt_")
    assert event["object"] == "event"
    assert event["livemode"] is False
    assert event["data"]["object"]["id"] == intent["id"]
    assert event["data"]["object"]["status"] == "succeeded"
    assert event["data"]["object"]["metadata"] == {"pay_no": "pay_signed"}
    assert event["request"] == {"id": None, "idempotency_key": None}

    events = (await box.view(intent["id"]))["events"]
    succeeded = next(e for e in events if e["type"] == "payment_intent.succeeded")
    assert succeeded["delivered"] is True
    assert succeeded["delivery_attempts"][0]["status"] == 200

    fetched = await box.api("GET", f"/v1/events/{event['id']}")
    assert fetched.json()["data"] == event["data"]


async def test_events_carry_the_api_request(box: Box, hook: Hook) -> None:
    answer = await box.api(
        "POST", "/v1/payment_intents", {"amount": 100, "currency": "usd"}, idempotency_key="k-evt"
    )
    await hook.wait_for(1)
    event = hook.events()[0]
    assert event["type"] == "payment_intent.created"
    assert event["request"] == {"id": answer.headers["Request-Id"], "idempotency_key": "k-evt"}


async def test_paying_again_resends_the_same_event(box: Box, hook: Hook) -> None:
    intent = await box.create()
    await box.pay(intent["id"])
    assert (await box.pay(intent["id"]))[0] == 409
    status, _ = await box.pay(intent["id"], again=True)
    assert status == 200
    await hook.wait_for(4)
    resent = hook.of_type("payment_intent.succeeded")
    assert len(resent) == 2
    assert json.loads(resent[0][1])["id"] == json.loads(resent[1][1])["id"]


async def test_failed_then_processing_then_paid(box: Box, hook: Hook) -> None:
    intent = await box.create()
    status, view = await box.pay(intent["id"], outcome="fail", decline_code="insufficient_funds")
    assert status == 200
    assert view["payment_intent"]["status"] == "requires_payment_method"
    assert view["payment_intent"]["last_payment_error"]["decline_code"] == "insufficient_funds"
    status, view = await box.pay(intent["id"], outcome="processing")
    assert view["payment_intent"]["status"] == "processing"
    assert (await box.pay(intent["id"], outcome="processing"))[0] == 409
    status, view = await box.pay(intent["id"], amount_received=1000)
    assert view["payment_intent"]["status"] == "succeeded"
    assert view["payment_intent"]["amount_received"] == 1000
    await hook.wait_for(6)
    assert [e["type"] for e in hook.events()] == [
        "payment_intent.created",
        "charge.failed",
        "payment_intent.payment_failed",
        "payment_intent.processing",
        "charge.succeeded",
        "payment_intent.succeeded",
    ]


async def test_enabled_events_filter_deliveries(box: Box, hook: Hook) -> None:
    await box.admin(
        "POST",
        "/sandbox/stripe/accounts",
        {"secret_key": box.account["secret_key"], "enabled_events": ["payment_intent.succeeded"]},
    )
    intent = await box.create()
    await box.pay(intent["id"])
    await hook.wait_for(1)
    await asyncio.sleep(0.1)
    assert [e["type"] for e in hook.events()] == ["payment_intent.succeeded"]


async def test_webhooks_are_retried_until_acknowledged(box: Box, hook: Hook) -> None:
    await box.admin(
        "POST",
        "/sandbox/stripe/accounts",
        {"secret_key": box.account["secret_key"], "enabled_events": ["payment_intent.succeeded"]},
    )
    hook.statuses = [500, 400]
    intent = await box.create()
    await box.pay(intent["id"])
    await hook.wait_for(3)
    bodies = {body for _, body, _ in hook.deliveries}
    assert len(bodies) == 1  # the same event each time
    for headers, body, _ in hook.deliveries:
        assert verify(headers, body, box.account["webhook_secret"])
    # 5 min, then 25 min, at time_scale 1e-4: 0.03 s and 0.15 s.
    gaps = [b[2] - a[2] for a, b in zip(hook.deliveries, hook.deliveries[1:], strict=False)]
    assert 0.02 < gaps[0] < gaps[1]
    attempts = next(
        e
        for e in (await box.view(intent["id"]))["events"]
        if e["type"] == "payment_intent.succeeded"
    )["delivery_attempts"]
    assert [(a["attempt"], a["status"]) for a in attempts] == [(1, 500), (2, 400), (3, 200)]


async def test_rolled_secret_signs_alongside_the_new_one(box: Box, hook: Hook) -> None:
    account_id = box.account["account_id"]
    old = box.account["webhook_secret"]
    status, rolled = await box.admin(
        "POST", f"/sandbox/stripe/accounts/{account_id}/roll_webhook_secret", {}
    )
    assert status == 200
    new = rolled["webhook_secret"]
    assert new != old
    await box.create("pay_roll_1")
    await hook.wait_for(1)
    headers, body, _ = hook.deliveries[0]
    assert len(signatures(headers)) == 2
    assert verify(headers, body, new) and verify(headers, body, old)

    # Roll again, expiring the secret being replaced at once: it stops signing, while the
    # first one keeps its own 24 hours (8.64 s at this time scale).
    await box.admin(
        "POST",
        f"/sandbox/stripe/accounts/{account_id}/roll_webhook_secret",
        {"keep_previous_s": 0},
    )
    _, current = await box.admin(
        "POST", "/sandbox/stripe/accounts", {"secret_key": box.account["secret_key"]}
    )
    await box.create("pay_roll_2")
    await hook.wait_for(2)
    headers, body, _ = hook.deliveries[1]
    assert len(signatures(headers)) == 2
    assert verify(headers, body, current["webhook_secret"])
    assert verify(headers, body, old)
    assert not verify(headers, body, new)


# -- refunds --------------------------------------------------------------------------------


async def test_refunds(box: Box, hook: Hook) -> None:
    intent = await box.create()
    unpaid = await box.api("POST", "/v1/refunds", {"payment_intent": intent["id"]})
    assert unpaid.status == 400 and unpaid.error["code"] == "charge_not_refundable"
    await box.pay(intent["id"])
    partial = await box.api("POST", "/v1/refunds", {"payment_intent": intent["id"], "amount": 500})
    assert partial.status == 200, partial.body
    refund = partial.json()
    assert (refund["object"], refund["amount"], refund["status"]) == ("refund", 500, "succeeded")
    assert refund["payment_intent"] == intent["id"]
    too_much = await box.api(
        "POST", "/v1/refunds", {"payment_intent": intent["id"], "amount": 1500}
    )
    assert too_much.status == 400 and too_much.error["code"] == "amount_too_large"
    rest = await box.api("POST", "/v1/refunds", {"charge": refund["charge"]})
    assert rest.json()["amount"] == 1499
    done = await box.api("POST", "/v1/refunds", {"charge": refund["charge"]})
    assert done.error["code"] == "charge_already_refunded"
    assert (await box.api("POST", "/v1/refunds", {})).error["code"] == "parameter_missing"

    await hook.wait_for(7)
    refunded = [json.loads(body)["data"]["object"] for _, body in hook.of_type("charge.refunded")]
    assert [(c["amount_refunded"], c["refunded"]) for c in refunded] == [(500, False), (1999, True)]
    assert refunded[0]["metadata"] == {"pay_no": "pay_0001"}
    # The intent stays succeeded after a refund, as at Stripe.
    after = await box.api("GET", f"/v1/payment_intents/{intent['id']}")
    assert after.json()["status"] == "succeeded"


# -- faults ---------------------------------------------------------------------------------


async def set_faults(box: Box, **plan: Any) -> None:
    status, _ = await box.admin("PUT", f"/sandbox/stripe/faults/{box.account['account_id']}", plan)
    assert status == 200


async def test_fault_500_acts_on_nothing_and_keeps_no_key(box: Box, hook: Hook) -> None:
    await set_faults(box, error_rate=1.0)
    params = {"amount": 1999, "currency": "usd"}
    failed = await box.api("POST", "/v1/payment_intents", params, idempotency_key="k-500")
    assert failed.status == 500
    assert failed.error["type"] == "api_error"
    status, plan = await box.admin("GET", f"/sandbox/stripe/faults/{box.account['account_id']}")
    assert plan["error_rate"] == 1.0
    status, _ = await box.admin("DELETE", f"/sandbox/stripe/faults/{box.account['account_id']}")
    assert status == 204
    retried = await box.api("POST", "/v1/payment_intents", params, idempotency_key="k-500")
    assert retried.status == 200
    assert "Idempotent-Replayed" not in retried.headers
    await hook.wait_for(1)
    await asyncio.sleep(0.05)
    assert len(hook.deliveries) == 1  # one intent made, not two


async def test_fault_rate_limit(box: Box) -> None:
    await set_faults(box, frequency_limit_rate=1.0)
    answer = await box.api("POST", "/v1/payment_intents", {"amount": 1999, "currency": "usd"})
    assert answer.status == 429
    assert answer.error["code"] == "rate_limit"


async def test_fault_timeout_acts_then_the_key_replays(tmp_path: Path, hook: Hook) -> None:
    box = await start_box(tmp_path / "state", {"webhook_url": hook.url}, hang_s=5.0)
    try:
        await set_faults(box, timeout_rate=1.0)
        params = {"amount": 1999, "currency": "usd", "metadata[pay_no]": "pay_hang"}
        with pytest.raises(TimeoutError):
            await box.api(
                "POST", "/v1/payment_intents", params, idempotency_key="k-hang", timeout=0.3
            )
        await hook.wait_for(1)  # the intent was made
        made = hook.events()[0]["data"]["object"]["id"]
        await set_faults(box)
        again = await box.api("POST", "/v1/payment_intents", params, idempotency_key="k-hang")
        assert again.status == 200
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["id"] == made
    finally:
        await box.client.close()


async def test_fault_lost_and_duplicated_webhooks(box: Box, hook: Hook) -> None:
    await box.admin(
        "POST",
        "/sandbox/stripe/accounts",
        {"secret_key": box.account["secret_key"], "enabled_events": ["payment_intent.succeeded"]},
    )
    await set_faults(box, lose_callbacks=1.0)
    lost = await box.create()
    await box.pay(lost["id"])
    event = next(
        e for e in (await box.view(lost["id"]))["events"] if e["type"].endswith("succeeded")
    )
    assert event["deliveries_lost"] == 1 and event["delivery_attempts"] == []

    await set_faults(box, duplicate_callbacks=True)
    doubled = await box.create()
    await box.pay(doubled["id"])
    await hook.wait_for(2)
    first, second = hook.events()
    assert first["id"] == second["id"]


async def test_admin_finds_intents_by_account_and_order_number(box: Box) -> None:
    first = await box.create("pay_find_1")
    await box.create("pay_find_2")
    status, found = await box.admin(
        "GET",
        f"/sandbox/stripe/payment_intents?account_id={box.account['account_id']}&pay_no=pay_find_1",
    )
    assert status == 200
    assert [view["payment_intent"]["id"] for view in found["data"]] == [first["id"]]
    status, everything = await box.admin("GET", "/sandbox/stripe/payment_intents")
    assert len(everything["data"]) == 2
    assert (await box.admin("GET", "/sandbox/stripe/payment_intents/pi_nope"))[0] == 404
