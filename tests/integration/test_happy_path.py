"""The whole path on real components: token at once → worker → sandbox → callback → webhook."""

from __future__ import annotations

import orjson

from sdk import verify_webhook
from tests.conftest import Stack


async def test_token_then_credential_then_paid_then_signed_webhook(stack: Stack) -> None:
    created = await stack.create_payment(amount=1234, metadata={"cart": "42"})
    assert created.status_code == 201, created.text
    payment = created.json()
    assert payment["status"] == "pending"
    assert payment["amount"] == 1234 and payment["currency"] == "CNY"
    assert payment["token"].startswith("tok_") and len(payment["token"]) > 40
    assert payment["credential"] is None

    token = await stack.token(payment["token"], wait=5)
    assert token["status"] == "awaiting_payment"
    assert token["credential"]["code_url"].startswith("weixin://wxpay/bizpayurl?pr=")

    paid = await stack.shopper_pays(payment["pay_no"])
    assert paid.status_code == 200, paid.text
    final = await stack.wait_status(payment["pay_no"], "paid")
    assert final["paid_at"] is not None

    await stack.inbox.wait_for(1)
    headers, body = stack.inbox.received[0]
    event = verify_webhook(body, headers["Payfront-Signature"], stack.webhook_secret)
    assert event.type == "payment.succeeded"
    assert headers["Payfront-Event-Id"] == event.id
    data = orjson.loads(body)["data"]["object"]
    assert data["pay_no"] == payment["pay_no"]
    assert data["status"] == "paid"
    assert data["amount"] == 1234
    assert data["metadata"] == {"cart": "42"}
