"""Factories for the store's objects, made through the core's own functions (so a factory
cannot make a row the code could not)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from core import prepay as prepay_core
from core import receipts
from core.merchants import MerchantAuth, create_merchant, save_channel_account
from core.payments import NewPayment, create_payment
from core.store.db import Database
from core.vault import Vault


@dataclass(frozen=True, slots=True)
class PaidPayment:
    merchant: MerchantAuth
    account_id: str
    pay_no: str
    amount_minor: int


async def merchant_with_account(
    db: Database, vault: Vault, *, channel: str = "wechatpay"
) -> tuple[MerchantAuth, str]:
    merchant_id = await create_merchant(db, "Factory shop")
    account_id = f"acct_{uuid.uuid4().hex[:10]}"
    await save_channel_account(
        db,
        vault,
        merchant_id=merchant_id,
        account_id=account_id,
        channel=channel,
        credentials={"mchid": "1900000001"},
    )
    return MerchantAuth(merchant_id=merchant_id, livemode=False), account_id


async def pending_payment(
    db: Database, merchant: MerchantAuth, account_id: str, *, amount_minor: int = 100
) -> str:
    """A payment just created by the token path (its prepay job owed), by its pay_no."""
    created = await create_payment(
        db,
        merchant,
        NewPayment(
            amount_minor=amount_minor,
            currency="CNY",
            merchant_order_no=f"order-{uuid.uuid4().hex[:12]}",
            channel="wechatpay",
            method="native",
            description="A cup of tea",
            expires_in_s=900,
        ),
        claim=None,
        channel_account_id=account_id,
    )
    return created.pay_no


async def payment(
    db: Database, merchant: MerchantAuth, account_id: str, *, amount_minor: int = 100
) -> str:
    """A payment awaiting payment (its prepay done), by its pay_no."""
    pay_no = await pending_payment(db, merchant, account_id, amount_minor=amount_minor)
    await prepay_core.start_prepay(db, pay_no)
    await prepay_core.credential_ready(db, pay_no, {"code_url": "weixin://x"}, None)
    return pay_no


async def paid_payment(db: Database, vault: Vault, *, amount_minor: int = 100) -> PaidPayment:
    merchant, account_id = await merchant_with_account(db, vault)
    pay_no = await payment(db, merchant, account_id, amount_minor=amount_minor)
    outcome, _ = await receipts.apply_payment(
        db,
        receipts.PaymentReport(
            channel_account_id=account_id,
            out_trade_no=pay_no,
            amount_minor=amount_minor,
            currency="CNY",
            channel_trade_no=f"42000{uuid.uuid4().int % 10**12}",
            paid_at=None,
            source_id=f"factory:{pay_no}",
        ),
    )
    assert outcome is receipts.ApplyOutcome.APPLIED
    return PaidPayment(merchant, account_id, pay_no, amount_minor)
