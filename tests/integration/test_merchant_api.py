"""The merchant API's answers to good and bad input, and what bad input leaves behind."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from core.merchants import create_api_key, create_merchant
from core.store.tables import idempotency_keys, outbox, pay_orders, trade_orders
from tests.conftest import Stack


async def _count(stack: Stack, table: sa.Table) -> int:
    async with stack.db.read() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


def _error(answer: Any) -> dict[str, Any]:
    body = answer.json()
    assert set(body) == {"error"}
    error = dict(body["error"])
    assert {"type", "code", "message", "param", "request_id"} <= set(error)
    assert error["request_id"] == answer.headers["Request-Id"]
    return error


_body = Stack.payment_body


async def test_create_answers_pending_with_one_transaction_worth_of_rows(stack: Stack) -> None:
    await stack.stop_worker()  # nothing may depend on the channel on this path
    answer = await stack.create_payment()
    assert answer.status_code == 201
    payment = answer.json()
    assert payment["status"] == "pending" and payment["livemode"] is False
    assert await _count(stack, trade_orders) == 1
    assert await _count(stack, pay_orders) == 1
    async with stack.db.read() as conn:
        rows = (await conn.execute(sa.select(outbox.c.kind, outbox.c.ref, outbox.c.status))).all()
    assert [tuple(row) for row in rows] == [("prepay", payment["pay_no"], "pending")]
    # The sandbox never heard of it: no channel I/O happened on the token path.
    at_sandbox = await stack.http.get(
        f"{stack.sandbox_url}/sandbox/wechatpay/orders/{payment['pay_no']}",
        params={"mchid": stack.account.keys.mchid},
    )
    assert at_sandbox.status_code == 404


async def test_authentication_is_required(stack: Stack) -> None:
    url = f"{stack.gateway_url}/v1/payments"
    missing = await stack.http.post(url, json=_body())
    assert missing.status_code == 401
    assert _error(missing)["type"] == "authentication_error"
    wrong = await stack.http.post(
        url, json=_body(), headers={"Authorization": "Bearer sk_test_not_a_real_key"}
    )
    assert wrong.status_code == 401
    assert _error(wrong)["code"] == "invalid_api_key"
    assert await _count(stack, pay_orders) == 0


async def test_bad_bodies_get_clear_errors_and_write_nothing(stack: Stack) -> None:
    url = f"{stack.gateway_url}/v1/payments"
    cases: list[tuple[bytes, int, str, str | None]] = [
        (b"{not json", 400, "malformed_json", None),
        (b"[1, 2]", 400, "malformed_json", None),
        (b'{"amount": "100"}', 400, "parameter_invalid", "amount"),
    ]
    for raw, status, code, param in cases:
        answer = await stack.http.post(
            url, content=raw, headers=stack.auth(**{"Content-Type": "application/json"})
        )
        assert answer.status_code == status, raw
        error = _error(answer)
        assert error["code"] == code and error["param"] == param, (raw, error)
    for overrides, param in [
        ({"amount": 1.5}, "amount"),
        ({"amount": 0}, "amount"),
        ({"amount": True}, "amount"),
        ({"currency": "cny"}, "currency"),
        ({"channel": "paypal"}, "channel"),
        ({"method": "micropay"}, "method"),
        ({"description": ""}, "description"),
        ({"merchant_order_no": "has space"}, "merchant_order_no"),
        ({"expires_in": 5}, "expires_in"),
        ({"surprise": 1}, "surprise"),
        # Control characters (PostgreSQL cannot store a NUL; none belongs in these fields).
        ({"description": "a\u0000b"}, "description"),
        ({"description": "line\nbreak"}, "description"),
        ({"metadata": {"k": "v\u0000"}}, "metadata.k"),
    ]:
        answer = await stack.http.post(url, json=_body(**overrides), headers=stack.auth())
        assert answer.status_code == 400, overrides
        assert _error(answer)["param"] == param, overrides
    usd = await stack.http.post(url, json=_body(currency="USD"), headers=stack.auth())
    assert usd.status_code == 400
    assert _error(usd)["code"] == "currency_not_supported"
    assert await _count(stack, pay_orders) == 0
    assert await _count(stack, outbox) == 0


async def test_oversized_body_is_refused(stack: Stack) -> None:
    huge = _body(metadata={"k": "x" * 400}) | {"description": "y" * 100}
    raw = (str(huge).replace("'", '"')).encode() + b" " * stack.settings.max_body_bytes
    answer = await stack.http.post(
        f"{stack.gateway_url}/v1/payments",
        content=raw,
        headers=stack.auth(**{"Content-Type": "application/json"}),
    )
    assert answer.status_code == 413
    assert _error(answer)["code"] == "body_too_large"
    assert await _count(stack, pay_orders) == 0


async def test_header_limits_refuse_before_any_handler_and_log_no_secret(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{stack.gateway_url}/v1/payments"
    line = stack.settings.max_header_line_bytes
    oversized_key = "sk_live_" + "S" * line  # a "key" over the line limit
    many = {f"X-Extra-{i}": "1" for i in range(stack.settings.max_headers + 1)}
    for headers in (
        {"Authorization": f"Bearer {oversized_key}"},
        stack.auth(**{"X-Padding": "p" * (line + 1)}),
        stack.auth(**many),
    ):
        answer = await stack.http.post(url, json=_body(), headers=headers)
        assert answer.status_code == 400, answer.text
        assert answer.headers["Content-Type"].startswith("text/plain")
    # Within the limits, the same request is served.
    fine = stack.auth(**{"X-Padding": "p" * (line // 2)})
    assert (await stack.http.post(url, json=_body(), headers=fine)).status_code == 201
    assert await _count(stack, pay_orders) == 1
    # aiohttp's own log line would quote the offending header: the key must not be there.
    assert "SSSSSSSS" not in caplog.text
    assert "request refused by the HTTP parser" in caplog.text


async def test_merchant_order_no_is_unique_per_merchant(stack: Stack) -> None:
    first = await stack.create_payment(merchant_order_no="same-order")
    assert first.status_code == 201
    again = await stack.create_payment(merchant_order_no="same-order")
    assert again.status_code == 409
    assert _error(again)["code"] == "merchant_order_no_taken"
    assert await _count(stack, trade_orders) == 1


async def test_idempotency_key_replays_refuses_changes_and_blocks_concurrency(
    stack: Stack,
) -> None:
    url = f"{stack.gateway_url}/v1/payments"
    body = _body()
    headers = stack.auth(**{"Idempotency-Key": "key-1"})
    first = await stack.http.post(url, json=body, headers=headers)
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    # Same body with its keys in another order is the same request.
    replay = await stack.http.post(url, json=dict(reversed(list(body.items()))), headers=headers)
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    changed = await stack.http.post(url, json=body | {"amount": 101}, headers=headers)
    assert changed.status_code == 422
    assert _error(changed)["code"] == "idempotency_key_reused"
    assert await _count(stack, pay_orders) == 1

    # Concurrent requests with a fresh key: one creates, the others get 409 or the replay.
    body2 = _body()
    headers2 = stack.auth(**{"Idempotency-Key": "key-2"})
    answers = await asyncio.gather(
        *(stack.http.post(url, json=body2, headers=headers2) for _ in range(8))
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert 201 in statuses and set(statuses) <= {201, 409}
    created = [a for a in answers if a.status_code == 201]
    assert len({a.json()["pay_no"] for a in created}) == 1
    fresh = [a for a in created if "Idempotent-Replayed" not in a.headers]
    assert len(fresh) == 1
    for conflict in (a for a in answers if a.status_code == 409):
        assert _error(conflict)["code"] == "idempotency_key_in_use"
    assert await _count(stack, pay_orders) == 2
    assert await _count(stack, idempotency_keys) == 2


async def test_payments_are_scoped_to_their_merchant(stack: Stack) -> None:
    mine = (await stack.create_payment()).json()
    other_id = await create_merchant(stack.db, "Other shop")
    other_key = await create_api_key(stack.db, other_id)
    answer = await stack.http.get(
        f"{stack.gateway_url}/v1/payments/{mine['pay_no']}",
        headers={"Authorization": f"Bearer {other_key}"},
    )
    assert answer.status_code == 404
    assert _error(answer)["type"] == "not_found_error"
    assert (await stack.payment(mine["pay_no"]))["pay_no"] == mine["pay_no"]


async def test_token_look_up_errors(stack: Stack) -> None:
    unknown = await stack.http.get(f"{stack.gateway_url}/v1/tokens/tok_nope")
    assert unknown.status_code == 404
    assert _error(unknown)["code"] == "token_not_found"
    for path in ("/v1/tokens/tok%00x", "/v1/payments/pay%00x", "/v1/payments/p%20q"):
        odd = await stack.http.get(f"{stack.gateway_url}{path}", headers=stack.auth())
        assert odd.status_code == 404, path
        assert _error(odd)["type"] == "not_found_error"
    payment = (await stack.create_payment()).json()
    for wait in ("abc", "-1", "999"):
        answer = await stack.http.get(
            f"{stack.gateway_url}/v1/tokens/{payment['token']}", params={"wait": wait}
        )
        assert answer.status_code == 400
        assert _error(answer)["param"] == "wait"


async def test_long_poll_waits_for_the_worker_and_is_woken_not_polled(stack: Stack) -> None:
    await stack.stop_worker()
    payment = (await stack.create_payment()).json()
    immediate = await stack.token(payment["token"])
    assert immediate["status"] == "pending" and immediate["credential"] is None
    waiting = asyncio.create_task(stack.token(payment["token"], wait=10))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await stack.start_worker()
    token = await waiting
    assert token["status"] == "awaiting_payment"
    assert token["credential"]["code_url"].startswith("weixin://")
    assert loop.time() - started < 5


async def test_unknown_route_and_method_use_the_error_object(stack: Stack) -> None:
    answer = await stack.http.get(f"{stack.gateway_url}/v1/nothing-here")
    assert answer.status_code == 404
    assert _error(answer)["code"] == "route_not_found"
    answer = await stack.http.delete(f"{stack.gateway_url}/v1/payments")
    assert answer.status_code == 405
    assert _error(answer)["code"] == "method_not_allowed"
