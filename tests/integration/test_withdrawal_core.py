"""Withdrawals in the core, on the real databases: the wallet is debited when a withdrawal is
made (never below zero, also when several are asked for at once), credited back when the
payout fails, and what the channel says is applied once; money events reach the ledger."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import sqlalchemy as sa

from core import prepay as prepay_core
from core import receipts, withdrawals
from core.ledger.balances import account_balance, check_ledger
from core.ledger.posting import post_event
from core.merchants import MerchantAuth
from core.payments import NewPayment, create_payment
from core.resolutions import list_anomalies
from core.states import WithdrawalStatus
from core.store.db import Database
from core.store.tables import events, outbox, wallet_movements, wallets
from core.vault import Vault
from core.wallets import InsufficientFunds
from tests import factories


async def _funded_wallet(db: Database, vault: Vault, amount: int) -> tuple[MerchantAuth, str, str]:
    """A merchant, its channel account, and a wallet recharged with ``amount``."""
    merchant, account_id = await factories.merchant_with_account(db, vault)
    created = await create_payment(
        db,
        merchant,
        NewPayment(
            amount_minor=amount,
            currency="CNY",
            merchant_order_no=f"topup-{uuid.uuid4().hex[:10]}",
            channel="wechatpay",
            method="native",
            description="Top-up",
            expires_in_s=900,
            recharge_owner="user-1",
        ),
        claim=None,
        channel_account_id=account_id,
    )
    await prepay_core.start_prepay(db, created.pay_no)
    await prepay_core.credential_ready(db, created.pay_no, {"code_url": "weixin://x"}, None)
    outcome, _ = await receipts.apply_payment(
        db,
        receipts.PaymentReport(
            channel_account_id=account_id,
            out_trade_no=created.pay_no,
            amount_minor=amount,
            currency="CNY",
            channel_trade_no="4200",
            paid_at=None,
            source_id="cb-topup",
        ),
    )
    assert outcome is receipts.ApplyOutcome.APPLIED
    async with db.read() as conn:
        wallet_id = (await conn.execute(sa.select(wallets.c.wallet_id))).scalar_one()
    return merchant, account_id, wallet_id


async def _balance(db: Database, wallet_id: str) -> int:
    async with db.read() as conn:
        value = (
            await conn.execute(
                sa.select(wallets.c.balance_minor).where(wallets.c.wallet_id == wallet_id)
            )
        ).scalar_one()
    return int(value)


def _new(account_id: str, wallet_id: str, amount: int) -> withdrawals.NewWithdrawal:
    return withdrawals.NewWithdrawal(
        wallet_id=wallet_id,
        amount_minor=amount,
        channel_account_id=account_id,
        channel="wechatpay",
        payee_id="o-openid-1",
    )


def _report(
    account_id: str, withdrawal_no: str, status: WithdrawalStatus, source: str
) -> withdrawals.PayoutReport:
    return withdrawals.PayoutReport(
        channel_account_id=account_id,
        withdrawal_no=withdrawal_no,
        status=status,
        source_id=source,
        failure_code="FAIL" if status is WithdrawalStatus.FAILED else None,
    )


async def test_the_wallet_is_debited_at_once_and_never_overdrawn(
    db: Database, vault: Vault
) -> None:
    merchant, account_id, wallet_id = await _funded_wallet(db, vault, 100)
    made = await withdrawals.create_withdrawal(
        db, merchant, _new(account_id, wallet_id, 60), claim=None
    )
    assert made.status == 201
    assert await _balance(db, wallet_id) == 40
    with pytest.raises(InsufficientFunds):
        await withdrawals.create_withdrawal(
            db, merchant, _new(account_id, wallet_id, 41), claim=None
        )

    async def attempt() -> str:
        try:
            return (
                await withdrawals.create_withdrawal(
                    db, merchant, _new(account_id, wallet_id, 15), claim=None
                )
            ).withdrawal_no
        except InsufficientFunds:
            return "refused"

    results = await asyncio.gather(*(attempt() for _ in range(6)))
    assert results.count("refused") == 4  # 40 left: two of 15 fit
    assert await _balance(db, wallet_id) == 10
    async with db.read() as conn:
        owed = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(outbox)
                .where(outbox.c.kind == "withdraw", outbox.c.status == "pending")
            )
        ).scalar_one()
    assert owed == 3


async def test_success_is_applied_once_and_a_failure_credits_the_wallet_back(
    db: Database, vault: Vault
) -> None:
    merchant, account_id, wallet_id = await _funded_wallet(db, vault, 100)
    paid = (
        await withdrawals.create_withdrawal(
            db, merchant, _new(account_id, wallet_id, 30), claim=None
        )
    ).withdrawal_no
    failing = (
        await withdrawals.create_withdrawal(
            db, merchant, _new(account_id, wallet_id, 50), claim=None
        )
    ).withdrawal_no
    assert await _balance(db, wallet_id) == 20
    for number in (paid, failing):
        start, _ = await withdrawals.start_withdrawal(db, number)
        assert start is withdrawals.WithdrawalStart.FRESH

    done = _report(account_id, paid, WithdrawalStatus.SUCCEEDED, "cb-1")
    outcome, event_id = await withdrawals.apply_payout(db, done)
    assert outcome is withdrawals.PayoutOutcome.APPLIED and event_id is not None
    again = await withdrawals.apply_payout(db, done)
    assert again[0] is withdrawals.PayoutOutcome.DUPLICATE

    refused = _report(account_id, failing, WithdrawalStatus.FAILED, "cb-2")
    assert (await withdrawals.apply_payout(db, refused))[0] is withdrawals.PayoutOutcome.APPLIED
    assert await _balance(db, wallet_id) == 70  # the 50 came back
    late = _report(account_id, failing, WithdrawalStatus.SUCCEEDED, "cb-3")
    assert (await withdrawals.apply_payout(db, late))[0] is withdrawals.PayoutOutcome.ANOMALY
    assert (await withdrawals.apply_payout(db, late))[0] is withdrawals.PayoutOutcome.ANOMALY
    listed = await list_anomalies(db, merchant.merchant_id)
    assert [(a["withdrawal_no"], a["kind"], a["status"]) for a in listed] == [
        (failing, "payout_mismatch", "open")  # recorded once, for a person
    ]
    assert (await withdrawals.get_withdrawal(db, merchant.merchant_id, failing))[
        "status"
    ] == "failed"
    assert await _balance(db, wallet_id) == 70

    async with db.read() as conn:
        kinds = list(
            (
                await conn.execute(
                    sa.select(wallet_movements.c.kind)
                    .where(wallet_movements.c.wallet_id == wallet_id)
                    .order_by(wallet_movements.c.id)
                )
            ).scalars()
        )
        money_events = list(
            (await conn.execute(sa.select(events.c.id, events.c.type).order_by(events.c.id))).all()
        )
    assert kinds == ["recharge", "withdraw", "withdraw", "withdraw_return"]
    assert [kind for _, kind in money_events] == [
        "payment.succeeded",
        "recharge.succeeded",
        "withdrawal.succeeded",
        "withdrawal.failed",
    ]
    # The ledger: the recharge and the paid-out withdrawal post; the wallet's account ends
    # at what the wallet holds once nothing is in flight.
    for event_id_, _ in money_events:
        await post_event(db, event_id_)
    assert (await check_ledger(db)).ok
    assert await account_balance(db, f"wallet:{wallet_id}:CNY:test") == 70
