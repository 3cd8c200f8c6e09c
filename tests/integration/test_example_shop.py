"""The example shop (examples/shop) on the real stack: buy → payment through the SDK → the
sandbox's shopper pays → the signed webhook marks the shop's order paid; a redelivered event
changes nothing, a forged one is refused with 400 and changes nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from aiohttp import web

from core.store.tables import pay_orders, webhook_endpoints
from examples.shop.app import SHOP, Shop, ShopConfig, create_shop_app
from sdk import sign_webhook
from tests.conftest import Stack, free_port


@pytest.fixture
async def shop(stack: Stack, tmp_path: Path) -> AsyncIterator[tuple[Shop, str]]:
    port = free_port()
    config = ShopConfig(
        api_key=stack.api_key,
        payfront_url=stack.gateway_url,
        sandbox_url=stack.sandbox_url,
        port=port,
        db_path=tmp_path / "shop.db",
    )
    app = create_shop_app(config)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()  # start-up registers the webhook endpoint through the SDK
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield app[SHOP], f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def buy(stack: Stack, shop_url: str, product: str) -> dict[str, Any]:
    answer = await stack.http.post(f"{shop_url}/orders", data={"product": product})
    assert answer.status_code == 303, answer.text
    location = answer.headers["Location"]
    assert location.startswith("/orders/shop-")
    return await order(stack, shop_url, location.removeprefix("/orders/"))


async def order(stack: Stack, shop_url: str, order_no: str) -> dict[str, Any]:
    answer = await stack.http.get(f"{shop_url}/orders/{order_no}.json")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def wait_order_status(
    stack: Stack, shop_url: str, order_no: str, status: str, timeout: float = 10
) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            current = await order(stack, shop_url, order_no)
            if current["status"] == status:
                return current
            await asyncio.sleep(0.05)


async def pay_order_count(stack: Stack) -> int:
    async with stack.db.read() as conn:
        return int(
            (await conn.execute(sa.select(sa.func.count()).select_from(pay_orders))).scalar_one()
        )


async def test_buy_pay_and_the_signed_webhook_marks_the_order_paid(
    stack: Stack, shop: tuple[Shop, str]
) -> None:
    the_shop, shop_url = shop
    async with stack.db.read() as conn:
        urls = (await conn.execute(sa.select(webhook_endpoints.c.url))).scalars().all()
    assert the_shop.config.webhook_url in urls  # registered at start-up
    assert the_shop.webhook_secret.startswith("whsec_")

    home = await stack.http.get(shop_url + "/")
    assert home.status_code == 200 and 'data-testid="buy-tea"' in home.text

    bought = await buy(stack, shop_url, "tea")
    order_no = bought["order_no"]
    assert bought["status"] == "awaiting_payment" and bought["amount"] == 100
    payment = await stack.payment(bought["pay_no"])
    assert payment["merchant_order_no"] == order_no
    assert (payment["amount"], payment["currency"]) == (100, "CNY")

    page = await stack.http.get(f"{shop_url}/orders/{order_no}")
    assert page.status_code == 200
    assert 'data-testid="code-url">weixin://wxpay/bizpayurl?pr=' in page.text
    assert f"{stack.sandbox_url}/sandbox/cashier/{bought['token']}?gateway=" in page.text

    # Trying the payment again reuses the Idempotency-Key derived from the order number.
    before = await pay_order_count(stack)
    again = await stack.http.post(f"{shop_url}/orders/{order_no}/pay")
    assert again.status_code == 303, again.text
    assert (await order(stack, shop_url, order_no))["pay_no"] == bought["pay_no"]
    assert await pay_order_count(stack) == before

    paid = await stack.shopper_pays(bought["pay_no"])
    assert paid.status_code == 200, paid.text
    final = await wait_order_status(stack, shop_url, order_no, "paid")
    assert final["paid_at"] is not None
    page = await stack.http.get(f"{shop_url}/orders/{order_no}")
    assert 'data-status="paid"' in page.text and "refresh" not in page.text

    # The same event reached the stack's own endpoint; payfront delivers at least once, so
    # deliver it to the shop again (signed with the shop's secret): acknowledged, no change.
    await stack.inbox.wait_for(1)
    _, body = stack.inbox.received[0]
    event_id = orjson.loads(body)["id"]
    assert await the_shop.store.event_ids() == [event_id]
    redelivered = await stack.http.post(
        shop_url + "/payfront/webhooks",
        content=body,
        headers={
            "Payfront-Signature": sign_webhook(body, the_shop.webhook_secret, int(time.time()))
        },
    )
    assert redelivered.status_code == 200, redelivered.text
    assert redelivered.json() == {"received": True, "duplicate": True}
    assert await order(stack, shop_url, order_no) == final
    assert await the_shop.store.event_ids() == [event_id]


async def test_a_forged_webhook_is_refused_and_changes_nothing(
    stack: Stack, shop: tuple[Shop, str]
) -> None:
    the_shop, shop_url = shop
    bought = await buy(stack, shop_url, "teapot")
    order_no = bought["order_no"]
    assert (await stack.token(bought["token"], wait=5))["status"] == "awaiting_payment"
    payment = await stack.payment(bought["pay_no"])
    forged_event = {
        "id": "evt_forged000000000000000",
        "object": "event",
        "type": "payment.succeeded",
        "created_at": payment["created_at"],
        "data": {"object": {**payment, "status": "paid", "paid_at": payment["created_at"]}},
    }
    body = orjson.dumps(forged_event)
    now = int(time.time())
    genuine_secret = the_shop.webhook_secret
    attempts = [
        {"Payfront-Signature": sign_webhook(body, "whsec_not_the_shops_secret", now)},
        {},  # no signature at all
        {"Payfront-Signature": "t=,v1="},
        {"Payfront-Signature": sign_webhook(body, genuine_secret, now - 3600)},  # stale
        # A genuine signature over other bytes.
        {"Payfront-Signature": sign_webhook(body + b" ", genuine_secret, now)},
    ]
    for headers in attempts:
        answer = await stack.http.post(
            shop_url + "/payfront/webhooks", content=body, headers=headers
        )
        assert answer.status_code == 400, (headers, answer.text)
        assert "bad signature" in answer.json()["error"]

    assert await order(stack, shop_url, order_no) == bought
    assert await the_shop.store.event_ids() == []
    assert (await stack.payment(bought["pay_no"]))["status"] == "awaiting_payment"
