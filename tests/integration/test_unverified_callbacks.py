"""Callbacks whose signature fails never change state; when they name an order we hold, the
order is checked at the channel, at most once per order per interval and M per account a
minute."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from core.store.tables import pay_orders
from payfront.devsetup_alipay import provision_alipay_sandbox_account
from tests import wechat_forge
from tests.conftest import Stack

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
PER_MINUTE = 2


@pytest.fixture
def stack_overrides() -> dict[str, Any]:
    return {"unverified_check_interval_s": 60, "unverified_checks_per_minute": PER_MINUTE}


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def unverified(channel: str, outcome: str) -> float:
    return sample("payfront_unverified_callbacks_total", channel=channel, outcome=outcome)


def checks_run() -> float:
    return sample("payfront_jobs_total", function="check_order", outcome="ok")


async def awaiting(stack: Stack, **overrides: Any) -> str:
    payment = (await stack.create_payment(**overrides)).json()
    token = await stack.token(payment["token"], wait=5)
    assert token["status"] == "awaiting_payment", token
    return str(payment["pay_no"])


async def row(stack: Stack, pay_no: str) -> Any:
    async with stack.db.read() as conn:
        return (
            await conn.execute(
                sa.select(pay_orders.c.status, pay_orders.c.version, pay_orders.c.checked_at).where(
                    pay_orders.c.pay_no == pay_no
                )
            )
        ).one()


def forged_wechat(stack: Stack, pay_no: str, apiv3_key: str | None = None) -> Any:
    """A paid-looking notification, encrypted with the account's APIv3 key (or another one)
    but signed by a stranger."""
    _, serial = wechat_forge.sandbox_platform_key(stack.sandbox_state_dir)
    keys = stack.account.keys
    resource = wechat_forge.transaction(
        mchid=keys.mchid, appid=keys.appid, out_trade_no=pay_no, total=100
    )
    return wechat_forge.callback(
        resource,
        apiv3_key=apiv3_key or keys.apiv3_key,
        signing_key=wechat_forge.stranger_key(),
        serial=serial,
    )


async def post_wechat(stack: Stack, headers: dict[str, str], body: bytes) -> int:
    answer = await stack.http.post(
        f"{stack.gateway_url}/test/callbacks/wechatpay/{stack.account.account_id}",
        content=body,
        headers=headers,
    )
    return answer.status_code


@SQLITE_ONLY
async def test_a_forged_callback_checks_the_order_once_and_changes_nothing(stack: Stack) -> None:
    pay_no = await awaiting(stack)
    before = await row(stack, pay_no)
    enqueued, throttled, ran = (
        unverified("wechatpay", "check_enqueued"),
        unverified("wechatpay", "throttled_order"),
        checks_run(),
    )
    headers, body = forged_wechat(stack, pay_no)
    assert await post_wechat(stack, headers, body) == 500
    # A burst of forgeries (each a fresh signature and event id) adds no check.
    forgeries = [forged_wechat(stack, pay_no) for _ in range(50)]
    statuses = await asyncio.gather(*(post_wechat(stack, h, b) for h, b in forgeries))
    assert statuses == [500] * 50
    assert unverified("wechatpay", "check_enqueued") - enqueued == 1
    assert unverified("wechatpay", "throttled_order") - throttled == 50

    # The check asks the channel, finds the order unpaid and records only that it asked.
    async with asyncio.timeout(10):
        while (await row(stack, pay_no)).checked_at is None:
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)  # room for a wrong second check to run
    assert checks_run() - ran == 1
    after = await row(stack, pay_no)
    assert (
        (after.status, after.version)
        == (before.status, before.version)
        == (
            "awaiting_payment",
            before.version,
        )
    )
    assert (await stack.sandbox_order(pay_no))["trade_state"] == "NOTPAY"
    assert stack.inbox.received == []


@SQLITE_ONLY
async def test_what_names_no_checkable_order_checks_nothing(stack: Stack) -> None:
    pay_no = await awaiting(stack)
    enqueued = unverified("wechatpay", "check_enqueued")
    # Encrypted with another key: the claimed order cannot even be read.
    headers, body = forged_wechat(stack, pay_no, apiv3_key="k" * 32)
    assert await post_wechat(stack, headers, body) == 500
    # An order that does not exist.
    headers, body = forged_wechat(stack, "payNOSUCHORDER0000000001")
    assert await post_wechat(stack, headers, body) == 500
    assert unverified("wechatpay", "no_order_named") >= 1
    assert unverified("wechatpay", "not_checkable") >= 1
    assert unverified("wechatpay", "check_enqueued") == enqueued
    assert (await row(stack, pay_no)).checked_at is None


@SQLITE_ONLY
async def test_checks_are_limited_per_account_a_minute(stack: Stack) -> None:
    orders = [await awaiting(stack) for _ in range(PER_MINUTE + 1)]
    enqueued = unverified("wechatpay", "check_enqueued")
    minute = int(time.time() // 60)
    for pay_no in orders:
        headers, body = forged_wechat(stack, pay_no)
        assert await post_wechat(stack, headers, body) == 500
    if int(time.time() // 60) != minute:
        pytest.skip("the minute changed during the test")
    assert unverified("wechatpay", "check_enqueued") - enqueued == PER_MINUTE
    assert unverified("wechatpay", "throttled_account") >= 1


@SQLITE_ONLY
async def test_a_forged_alipay_notification_checks_the_order(stack: Stack) -> None:
    alipay = await provision_alipay_sandbox_account(
        stack.db,
        stack.vault,
        sandbox_url=stack.sandbox_url,
        merchant_id="mch_test",
        account_id="ali_test",
    )
    pay_no = await awaiting(stack, channel="alipay", method="qr")
    before = await row(stack, pay_no)
    enqueued = unverified("alipay", "check_enqueued")
    form = {
        "notify_type": "trade_status_sync",
        "notify_id": "forged-1",
        "app_id": alipay.app_id,
        "out_trade_no": pay_no,
        "trade_no": "2026112522001400000000000001",
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "1.00",
        "sign_type": "RSA2",
        "sign": "Zm9yZ2Vk",
    }
    answer = await stack.http.post(
        f"{stack.gateway_url}/test/callbacks/alipay/ali_test",
        content=urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200 and answer.text == "fail"
    assert unverified("alipay", "check_enqueued") - enqueued == 1
    async with asyncio.timeout(10):
        while (await row(stack, pay_no)).checked_at is None:
            await asyncio.sleep(0.02)
    after = await row(stack, pay_no)
    assert (after.status, after.version) == (before.status, before.version)
