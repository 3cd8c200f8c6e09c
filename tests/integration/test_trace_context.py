"""A merchant's W3C trace id follows the payment: answer, stored order, and the webhook."""

from __future__ import annotations

import sqlalchemy as sa

from core.store.tables import pay_orders
from tests.conftest import Stack

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


async def test_the_merchants_trace_id_reaches_the_webhook(stack: Stack) -> None:
    answer = await stack.http.post(
        f"{stack.gateway_url}/v1/payments",
        json=stack.payment_body(),
        headers=stack.auth(traceparent=f"00-{TRACE}-00f067aa0ba902b7-01"),
    )
    assert answer.status_code == 201
    assert answer.headers["Trace-Id"] == TRACE
    payment = answer.json()
    async with stack.db.read() as conn:
        stored = (
            await conn.execute(
                sa.select(pay_orders.c.trace_id).where(pay_orders.c.pay_no == payment["pay_no"])
            )
        ).scalar_one()
    assert stored == TRACE
    await stack.token(payment["token"], wait=5)
    await stack.shopper_pays(payment["pay_no"])
    await stack.inbox.wait_for(1)
    headers, _ = stack.inbox.received[0]
    version, trace_id, span_id, flags = headers["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE, "01")
    assert span_id != "00f067aa0ba902b7"  # our own span, in the merchant's trace


async def test_without_a_valid_traceparent_a_new_trace_is_started(stack: Stack) -> None:
    seen = set()
    for header in ("", "garbage", f"00-{'0' * 32}-00f067aa0ba902b7-01"):
        answer = await stack.http.post(
            f"{stack.gateway_url}/v1/payments",
            json=stack.payment_body(),
            headers=stack.auth(traceparent=header),
        )
        assert answer.status_code == 201
        trace_id = answer.headers["Trace-Id"]
        assert len(trace_id) == 32 and trace_id != "0" * 32
        seen.add(trace_id)
    assert len(seen) == 3
