"""Wallets on the real stack: a recharge paid at the WeChat Pay sandbox credits its wallet
once (also when the callback comes twice), transfers move money atomically and never
overdraw, even when many run at once, and every movement reaches the ledger balanced."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import sqlalchemy as sa

from core.ledger.balances import account_balance, check_ledger
from core.store.tables import ledger_entries, wallet_movements
from sdk import verify_webhook
from tests.conftest import Stack


async def _recharge(stack: Stack, owner: str, amount: int) -> dict[str, Any]:
    body = stack.payment_body(amount=amount) | {"owner": owner}
    answer = await stack.http.post(
        f"{stack.gateway_url}/v1/recharges", json=body, headers=stack.auth()
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def _wallet_of(stack: Stack, owner: str) -> dict[str, Any]:
    answer = await stack.http.get(
        f"{stack.gateway_url}/v1/wallets", params={"owner": owner}, headers=stack.auth()
    )
    assert answer.status_code == 200, answer.text
    [wallet] = answer.json()["data"]
    return dict(wallet)


async def _transfer(stack: Stack, **body: Any) -> Any:
    return await stack.http.post(
        f"{stack.gateway_url}/v1/transfers", json=body, headers=stack.auth()
    )


async def _paid_recharge(stack: Stack, owner: str, amount: int) -> dict[str, Any]:
    payment = await _recharge(stack, owner, amount)
    await stack.wait_status(payment["pay_no"], "awaiting_payment")
    assert (await stack.shopper_pays(payment["pay_no"])).status_code == 200
    await stack.wait_status(payment["pay_no"], "paid")
    return payment


async def test_a_recharge_credits_its_wallet_once(stack: Stack) -> None:
    await stack.set_faults(duplicate_callbacks=True)
    payment = await _paid_recharge(stack, "user-42", 2500)
    async with asyncio.timeout(10):
        while (wallet := await _wallet_of(stack, "user-42"))["balance"] != 2500:
            await asyncio.sleep(0.05)
    assert (wallet["owner"], wallet["currency"]) == ("user-42", "CNY")
    await asyncio.sleep(0.5)  # the duplicate callback has arrived by now
    detail = await stack.http.get(
        f"{stack.gateway_url}/v1/wallets/{wallet['wallet_id']}", headers=stack.auth()
    )
    assert detail.json()["balance"] == 2500
    assert [(m["kind"], m["amount"], m["ref"]) for m in detail.json()["movements"]] == [
        ("recharge", 2500, payment["pay_no"])
    ]
    # The money is the user's now: not refundable as a payment.
    refused = await stack.http.post(
        f"{stack.gateway_url}/v1/payments/{payment['pay_no']}/refunds",
        json={},
        headers=stack.auth(),
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "recharge_not_refundable"
    await stack.inbox.wait_for(2, timeout=20)
    types = sorted(
        verify_webhook(body, headers["Payfront-Signature"], stack.webhook_secret).type
        for headers, body in stack.inbox.received
    )
    assert types == ["payment.succeeded", "recharge.succeeded"]


async def test_transfers_move_money_atomically_and_never_overdraw(stack: Stack) -> None:
    await _paid_recharge(stack, "alice", 100)
    async with asyncio.timeout(10):
        while (alice := await _wallet_of(stack, "alice"))["balance"] != 100:
            await asyncio.sleep(0.05)
    await _paid_recharge(stack, "bob", 1)
    async with asyncio.timeout(10):
        while (bob := await _wallet_of(stack, "bob"))["balance"] != 1:
            await asyncio.sleep(0.05)

    answers = await asyncio.gather(
        *(
            _transfer(stack, from_wallet=alice["wallet_id"], to_wallet=bob["wallet_id"], amount=30)
            for _ in range(10)
        )
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] * 3 + [409] * 7
    refused = next(answer for answer in answers if answer.status_code == 409)
    assert refused.json()["error"]["code"] == "insufficient_funds"
    assert (await _wallet_of(stack, "alice"))["balance"] == 10
    assert (await _wallet_of(stack, "bob"))["balance"] == 91
    made = next(answer for answer in answers if answer.status_code == 201).json()
    assert (made["status"], made["amount"], made["currency"]) == ("succeeded", 30, "CNY")
    read = await stack.http.get(
        f"{stack.gateway_url}/v1/transfers/{made['transfer_no']}", headers=stack.auth()
    )
    assert read.json() == made

    same = await _transfer(
        stack, from_wallet=alice["wallet_id"], to_wallet=alice["wallet_id"], amount=1
    )
    assert same.status_code == 400
    missing = await _transfer(
        stack, from_wallet=alice["wallet_id"], to_wallet="wal" + "0" * 22, amount=1
    )
    assert missing.status_code == 404

    # Every movement reaches the ledger: two recharges and three transfers, balanced, and
    # each wallet's ledger account equals the wallet.
    async with asyncio.timeout(20):
        while True:
            async with stack.db.read() as conn:
                posted = (
                    await conn.execute(sa.select(sa.func.count()).select_from(ledger_entries))
                ).scalar_one()
            if posted == 5:
                break
            await asyncio.sleep(0.1)
    assert (await check_ledger(stack.db)).ok
    for wallet, expected in ((alice, 10), (bob, 91)):
        account = f"wallet:{wallet['wallet_id']}:CNY:test"
        assert await account_balance(stack.db, account) == expected
    async with stack.db.read() as conn:
        moves = (
            await conn.execute(sa.select(sa.func.count()).select_from(wallet_movements))
        ).scalar_one()
    assert moves == 2 + 3 * 2


async def test_an_idempotency_key_replays_a_transfer(stack: Stack) -> None:
    await _paid_recharge(stack, "carol", 50)
    async with asyncio.timeout(10):
        while (carol := await _wallet_of(stack, "carol"))["balance"] != 50:
            await asyncio.sleep(0.05)
    await _paid_recharge(stack, "dave", 1)
    async with asyncio.timeout(10):
        while (dave := await _wallet_of(stack, "dave"))["balance"] != 1:
            await asyncio.sleep(0.05)
    body = {"from_wallet": carol["wallet_id"], "to_wallet": dave["wallet_id"], "amount": 20}
    headers = stack.auth(**{"Idempotency-Key": "move-1"})
    url = f"{stack.gateway_url}/v1/transfers"
    first = await stack.http.post(url, json=body, headers=headers)
    again = await stack.http.post(url, json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert orjson.loads(again.content) == orjson.loads(first.content)
    assert (await _wallet_of(stack, "carol"))["balance"] == 30
