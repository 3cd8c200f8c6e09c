"""Channel callbacks: genuine, duplicated, forged, stale, mismatched and unknown."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import sqlalchemy as sa

from core.store.tables import anomalies, events, pay_orders
from tests import wechat_forge
from tests.conftest import Stack


async def _awaiting(stack: Stack, **overrides: Any) -> dict[str, Any]:
    payment = (await stack.create_payment(**overrides)).json()
    token = await stack.token(payment["token"], wait=5)
    assert token["status"] == "awaiting_payment"
    return payment


async def _status(stack: Stack, pay_no: str) -> tuple[str, int]:
    async with stack.db.read() as conn:
        row = (
            await conn.execute(
                sa.select(pay_orders.c.status, pay_orders.c.version).where(
                    pay_orders.c.pay_no == pay_no
                )
            )
        ).one()
    return row.status, row.version


async def _count(stack: Stack, query: Any) -> int:
    async with stack.db.read() as conn:
        return int((await conn.execute(query)).scalar_one())


def _genuine(stack: Stack, pay_no: str, total: int, **kwargs: Any) -> tuple[dict[str, str], bytes]:
    key, serial = wechat_forge.sandbox_platform_key(stack.sandbox_state_dir)
    keys = stack.account.keys
    resource = wechat_forge.transaction(
        mchid=keys.mchid, appid=keys.appid, out_trade_no=pay_no, total=total
    )
    return wechat_forge.callback(
        resource, apiv3_key=keys.apiv3_key, signing_key=key, serial=serial, **kwargs
    )


def _callback_url(stack: Stack) -> str:
    return f"{stack.gateway_url}/test/callbacks/wechatpay/{stack.account.account_id}"


async def test_duplicate_callbacks_pay_once_and_notify_once(stack: Stack) -> None:
    payment = await _awaiting(stack)
    assert (await stack.shopper_pays(payment["pay_no"])).status_code == 200
    await stack.wait_status(payment["pay_no"], "paid")
    version_after_pay = (await _status(stack, payment["pay_no"]))[1]
    again = await stack.shopper_pays(payment["pay_no"], again=True)
    assert again.status_code == 200
    # And a genuine callback replayed by hand, too.
    headers, body = _genuine(stack, payment["pay_no"], 100)
    for _ in range(2):
        answer = await stack.http.post(_callback_url(stack), content=body, headers=headers)
        assert answer.status_code == 204
    await stack.inbox.wait_for(1)
    await asyncio.sleep(0.5)  # room for any wrong second delivery to arrive
    assert await _status(stack, payment["pay_no"]) == ("paid", version_after_pay)
    assert (
        await _count(
            stack,
            sa.select(sa.func.count())
            .select_from(events)
            .where(events.c.pay_no == payment["pay_no"]),
        )
        == 1
    )
    assert len(stack.inbox.received) == 1


async def test_forged_signature_is_refused_and_changes_nothing(stack: Stack) -> None:
    payment = await _awaiting(stack)
    before = await _status(stack, payment["pay_no"])
    _, serial = wechat_forge.sandbox_platform_key(stack.sandbox_state_dir)
    keys = stack.account.keys
    resource = wechat_forge.transaction(
        mchid=keys.mchid, appid=keys.appid, out_trade_no=payment["pay_no"], total=100
    )
    headers, body = wechat_forge.callback(
        resource, apiv3_key=keys.apiv3_key, signing_key=wechat_forge.stranger_key(), serial=serial
    )
    answer = await stack.http.post(_callback_url(stack), content=body, headers=headers)
    assert answer.status_code >= 400
    assert answer.json()["code"] == "FAIL"
    # A genuine signature over a different body is refused as well.
    good_headers, _ = _genuine(stack, payment["pay_no"], 100)
    tampered = await stack.http.post(_callback_url(stack), content=body, headers=good_headers)
    assert tampered.status_code >= 400
    assert await _status(stack, payment["pay_no"]) == before


async def test_stale_timestamp_is_refused(stack: Stack) -> None:
    payment = await _awaiting(stack)
    before = await _status(stack, payment["pay_no"])
    headers, body = _genuine(stack, payment["pay_no"], 100, timestamp=int(time.time()) - 301)
    answer = await stack.http.post(_callback_url(stack), content=body, headers=headers)
    assert answer.status_code >= 400
    assert await _status(stack, payment["pay_no"]) == before
    fresh_headers, fresh_body = _genuine(stack, payment["pay_no"], 100)
    accepted = await stack.http.post(
        _callback_url(stack), content=fresh_body, headers=fresh_headers
    )
    assert accepted.status_code == 204
    assert (await _status(stack, payment["pay_no"]))[0] == "paid"


async def test_malformed_and_unsigned_bodies_are_refused(stack: Stack) -> None:
    payment = await _awaiting(stack)
    before = await _status(stack, payment["pay_no"])
    for headers, body in [
        ({}, b"{}"),
        ({}, b"not json at all"),
        ({"Wechatpay-Signature": "x"}, b""),
    ]:
        answer = await stack.http.post(_callback_url(stack), content=body, headers=headers)
        assert answer.status_code >= 400
    unknown_account = await stack.http.post(
        f"{stack.gateway_url}/test/callbacks/wechatpay/no_such_account", content=b"{}"
    )
    assert unknown_account.status_code == 404
    assert await _status(stack, payment["pay_no"]) == before


async def test_more_than_asked_is_recorded_not_paid_and_still_acked(stack: Stack) -> None:
    payment = await _awaiting(stack, amount=5000)
    before = await _status(stack, payment["pay_no"])
    paid = await stack.shopper_pays(payment["pay_no"], paid_amount=5001)
    assert paid.status_code == 200
    async with asyncio.timeout(10):
        while not await _count(stack, sa.select(sa.func.count()).select_from(anomalies)):
            await asyncio.sleep(0.02)
    assert await _status(stack, payment["pay_no"]) == before
    async with stack.db.read() as conn:
        anomaly = (await conn.execute(sa.select(anomalies))).one()
    assert anomaly.pay_no == payment["pay_no"] and anomaly.kind == "payment_mismatch"
    assert anomaly.detail["reported_amount"] == 5001
    # The channel was told "received", so it stops re-sending the same wrong data.
    order = await stack.sandbox_order(payment["pay_no"])
    async with asyncio.timeout(5):
        while not order["callback_attempts"]:
            await asyncio.sleep(0.02)
            order = await stack.sandbox_order(payment["pay_no"])
    assert order["callback_attempts"][0]["status"] == 204
    assert stack.inbox.received == []


async def test_currency_and_account_mismatches_are_anomalies(stack: Stack) -> None:
    payment = await _awaiting(stack)
    key, serial = wechat_forge.sandbox_platform_key(stack.sandbox_state_dir)
    keys = stack.account.keys
    for resource in [
        wechat_forge.transaction(
            mchid=keys.mchid,
            appid=keys.appid,
            out_trade_no=payment["pay_no"],
            total=100,
            currency="USD",
        ),
        wechat_forge.transaction(
            mchid=keys.mchid, appid="wx_someone_else", out_trade_no=payment["pay_no"], total=100
        ),
    ]:
        headers, body = wechat_forge.callback(
            resource, apiv3_key=keys.apiv3_key, signing_key=key, serial=serial
        )
        answer = await stack.http.post(_callback_url(stack), content=body, headers=headers)
        assert answer.status_code == 204
    assert (await _status(stack, payment["pay_no"]))[0] == "awaiting_payment"
    assert await _count(stack, sa.select(sa.func.count()).select_from(anomalies)) == 2


async def test_verified_callback_for_an_unknown_order_is_refused(stack: Stack) -> None:
    headers, body = _genuine(stack, "payNOSUCHORDER0000000001", 100)
    answer = await stack.http.post(_callback_url(stack), content=body, headers=headers)
    assert answer.status_code >= 400
    assert answer.json()["code"] == "FAIL"
    assert await _count(stack, sa.select(sa.func.count()).select_from(events)) == 0


async def test_concurrent_duplicate_callbacks_are_all_acknowledged_and_pay_once(
    stack: Stack,
) -> None:
    payment = await _awaiting(stack)
    headers, body = _genuine(stack, payment["pay_no"], 100)
    answers = await asyncio.gather(
        *(stack.http.post(_callback_url(stack), content=body, headers=headers) for _ in range(12))
    )
    assert [a.status_code for a in answers] == [204] * 12
    assert (await _status(stack, payment["pay_no"]))[0] == "paid"
    events_of_payment = sa.select(sa.func.count()).select_from(events)
    assert await _count(stack, events_of_payment.where(events.c.pay_no == payment["pay_no"])) == 1
