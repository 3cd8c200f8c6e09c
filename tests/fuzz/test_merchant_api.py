"""Hostile input against the merchant API on the real stack (gateway, Redis, the database):
every answer to a bad request is a documented 4xx error object, never a 5xx, and it leaves
the database as it was. (Schemathesis in tests/integration/test_openapi.py walks the API from
its schema; this walks what the schema does not describe: broken JSON, huge and odd strings,
hostile headers.)"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable

import httpx
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from gateway.openapi import build_spec
from tests.conftest import Stack
from tests.fuzz.conftest import FUZZ_SETTINGS, LoopBridge, db_snapshot, in_thread
from tests.fuzz.strategies import header_values, request_bodies, weird_text

# Hypothesis warns when it prints a 40 kB example; that is the point of some examples here.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

VALID_PAYMENT = {
    "amount": 100,
    "currency": "CNY",
    "merchant_order_no": "fuzz-order",
    "channel": "wechatpay",
    "method": "native",
    "description": "A cup of tea",
    "expires_in": 900,
    "metadata": {"cart": "1"},
}
VALID_ENDPOINT = {"url": "http://127.0.0.1:9/hooks"}
VALID_REFUND = {"amount": 10, "reason": "broken cup", "merchant_refund_no": "r-fuzz"}


def documented_errors(stack: Stack, path: str, method: str) -> dict[int, set[str]]:
    """Status → error codes the OpenAPI document lists for one operation."""
    responses = build_spec(stack.settings)["paths"][path][method]["responses"]
    return {
        int(status): set(answer["content"]["application/json"].get("examples", {}))
        for status, answer in responses.items()
        if int(status) >= 400
    }


def authorization(api_key: str) -> st.SearchStrategy[str | None]:
    valid = st.sampled_from([f"Bearer {api_key}", f"bearer {api_key}", f"Bearer  {api_key}"])
    invalid = st.one_of(
        st.none(),
        st.sampled_from(["Bearer", "Basic dXNlcjpwYXNz", "Bearer sk_test_", "sk_live_x"]),
        header_values.map(lambda value: f"Bearer sk_test_{value}".strip()),
        header_values,
    )
    # Mostly a valid key, so that most examples reach the body's validation.
    return st.integers(0, 9).flatmap(lambda n: valid if n < 8 else invalid)


def headers_strategy(api_key: str) -> st.SearchStrategy[dict[str, str]]:
    optional = st.fixed_dictionaries(
        {},
        optional={
            "Content-Type": st.one_of(
                st.sampled_from(
                    [
                        "application/json",
                        "text/plain",
                        "application/x-www-form-urlencoded",
                        "multipart/form-data; boundary=x",
                        "application/json; charset=latin-1",
                    ]
                ),
                header_values,
            ),
            "Idempotency-Key": st.one_of(
                header_values,
                st.builds(lambda: uuid.uuid4().hex),
                st.sampled_from(["fuzz-key", "x" * 255, "x" * 256]),
            ),
            "traceparent": header_values,
            "Accept": header_values,
        },
    )
    return st.builds(
        lambda auth, rest: {**rest, **({} if auth is None else {"Authorization": auth})},
        authorization(api_key),
        optional,
    )


def check_answer(
    answer: httpx.Response, documented: dict[int, set[str]], created_type: str
) -> bool:
    """Assert the answer is a documented error object or a creation; True if it created."""
    note(f"answer {answer.status_code}: {answer.text[:500]}")
    assert answer.status_code < 500, answer.text
    if answer.status_code == 201:
        assert answer.json()["object"] == created_type
        return True
    assert answer.status_code in documented, answer.status_code
    assert answer.headers["Content-Type"].startswith("application/json")
    error = answer.json()["error"]
    assert set(error) == {"type", "code", "message", "param", "request_id"}
    assert error["code"] in documented[answer.status_code], error
    assert answer.headers["Request-Id"] == error["request_id"]
    return False


def fuzz_post(
    stack: Stack,
    route: str,
    path: str,
    bodies: st.SearchStrategy[bytes],
    created_type: str,
) -> Callable[[LoopBridge], None]:
    """Fuzz ``POST path`` (an instance of ``route``); runs in a thread (see ``in_thread``)."""
    documented = documented_errors(stack, route, "post")
    url = stack.gateway_url + path

    def run(bridge: LoopBridge) -> None:
        baseline = {"state": bridge.run(lambda: db_snapshot(stack))}
        seen: Counter[tuple[int, str]] = Counter()
        with httpx.Client(timeout=30) as client:

            @FUZZ_SETTINGS
            @given(body=bodies, headers=headers_strategy(stack.api_key))
            def one(body: bytes, headers: dict[str, str]) -> None:
                note(f"body {body[:300]!r} ({len(body)} bytes), headers {headers!r}")
                wire = [(name.encode(), value.encode("latin-1")) for name, value in headers.items()]
                answer = client.post(url, content=body, headers=wire)
                created = check_answer(answer, documented, created_type)
                seen[answer.status_code, answer.json().get("error", {}).get("code", "")] += 1
                after = bridge.run(lambda: db_snapshot(stack))
                if created:
                    baseline["state"] = after  # a mutation that happened to be valid
                else:
                    assert after == baseline["state"], "a refused request changed the database"

            one()
        print(f"{path}: {sorted(seen.items())}")  # what the examples reached (pytest -s)

    return run


async def test_create_payment_refuses_hostile_input_and_changes_nothing(stack: Stack) -> None:
    await stack.stop_worker()  # nothing may change the database but the requests
    bodies = request_bodies(VALID_PAYMENT)
    await in_thread(fuzz_post(stack, "/v1/payments", "/v1/payments", bodies, "payment"))


async def test_webhook_endpoints_refuse_hostile_input_and_change_nothing(stack: Stack) -> None:
    await stack.stop_worker()
    bodies = st.one_of(
        request_bodies(VALID_ENDPOINT),
        weird_text.map(lambda text: f'{{"url": "http://{text}"}}'.encode(errors="surrogatepass")),
    )
    path = "/v1/webhook_endpoints"
    await in_thread(fuzz_post(stack, path, path, bodies, "webhook_endpoint"))


async def test_create_refund_refuses_hostile_input_and_changes_nothing(stack: Stack) -> None:
    payment = (await stack.create_payment(amount=1000)).json()
    await stack.token(payment["token"], wait=5)
    assert (await stack.shopper_pays(payment["pay_no"])).status_code == 200
    await stack.wait_status(payment["pay_no"], "paid")
    await stack.stop_worker()
    route = "/v1/payments/{pay_no}/refunds"
    path = route.format(pay_no=payment["pay_no"])
    await in_thread(fuzz_post(stack, route, path, request_bodies(VALID_REFUND), "refund"))


SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


# A byte over 0x7f in a header reaches the handlers as a surrogate escape, which str.encode()
# refused: a 500 where a 401 / 400 is documented. Found by this suite; kept as regressions.
@SQLITE_ONLY
async def test_a_non_ascii_api_key_is_a_401(stack: Stack) -> None:
    before = await db_snapshot(stack)
    answer = await stack.http.post(
        f"{stack.gateway_url}/v1/payments",
        json=stack.payment_body(),
        headers=[(b"Authorization", b"Bearer sk_test_\xa1")],
    )
    assert (answer.status_code, answer.json()["error"]["code"]) == (401, "invalid_api_key")
    assert await db_snapshot(stack) == before


@SQLITE_ONLY
async def test_a_non_ascii_idempotency_key_is_a_400(stack: Stack) -> None:
    await stack.stop_worker()
    before = await db_snapshot(stack)
    answer = await stack.http.post(
        f"{stack.gateway_url}/v1/payments",
        json=stack.payment_body(),
        headers=[
            (b"Authorization", f"Bearer {stack.api_key}".encode()),
            (b"Idempotency-Key", b"key-\xe9"),
        ],
    )
    # Refused (400) or taken as an opaque key (201); never a 500.
    assert answer.status_code in (400, 201), answer.text
    if answer.status_code == 400:
        assert await db_snapshot(stack) == before
