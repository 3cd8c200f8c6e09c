"""Withdrawals on the real stack through WeChat Pay's merchant transfer at the sandbox: the
wallet is debited at once, the payee confirms, the signed MCHTRANSFER.BILL.FINISHED callback
ends it ``succeeded``; a payout the payee refuses ends ``failed`` with the wallet credited
back."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from core.merchants import load_channel_account, save_channel_account
from sdk import verify_webhook
from tests.conftest import Stack


@pytest.fixture
def stack_overrides() -> dict[str, Any]:
    return {"check_after_s": 30.0}


async def _enable_transfers(stack: Stack) -> None:
    """The WeChat Pay account gets a transfer scene (before any adapter for it is loaded),
    and the sandbox merchant an operating-account balance to pay out of."""
    account = await load_channel_account(stack.db, stack.vault, stack.account.account_id)
    scene = [
        {"info_type": "活动名称", "info_content": "会员提现"},
        {"info_type": "奖励说明", "info_content": "钱包余额提现"},
    ]
    credentials = account.credentials | {
        "transfer_scene_id": "1000",
        "transfer_scene_report_infos": json.dumps(scene, ensure_ascii=False),
    }
    await save_channel_account(
        stack.db,
        stack.vault,
        merchant_id=account.merchant_id,
        account_id=account.id,
        channel="wechatpay",
        credentials=credentials,
    )
    mchid = stack.account.keys.mchid
    answer = await stack.http.put(
        f"{stack.sandbox_url}/sandbox/wechatpay/balance/{mchid}", json={"available": 100_000}
    )
    assert answer.status_code == 200, answer.text


async def _funded_wallet(stack: Stack, amount: int) -> str:
    body = stack.payment_body(amount=amount) | {"owner": "user-7"}
    created = await stack.http.post(
        f"{stack.gateway_url}/v1/recharges", json=body, headers=stack.auth()
    )
    assert created.status_code == 201, created.text
    pay_no = created.json()["pay_no"]
    await stack.wait_status(pay_no, "awaiting_payment")
    assert (await stack.shopper_pays(pay_no)).status_code == 200
    async with asyncio.timeout(10):
        while True:
            found = await stack.http.get(
                f"{stack.gateway_url}/v1/wallets", params={"owner": "user-7"}, headers=stack.auth()
            )
            wallets = found.json()["data"]
            if wallets and wallets[0]["balance"] == amount:
                return str(wallets[0]["wallet_id"])
            await asyncio.sleep(0.05)


async def _withdrawal(stack: Stack, number: str) -> dict[str, Any]:
    answer = await stack.http.get(
        f"{stack.gateway_url}/v1/withdrawals/{number}", headers=stack.auth()
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def _wait(stack: Stack, number: str, status: str) -> dict[str, Any]:
    async with asyncio.timeout(15):
        while (view := await _withdrawal(stack, number))["status"] != status:
            await asyncio.sleep(0.05)
    return view


async def _balance(stack: Stack, wallet_id: str) -> int:
    answer = await stack.http.get(
        f"{stack.gateway_url}/v1/wallets/{wallet_id}", headers=stack.auth()
    )
    return int(answer.json()["balance"])


async def _confirm(stack: Stack, number: str, outcome: str) -> None:
    answer = await stack.http.post(
        f"{stack.sandbox_url}/sandbox/wechatpay/transfers/{number}/confirm",
        json={"mchid": stack.account.keys.mchid, "outcome": outcome},
    )
    assert answer.status_code == 200, answer.text


async def test_a_withdrawal_is_paid_out_after_the_payee_confirms(stack: Stack) -> None:
    await _enable_transfers(stack)
    wallet_id = await _funded_wallet(stack, 5000)
    url = f"{stack.gateway_url}/v1/withdrawals"
    body = {"wallet": wallet_id, "amount": 2000, "channel": "wechatpay", "payee_id": "o-user-7"}
    made = await stack.http.post(url, json=body, headers=stack.auth(**{"Idempotency-Key": "w1"}))
    assert made.status_code == 201, made.text
    number = made.json()["withdrawal_no"]
    assert made.json()["status"] == "pending"
    assert await _balance(stack, wallet_id) == 3000  # debited at once
    replay = await stack.http.post(url, json=body, headers=stack.auth(**{"Idempotency-Key": "w1"}))
    assert replay.json()["withdrawal_no"] == number and await _balance(stack, wallet_id) == 3000

    waiting = await _wait(stack, number, "processing")
    assert waiting["payee_action"]["package_info"]  # for WeChat's confirmation page
    await _confirm(stack, number, "success")
    done = await _wait(stack, number, "succeeded")
    assert done["succeeded_at"] is not None and done["amount"] == 2000

    too_much = await stack.http.post(url, json=body | {"amount": 3001}, headers=stack.auth())
    assert too_much.status_code == 409
    assert too_much.json()["error"]["code"] == "insufficient_funds"
    assert await _balance(stack, wallet_id) == 3000

    refused = await stack.http.post(url, json=body | {"amount": 1000}, headers=stack.auth())
    refused_no = refused.json()["withdrawal_no"]
    assert await _balance(stack, wallet_id) == 2000
    await _wait(stack, refused_no, "processing")
    await _confirm(stack, refused_no, "fail")
    failed = await _wait(stack, refused_no, "failed")
    assert failed["failure"] is not None
    assert await _balance(stack, wallet_id) == 3000  # credited back

    await stack.inbox.wait_for(4, timeout=20)
    await asyncio.sleep(0.3)  # nothing more should come
    types = sorted(
        verify_webhook(payload, headers["Payfront-Signature"], stack.webhook_secret).type
        for headers, payload in stack.inbox.received
    )
    assert types == [
        "payment.succeeded",
        "recharge.succeeded",
        "withdrawal.failed",
        "withdrawal.succeeded",
    ]
