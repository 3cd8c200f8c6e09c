"""Alipay on the real stack: token at once → worker precreates at the sandbox → the buyer pays
→ signed notification → ``paid`` → signed merchant webhook; and a page.pay URL the sandbox's
gateway accepts."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from payfront.devsetup_alipay import AlipaySandboxAccount, provision_alipay_sandbox_account
from sdk import verify_webhook
from tests.conftest import Stack


@pytest.fixture
async def alipay_account(stack: Stack) -> AlipaySandboxAccount:
    return await provision_alipay_sandbox_account(
        stack.db,
        stack.vault,
        sandbox_url=stack.sandbox_url,
        merchant_id="mch_test",
        account_id="ali_test",
    )


async def test_qr_payment_then_paid_then_signed_webhook(
    stack: Stack, alipay_account: AlipaySandboxAccount
) -> None:
    created = await stack.create_payment(amount=1999, channel="alipay", method="qr")
    assert created.status_code == 201, created.text
    payment = created.json()
    assert payment["status"] == "pending"

    token = await stack.token(payment["token"], wait=5)
    assert token["status"] == "awaiting_payment", token
    assert token["credential"]["qr_code"].startswith("https://qr.alipay.com/")

    pay_no = payment["pay_no"]
    paid = await stack.http.post(
        f"{stack.sandbox_url}/sandbox/alipay/orders/{pay_no}/pay",
        json={"app_id": alipay_account.app_id, "outcome": "success"},
    )
    assert paid.status_code == 200, paid.text
    final = await stack.wait_status(pay_no, "paid")
    assert final["paid_at"] is not None

    await stack.inbox.wait_for(1)
    headers, body = stack.inbox.received[0]
    event = verify_webhook(body, headers["Payfront-Signature"], stack.webhook_secret)
    assert event.type == "payment.succeeded"
    data = orjson.loads(body)["data"]["object"]
    assert (data["pay_no"], data["status"], data["amount"]) == (pay_no, "paid", 1999)

    # The sandbox's notification was acknowledged with exactly "success".
    view = (await stack.http.get(f"{stack.sandbox_url}/sandbox/alipay/orders/{pay_no}")).json()
    assert view["status"] == "TRADE_SUCCESS"
    assert view["notify_attempts"][0]["answer"] == "success"
    assert view["notify_attempts"][0]["acknowledged"] is True


async def test_page_payment_url_is_accepted_by_the_gateway(
    stack: Stack, alipay_account: AlipaySandboxAccount
) -> None:
    created = await stack.create_payment(amount=500, channel="alipay", method="page")
    assert created.status_code == 201, created.text
    token = await stack.token(created.json()["token"], wait=5)
    assert token["status"] == "awaiting_payment", token
    pay_url = token["credential"]["pay_url"]
    assert pay_url.startswith(f"{stack.sandbox_url}/gateway.do?")
    params = dict(parse_qsl(urlsplit(pay_url).query))
    assert params["method"] == "alipay.trade.page.pay"
    assert params["app_id"] == alipay_account.app_id

    opened = await stack.http.get(pay_url, headers={"Accept": "application/json"})
    assert opened.status_code == 200, opened.text
    cashier = opened.json()
    assert cashier["verified"] is True
    assert (cashier["out_trade_no"], cashier["total_amount"]) == (created.json()["pay_no"], "5.00")
