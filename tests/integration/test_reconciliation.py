"""Daily and near-real-time reconciliation on the real stack (sandbox, gateway, worker, Redis,
SQLite and PostgreSQL): a WeChat Pay day with a difference of every kind is reconciled to
zero unexplained differences — the safe ones fixed through the check jobs (order states and
ledger asserted), the others recorded and resolved through the API; the CLI reruns the day
without duplicating anything. Alipay and Stripe statements are matched from their sandboxes."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa

from channels.base import CreateOrder, HttpRequest
from channels.transport import send
from core.ledger.balances import check_ledger, merchant_balances
from core.provision import set_channel_fee_rate
from core.reconcile.statements import CHINA_TZ
from core.store.tables import statement_lines, statements
from payfront.devsetup_alipay import provision_alipay_sandbox_account
from payfront.devsetup_stripe import provision_stripe_sandbox_account
from tests.conftest import Stack
from workers.context import WorkerContext
from workers.reconcile import reconcile_crons, reconcile_day, reconcile_yesterday


@pytest.fixture
def stack_overrides() -> dict[str, Any]:
    # The compensation jobs stay out of the way: reconciliation must find the lost callback.
    return {"check_after_s": 3600.0, "check_every_s": 3600.0}


def beijing_today() -> date:
    return datetime.now(CHINA_TZ).date()


async def worker_context(stack: Stack) -> WorkerContext:
    return WorkerContext.build(stack.settings, stack.redis)  # test mode: the shadow db


async def paid_payment(stack: Stack, amount: int = 1000, **fields: Any) -> str:
    created = await stack.create_payment(amount=amount, **fields)
    assert created.status_code == 201, created.text
    payment = created.json()
    token = await stack.token(payment["token"], wait=5)
    assert token["status"] == "awaiting_payment", token
    return str(payment["pay_no"])


async def refund(stack: Stack, pay_no: str, **body: Any) -> dict[str, Any]:
    answer = await stack.http.post(
        f"{stack.gateway_url}/v1/payments/{pay_no}/refunds", json=body, headers=stack.auth()
    )
    assert answer.status_code in (200, 201), answer.text
    return dict(answer.json())


async def wait_refund(stack: Stack, refund_no: str, status: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            answer = await stack.http.get(
                f"{stack.gateway_url}/v1/refunds/{refund_no}", headers=stack.auth()
            )
            if answer.json()["status"] == status:
                return dict(answer.json())
            await asyncio.sleep(0.02)


async def sandbox(stack: Stack, method: str, path: str, **body: Any) -> httpx.Response:
    answer = await stack.http.request(
        method, f"{stack.sandbox_url}/sandbox/wechatpay{path}", json=body or None
    )
    assert answer.status_code < 300, answer.text
    return answer


async def edit_line(stack: Stack, number: str, **edit: Any) -> None:
    await sandbox(stack, "PUT", f"/statement-edits/{stack.account.keys.mchid}/{number}", **edit)


async def order_only_at_the_channel(stack: Stack, w: WorkerContext) -> str:
    """An order made at WeChat Pay by something else than payfront (same merchant id), paid."""
    out_trade_no = "ext" + uuid.uuid4().hex[:20]
    channel, _ = await w.channels.get("wx_test")
    now = datetime.now(UTC)
    request = channel.build_create(
        CreateOrder(
            out_trade_no=out_trade_no,
            amount_minor=2500,
            currency="CNY",
            description="sold at the counter",
            notify_url=f"{stack.gateway_url}/test/callbacks/wechatpay/wx_test",
            method="native",
            expires_at=now + timedelta(minutes=30),
        ),
        now=now,
    )
    assert isinstance(request, HttpRequest)
    answer = await send(w.http, request)
    assert answer.status == 200, answer.body
    await stack.shopper_pays(out_trade_no)
    return out_trade_no


async def differences(stack: Stack, **query: str) -> list[dict[str, Any]]:
    answer = await stack.http.get(
        f"{stack.gateway_url}/v1/reconciliation/differences", params=query, headers=stack.auth()
    )
    assert answer.status_code == 200, answer.text
    return list(answer.json()["data"])


async def resolve(stack: Stack, difference_id: str, action: str, **extra: Any) -> httpx.Response:
    body = {
        "action": action,
        "actor": "ops@example.com",
        "reason": f"checked {difference_id} against the WeChat Pay console",
        "evidence": {"ticket": "RECON-7"},
        **extra,
    }
    return await stack.http.post(
        f"{stack.gateway_url}/v1/reconciliation/differences/{difference_id}/resolve",
        json=body,
        headers=stack.auth(**{"Idempotency-Key": f"resolve-{difference_id}"}),
    )


async def pending_balance(stack: Stack) -> int:
    balances = await merchant_balances(stack.db, "mch_test", False)
    return sum(b.pending_minor for b in balances if b.currency == "CNY")


async def run_cli(stack: Stack, *args: str) -> bytes:
    """``payfront reconcile ARGS --test`` in a process of its own; its stdout."""
    settings = stack.root_settings  # the CLI picks test mode itself (--test)
    env = {
        **os.environ,
        "PAYFRONT_DATABASE_URL": settings.database_url,
        "PAYFRONT_TEST_DATABASE_URL": settings.test_database_url,
        "PAYFRONT_MASTER_KEY": settings.master_key,
        "PAYFRONT_REDIS_URL": settings.redis_url,
        "PAYFRONT_QUEUE_NAME": settings.queue_name,
        "PAYFRONT_NOTIFY_QUEUE_NAME": settings.notify_queue_name,
        "PAYFRONT_SANDBOX_URLS": settings.sandbox_urls,
        "PAYFRONT_LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "payfront",
        "reconcile",
        *args,
        "--test",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out


async def stored_lines(stack: Stack, day: date) -> int:
    async with stack.db.read() as conn:
        count = await conn.execute(
            sa.select(sa.func.count())
            .select_from(statement_lines.join(statements))
            .where(statements.c.channel_account_id == "wx_test", statements.c.business_date == day)
        )
        return int(count.scalar_one())


async def test_a_wechat_day_with_every_difference_is_reconciled_to_zero_unexplained(
    stack: Stack,
) -> None:
    mchid = stack.account.keys.mchid
    # The sandbox charges 0.6 % (its default fee_rate); the account's rate says the same.
    await set_channel_fee_rate(stack.db, "wx_test", fee_rate_bps=60)
    w = await worker_context(stack)
    try:
        matched = await paid_payment(stack)
        await stack.shopper_pays(matched)
        # Paid at the channel, but its callback never reaches us.
        lost = await paid_payment(stack)
        await stack.set_faults(lose_callbacks=1.0)
        await stack.shopper_pays(lost)
        await sandbox(stack, "DELETE", f"/faults/{mchid}")
        amount_off = await paid_payment(stack)
        fee_off = await paid_payment(stack)
        only_here = await paid_payment(stack)
        refunded_ok = await paid_payment(stack)  # its refund will be contradicted
        held = await paid_payment(stack)  # its refund's success will be lost
        for pay_no in (amount_off, fee_off, only_here, refunded_ok, held):
            await stack.shopper_pays(pay_no)
        for pay_no in (matched, amount_off, fee_off, only_here, refunded_ok, held):
            await stack.wait_status(pay_no, "paid")
        assert (await stack.payment(lost))["status"] == "awaiting_payment"
        contradicted = await refund(stack, refunded_ok)
        await wait_refund(stack, contradicted["refund_no"], "succeeded")
        await sandbox(stack, "PUT", f"/refund-mode/{mchid}", outcome="hold")
        in_flight = await refund(stack, held)
        await wait_refund(stack, in_flight["refund_no"], "processing")
        await stack.set_faults(lose_callbacks=1.0)
        await sandbox(
            stack,
            "POST",
            f"/refunds/{in_flight['refund_no']}/settle",
            outcome="success",
            mchid=mchid,
        )
        await sandbox(stack, "DELETE", f"/faults/{mchid}")
        long_no = await order_only_at_the_channel(stack, w)
        # What the sandbox cannot get wrong by itself: edited lines of its bill.
        await edit_line(stack, amount_off, amount=999)
        await edit_line(stack, fee_off, fee=99)
        await edit_line(stack, only_here, omit=True)
        await edit_line(stack, contradicted["refund_no"], status="ABNORMAL")

        day = beijing_today()
        summary = await reconcile_day(w, "wx_test", day)
    finally:
        await w.close()

    # Lines: 7 payments of ours less the one left out, the stranger's, two refunds.
    assert summary["statement_lines"] == 9
    assert summary["counts"] == {
        "matched": 3,  # matched, refunded_ok's and held's payments
        "long": 1,
        "short": 1,
        "amount_mismatch": 1,
        "status_mismatch": 3,  # lost payment, held refund (both fixed), contradicted refund
        "fee_mismatch": 1,
    }
    assert (summary["fixed"], summary["open"]) == (2, 5)
    cny = summary["totals"]["CNY"]
    assert cny["channel_payments_minor"] == 1000 * 5 + 999 + 2500
    assert cny["channel_refunds_minor"] == 2000
    assert cny["payfront_payments_minor"] == 6000  # seven, less the lost one (unpaid here yet)

    # The safe ones were fixed through the check jobs: states, then the ledger.
    assert (await stack.payment(lost))["status"] == "paid"
    await wait_refund(stack, in_flight["refund_no"], "succeeded")
    # Seven payments of 10.00 at 0.6 % (0.06 each), two refunded with their fee given back.
    async with asyncio.timeout(15):
        while await pending_balance(stack) != 5 * 994:
            await asyncio.sleep(0.05)
    assert (await check_ledger(stack.db)).ok

    found = await differences(stack, source="daily", date=day.isoformat())
    by_kind = {(d["kind"], d["reference"]): d for d in found}
    assert set(by_kind) == {
        ("status_mismatch", lost),
        ("status_mismatch", in_flight["refund_no"]),
        ("status_mismatch", contradicted["refund_no"]),
        ("amount_mismatch", amount_off),
        ("fee_mismatch", fee_off),
        ("short", only_here),
        ("long", long_no),
    }
    fixed = by_kind[("status_mismatch", lost)]
    assert fixed["status"] == "fixed" and fixed["fix"]["action"] == "query_payment"
    assert fixed["fix"]["outcome"] == "paid_at_channel:applied"
    assert by_kind[("status_mismatch", in_flight["refund_no"])]["status"] == "fixed"
    fee = by_kind[("fee_mismatch", fee_off)]
    assert (fee["payfront"]["fee"], fee["channel_says"]["fee"]) == (6, 99)
    amount = by_kind[("amount_mismatch", amount_off)]
    assert (amount["payfront"]["amount"], amount["channel_says"]["amount"]) == (1000, 999)
    assert by_kind[("long", long_no)]["channel_says"]["amount"] == 2500
    contradiction = by_kind[("status_mismatch", contradicted["refund_no"])]
    assert (contradiction["payfront"]["status"], contradiction["channel_says"]["status"]) == (
        "succeeded",
        "failed",
    )

    # Running the day again (through the CLI) adds nothing and keeps every decision.
    again = orjson.loads(
        await run_cli(stack, "--account", "wx_test", "--date", day.isoformat(), "--format", "json")
    )
    [rerun] = again["data"]
    assert rerun["counts"]["status_mismatch"] == 1 and rerun["counts"]["matched"] == 5
    assert (rerun["fixed"], rerun["open"]) == (0, 5)
    assert len(await differences(stack, source="daily", date=day.isoformat())) == 7

    # The rest is decided by a person, through the API, with the trail kept.
    open_ones = [d for d in found if d["status"] == "open"]
    assert len(open_ones) == 5
    for difference in open_ones:
        answer = await resolve(stack, difference["id"], "corrected_at_channel")
        assert answer.status_code == 200, answer.text
        resolved = answer.json()
        assert resolved["status"] == "resolved"
        [decision] = resolved["resolutions"]
        assert decision["actor"] == "ops@example.com"
        assert decision["evidence"] == {"ticket": "RECON-7"}
    replay = await resolve(stack, open_ones[0]["id"], "corrected_at_channel")
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    twice = await stack.http.post(
        f"{stack.gateway_url}/v1/reconciliation/differences/{open_ones[0]['id']}/resolve",
        json={"action": "dismissed", "actor": "x", "reason": "again"},
        headers=stack.auth(),
    )
    assert twice.status_code == 409, twice.text
    assert await differences(stack, source="daily", status="open") == []

    # A third run (every WeChat Pay account, CSV) finds the same, and the decisions stand.
    table = (
        await run_cli(stack, "--channel", "wechatpay", "--date", day.isoformat(), "--format", "csv")
    ).decode()
    header, row = table.splitlines()
    third = dict(zip(header.split(","), row.split(","), strict=True))
    assert third["channel_account"] == "wx_test"
    assert (third["statement_lines"], third["matched"], third["open"]) == ("9", "5", "0")
    assert len(await differences(stack, source="daily")) == 7
    assert await stored_lines(stack, day) == 9  # downloaded three times, stored once
    runs = await stack.http.get(
        f"{stack.gateway_url}/v1/reconciliation/runs",
        params={"date": day.isoformat()},
        headers=stack.auth(),
    )
    assert [run["open"] for run in runs.json()["data"]] == [0, 5, 5]


async def test_a_callback_that_does_not_match_is_on_the_same_review_list(stack: Stack) -> None:
    pay_no = await paid_payment(stack, amount=500)
    # The shopper pays more than was asked: recorded at once, not applied.
    await stack.shopper_pays(pay_no, paid_amount=800)
    async with asyncio.timeout(10):
        while not (found := await differences(stack, source="realtime")):
            await asyncio.sleep(0.05)
    [item] = found
    assert item["kind"] == "payment_mismatch" and item["status"] == "open"
    assert item["pay_no"] == pay_no and item["channel_account"] == "wx_test"
    assert item["channel_says"]["amount"] == 800
    assert (item["channel"], item["currency"], item["subject"]) == ("wechatpay", "CNY", "payment")
    assert item["payfront"] == {"amount": 500, "status": "awaiting_payment", "fee": None}
    assert item["id"] == f"anm_{item['anomaly_id']}"
    assert (await stack.payment(pay_no))["status"] == "awaiting_payment"

    listed = await differences(stack)
    assert [d["id"] for d in listed] == [item["id"]]
    answer = await resolve(stack, item["id"], "refunded")
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "resolved"
    anomaly = await stack.http.get(
        f"{stack.gateway_url}/v1/anomalies/{item['anomaly_id']}", headers=stack.auth()
    )
    assert anomaly.json()["status"] == "resolved"
    assert anomaly.json()["resolutions"][0]["action"] == "refunded"
    assert await differences(stack, status="open") == []


async def _pay_with_lost_callback(
    stack: Stack, faults: str, pay: str, body: dict[str, Any]
) -> None:
    answer = await stack.http.put(f"{stack.sandbox_url}{faults}", json={"lose_callbacks": 1.0})
    assert answer.status_code == 200, answer.text
    paid = await stack.http.post(f"{stack.sandbox_url}{pay}", json=body)
    assert paid.status_code == 200, paid.text
    cleared = await stack.http.delete(f"{stack.sandbox_url}{faults}")
    assert cleared.status_code in (200, 204), cleared.text


async def test_alipay_and_stripe_statements_are_matched(stack: Stack) -> None:
    alipay = await provision_alipay_sandbox_account(
        stack.db,
        stack.vault,
        sandbox_url=stack.sandbox_url,
        merchant_id="mch_test",
        account_id="ali_test",
    )
    stripe = await provision_stripe_sandbox_account(
        stack.db,
        stack.vault,
        sandbox_url=stack.sandbox_url,
        merchant_id="mch_test",
        account_id="stripe_test",
        webhook_url=f"{stack.gateway_url}/test/callbacks/stripe/stripe_test",
    )
    # The sandboxes' prices: Alipay 0.6 %, Stripe 2.9 % + 30.
    await set_channel_fee_rate(stack.db, "ali_test", fee_rate_bps=60)
    await set_channel_fee_rate(stack.db, "stripe_test", fee_rate_bps=290, fee_fixed_minor=30)

    ali_pay = f"{stack.sandbox_url}/sandbox/alipay/orders/{{}}/pay"
    ali_paid, ali_lost, ali_refunded = [
        await paid_payment(stack, amount=1999, channel="alipay", method="qr") for _ in range(3)
    ]
    for pay_no in (ali_paid, ali_refunded):
        answer = await stack.http.post(
            ali_pay.format(pay_no), json={"app_id": alipay.app_id, "outcome": "success"}
        )
        assert answer.status_code == 200, answer.text
        await stack.wait_status(pay_no, "paid")
    await _pay_with_lost_callback(
        stack,
        f"/sandbox/alipay/faults/{alipay.app_id}",
        f"/sandbox/alipay/orders/{ali_lost}/pay",
        {"app_id": alipay.app_id, "outcome": "success"},
    )
    ali_refund = await refund(stack, ali_refunded)
    await wait_refund(stack, ali_refund["refund_no"], "succeeded")

    intents = {}
    for name, amount in (("paid", 2000), ("lost", 1500)):
        created = await stack.create_payment(
            amount=amount, channel="stripe", method="payment_intent", currency="USD"
        )
        assert created.status_code == 201, created.text
        token = await stack.token(created.json()["token"], wait=5)
        intents[name] = (created.json()["pay_no"], token["credential"]["payment_intent_id"])
    stripe_pay = f"{stack.sandbox_url}/sandbox/stripe/payment_intents/{{}}/pay"
    answer = await stack.http.post(stripe_pay.format(intents["paid"][1]), json={})
    assert answer.status_code == 200, answer.text
    await stack.wait_status(intents["paid"][0], "paid")
    await _pay_with_lost_callback(
        stack,
        f"/sandbox/stripe/faults/{stripe.stripe_account_id}",
        f"/sandbox/stripe/payment_intents/{intents['lost'][1]}/pay",
        {},
    )
    stripe_refund = await refund(stack, intents["paid"][0], amount=500)
    await wait_refund(stack, stripe_refund["refund_no"], "succeeded")
    assert (await stack.payment(ali_lost))["status"] == "awaiting_payment"
    assert (await stack.payment(intents["lost"][0]))["status"] == "awaiting_payment"

    w = await worker_context(stack)
    try:
        ali_day = await reconcile_day(w, "ali_test", beijing_today())
        stripe_day = await reconcile_day(w, "stripe_test", datetime.now(UTC).date())
    finally:
        await w.close()

    # Alipay: three payments and a refund, parsed from its GBK zip; the lost one fixed.
    assert ali_day["statement_lines"] == 4
    assert ali_day["counts"]["matched"] == 3
    assert ali_day["counts"]["status_mismatch"] == 1
    assert sum(ali_day["counts"].values()) == 4
    assert (ali_day["fixed"], ali_day["open"]) == (1, 0)
    assert ali_day["totals"]["CNY"]["channel_fees_minor"] == 3 * 12 - 12
    # Stripe: two charges and a refund from its balance transactions (UTC day).
    assert stripe_day["statement_lines"] == 3
    assert stripe_day["counts"]["matched"] == 2
    assert stripe_day["counts"]["status_mismatch"] == 1
    assert (stripe_day["fixed"], stripe_day["open"]) == (1, 0)
    usd = stripe_day["totals"]["USD"]
    assert (usd["channel_payments_minor"], usd["channel_refunds_minor"]) == (3500, 500)
    assert usd["channel_fees_minor"] == (58 + 30) + (44 + 30)
    for pay_no in (ali_lost, intents["lost"][0]):
        assert (await stack.payment(pay_no))["status"] == "paid"
    assert await differences(stack, status="open") == []


async def test_the_daily_schedule_reconciles_every_account_s_previous_day(stack: Stack) -> None:
    assert reconcile_crons(stack.settings) == []  # test mode: on demand only
    assert len(reconcile_crons(stack.root_settings.for_mode("live"))) == 1
    paid = await paid_payment(stack)
    await stack.shopper_pays(paid)
    await stack.wait_status(paid, "paid")
    w = await worker_context(stack)
    try:
        assert await reconcile_yesterday({"payfront": w}) == "enqueued:1"
        assert await reconcile_yesterday({"payfront": w}) == "enqueued:0"  # queued already
    finally:
        await w.close()
    yesterday = (beijing_today() - timedelta(days=1)).isoformat()
    async with asyncio.timeout(15):
        while True:
            answer = await stack.http.get(
                f"{stack.gateway_url}/v1/reconciliation/runs",
                params={"date": yesterday},
                headers=stack.auth(),
            )
            if runs := answer.json()["data"]:
                break
            await asyncio.sleep(0.05)
    # The sandbox has no bill for yesterday (WeChat: NO_STATEMENT_EXIST): an empty day.
    [run] = runs
    assert (run["channel_account"], run["statement_lines"], run["open"]) == ("wx_test", 0, 0)
