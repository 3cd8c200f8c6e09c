"""The sandbox cashier page in a real (headless) Chromium: a payfront token's page shows its
QR code, and its buttons play the shopper through the sandbox until payfront's status moves."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
import qrcode
import qrcode.constants
import sqlalchemy as sa

from core.store.tables import anomalies
from payfront.devsetup_alipay import provision_alipay_sandbox_account
from sdk import verify_webhook
from tests.conftest import Stack

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
PAGE_TIMEOUT_MS = 15_000


def cashier_url(stack: Stack, token: str) -> str:
    # The stack's sandbox is not configured with this test's gateway port: name it per page.
    return f"{stack.sandbox_url}/sandbox/cashier/{token}?gateway={stack.gateway_url}"


def svg_modules(svg: str) -> set[tuple[int, int]]:
    """The dark modules an SVG from the cashier draws (one ``M x,y h1v1h-1z`` square each)."""
    path = re.search(r'<path[^>]* d="([^"]*)"', svg)
    assert path is not None, svg[:200]
    return {(int(x), int(y)) for x, y in re.findall(r"M(\d+),(\d+)h1v1h-1z", path.group(1))}


def qr_modules(payload: str) -> set[tuple[int, int]]:
    """The dark modules of ``payload``'s QR code (error correction M, 4-module quiet zone)."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    code.add_data(payload)
    code.make(fit=True)
    return {(x, y) for y, row in enumerate(code.get_matrix()) for x, dark in enumerate(row) if dark}


async def awaiting_payment(stack: Stack, **overrides: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    created = await stack.create_payment(**overrides)
    assert created.status_code == 201, created.text
    payment = created.json()
    token = await stack.token(payment["token"], wait=5)
    assert token["status"] == "awaiting_payment", token
    return payment, token


async def assert_qr_shows(page: Any, payload: str) -> None:
    qr = page.get_by_test_id("qr")
    assert await qr.get_attribute("data-payload") == payload
    assert svg_modules(await qr.evaluate("svg => svg.outerHTML")) == qr_modules(payload)
    assert await page.get_by_test_id("qr-text").inner_text() == payload


async def test_wechat_native_page_shows_qr_and_pay_makes_it_paid(
    stack: Stack, page: Any, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    payment, token = await awaiting_payment(stack, amount=1234, description="A pot of tea")
    await page.goto(cashier_url(stack, payment["token"]))
    await assert_qr_shows(page, token["credential"]["code_url"])
    await expect(page.get_by_test_id("amount")).to_have_text("12.34 CNY")
    await expect(page.get_by_test_id("description")).to_have_text("A pot of tea")
    await expect(page.get_by_test_id("status")).to_have_text("awaiting_payment")
    await page.screenshot(path=str(tmp_path / "cashier-awaiting.png"), full_page=True)

    await page.get_by_test_id("pay").click()
    await expect(page.get_by_test_id("status")).to_have_text("paid", timeout=PAGE_TIMEOUT_MS)
    await expect(page.get_by_test_id("action-result")).to_have_attribute("data-outcome", "changed")
    await page.screenshot(path=str(tmp_path / "cashier-paid.png"), full_page=True)

    final = await stack.payment(payment["pay_no"])
    assert final["status"] == "paid" and final["paid_at"] is not None
    await stack.inbox.wait_for(1)
    headers, body = stack.inbox.received[0]
    event = verify_webhook(body, headers["Payfront-Signature"], stack.webhook_secret)
    assert event.type == "payment.succeeded"
    assert orjson.loads(body)["data"]["object"]["pay_no"] == payment["pay_no"]


async def test_paying_more_than_asked_is_an_anomaly_not_a_payment(stack: Stack, page: Any) -> None:
    # (Paying less is a partial payment, refunded by default: tests/integration/test_attempts.)
    from playwright.async_api import expect

    payment, _ = await awaiting_payment(stack, amount=5000)
    await page.goto(cashier_url(stack, payment["token"]))
    await page.get_by_test_id("paid-amount-input").fill("5001")
    await page.get_by_test_id("pay-amount").click()
    await expect(page.get_by_test_id("action-result")).to_have_attribute(
        "data-outcome", re.compile("sent|unchanged")
    )

    async with asyncio.timeout(10):
        while True:
            async with stack.db.read() as conn:
                found = (await conn.execute(sa.select(anomalies))).all()
            if found:
                break
            await asyncio.sleep(0.05)
    assert [(a.pay_no, a.kind) for a in found] == [(payment["pay_no"], "payment_mismatch")]
    assert found[0].detail["reported_amount"] == 5001
    assert (await stack.payment(payment["pay_no"]))["status"] == "awaiting_payment"
    await expect(page.get_by_test_id("action-result")).to_have_attribute(
        "data-outcome", "unchanged", timeout=PAGE_TIMEOUT_MS
    )
    await expect(page.get_by_test_id("status")).to_have_text("awaiting_payment")
    assert stack.inbox.received == []


async def test_pay_twice_resends_the_callback_but_pays_once(stack: Stack, page: Any) -> None:
    from playwright.async_api import expect

    payment, _ = await awaiting_payment(stack)
    await page.goto(cashier_url(stack, payment["token"]))
    await page.get_by_test_id("pay-twice").click()
    await expect(page.get_by_test_id("status")).to_have_text("paid", timeout=PAGE_TIMEOUT_MS)

    async with asyncio.timeout(10):
        while True:
            order = await stack.sandbox_order(payment["pay_no"])
            acknowledged = [a for a in order["callback_attempts"] if 200 <= a["status"] < 300]
            if len(acknowledged) >= 2:
                break
            await asyncio.sleep(0.05)
    await stack.inbox.wait_for(1)
    succeeded = [orjson.loads(body)["type"] for _, body in stack.inbox.received]
    assert succeeded == ["payment.succeeded"]


async def test_alipay_qr_page_shows_qr_and_pay_makes_it_paid(stack: Stack, page: Any) -> None:
    from playwright.async_api import expect

    await provision_alipay_sandbox_account(
        stack.db,
        stack.vault,
        sandbox_url=stack.sandbox_url,
        merchant_id="mch_test",
        account_id="ali_test",
    )
    payment, token = await awaiting_payment(stack, amount=1999, channel="alipay", method="qr")
    await page.goto(cashier_url(stack, payment["token"]))
    await assert_qr_shows(page, token["credential"]["qr_code"])
    await expect(page.get_by_test_id("amount")).to_have_text("19.99 CNY")

    await page.get_by_test_id("pay").click()
    await expect(page.get_by_test_id("status")).to_have_text("paid", timeout=PAGE_TIMEOUT_MS)
    assert (await stack.payment(payment["pay_no"]))["status"] == "paid"
    await stack.inbox.wait_for(1)


async def test_unknown_token_is_a_404_page(stack: Stack, page: Any) -> None:
    answer = await page.goto(cashier_url(stack, "tok_no_such_token"))
    assert answer is not None and answer.status == 404
    assert await page.get_by_test_id("cashier-error").is_visible()
