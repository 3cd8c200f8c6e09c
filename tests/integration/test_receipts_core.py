"""Money the channel reports that payfront was not asked for, on the real databases: a partial
payment, a payment after close, a second attempt of a paid trade. Each ends in the state the
tables allow, refunded or kept by the merchant's policy, with an anomaly and its trail."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from core import attempts, receipts, refunds
from core import pay as pay_core
from core import prepay as prepay_core
from core.errors import Conflict, InvalidRequest
from core.receipts import ApplyOutcome, PaymentReport
from core.refunds import NewRefund
from core.store.db import Database
from core.store.tables import (
    anomalies,
    events,
    pay_orders,
    refund_orders,
    resolutions,
    trade_orders,
)
from core.vault import Vault
from tests import factories


def _report(account_id: str, pay_no: str, amount: int, source: str = "cb-1") -> PaymentReport:
    return PaymentReport(
        channel_account_id=account_id,
        out_trade_no=pay_no,
        amount_minor=amount,
        currency="CNY",
        channel_trade_no="4200000001",
        paid_at=None,
        source_id=source,
    )


async def _row(db: Database, table: sa.Table, **where: Any) -> Any:
    async with db.read() as conn:
        clauses = [table.c[key] == value for key, value in where.items()]
        return (await conn.execute(sa.select(table).where(*clauses))).one()


async def _rows(db: Database, table: sa.Table, **where: Any) -> list[Any]:
    async with db.read() as conn:
        clauses = [table.c[key] == value for key, value in where.items()]
        return list((await conn.execute(sa.select(table).where(*clauses))).all())


async def _event_types(db: Database, pay_no: str) -> list[str]:
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(events.c.type).where(events.c.pay_no == pay_no).order_by(events.c.id)
        )
        return list(rows.scalars())


async def test_partial_payment_is_refunded_by_default(db: Database, vault: Vault) -> None:
    merchant, account_id = await factories.merchant_with_account(db, vault)
    pay_no = await factories.payment(db, merchant, account_id, amount_minor=1000)
    outcome, event_id = await receipts.apply_payment(db, _report(account_id, pay_no, 400))
    assert outcome is ApplyOutcome.PARTIAL and event_id is not None

    pay = await _row(db, pay_orders, pay_no=pay_no)
    assert (pay.status, pay.paid_minor, pay.refunded_minor) == ("partially_paid", 400, 400)
    trade = await _row(db, trade_orders, trade_no=pay.trade_no)
    assert trade.status == "failed"  # a new attempt may follow
    [refund] = await _rows(db, refund_orders, pay_no=pay_no)
    assert (refund.amount_minor, refund.status, refund.reason) == (
        400,
        "pending",
        "partial payment",
    )
    [anomaly] = await _rows(db, anomalies, pay_no=pay_no)
    assert (anomaly.kind, anomaly.status) == ("partial_payment", "resolved")
    [trail] = await _rows(db, resolutions, subject_id=str(anomaly.id))
    assert (trail.actor, trail.action, trail.evidence) == (
        "payfront",
        "refunded",
        {"refund_no": refund.refund_no},
    )
    assert await _event_types(db, pay_no) == ["payment.partially_paid"]
    # The same callback again changes nothing.
    again = await receipts.apply_payment(db, _report(account_id, pay_no, 400, "cb-2"))
    assert again[0] is ApplyOutcome.DUPLICATE
    assert len(await _rows(db, refund_orders, pay_no=pay_no)) == 1


async def test_partial_payment_kept_by_policy_is_refundable_up_to_what_was_paid(
    db: Database, vault: Vault
) -> None:
    merchant, account_id = await factories.merchant_with_account(db, vault)
    await receipts.set_policies(
        db, merchant.merchant_id, partial_payment="accept", late_payment="refund"
    )
    pay_no = await factories.payment(db, merchant, account_id, amount_minor=1000)
    outcome, _ = await receipts.apply_payment(db, _report(account_id, pay_no, 400))
    assert outcome is ApplyOutcome.PARTIAL
    pay = await _row(db, pay_orders, pay_no=pay_no)
    assert (pay.status, pay.refunded_minor) == ("partially_paid", 0)
    assert (await _row(db, trade_orders, trade_no=pay.trade_no)).status == "partially_paid"
    [anomaly] = await _rows(db, anomalies, pay_no=pay_no)
    assert anomaly.status == "resolved"
    [trail] = await _rows(db, resolutions, subject_id=str(anomaly.id))
    assert trail.action == "accepted"

    with pytest.raises(InvalidRequest):
        await refunds.create_refund(db, merchant, NewRefund(pay_no, amount_minor=401), claim=None)
    made = await refunds.create_refund(db, merchant, NewRefund(pay_no), claim=None)
    assert (await _row(db, refund_orders, refund_no=made.refund_no)).amount_minor == 400


@pytest.mark.parametrize("policy", ["refund", "hold"])
async def test_payment_after_close_is_refunded_or_held(
    db: Database, vault: Vault, policy: str
) -> None:
    merchant, account_id = await factories.merchant_with_account(db, vault)
    await receipts.set_policies(
        db, merchant.merchant_id, partial_payment="refund", late_payment=policy
    )
    pay_no = await factories.payment(db, merchant, account_id, amount_minor=500)
    await pay_core.close(db, pay_no)
    outcome, event_id = await receipts.apply_payment(db, _report(account_id, pay_no, 500))
    assert outcome is ApplyOutcome.LATE and event_id is not None

    pay = await _row(db, pay_orders, pay_no=pay_no)
    assert (pay.status, pay.paid_minor) == ("paid", 500)
    assert (await _row(db, trade_orders, trade_no=pay.trade_no)).status == "closed"
    assert await _event_types(db, pay_no) == ["payment.closed", "payment.late_succeeded"]
    [anomaly] = await _rows(db, anomalies, pay_no=pay_no)
    assert anomaly.kind == "late_payment"
    held = await _rows(db, refund_orders, pay_no=pay_no)
    if policy == "refund":
        assert [r.amount_minor for r in held] == [500] and pay.refunded_minor == 500
        assert anomaly.status == "resolved"
    else:
        assert held == [] and pay.refunded_minor == 0
        assert anomaly.status == "open"  # for a person; the money can be refunded by API
        made = await refunds.create_refund(db, merchant, NewRefund(pay_no), claim=None)
        assert made.status == 201


async def test_a_second_paid_attempt_is_refunded_and_the_trade_paid_once(
    db: Database, vault: Vault
) -> None:
    merchant, account_id = await factories.merchant_with_account(db, vault)
    first = await factories.payment(db, merchant, account_id, amount_minor=700)
    trade_no = (await _row(db, pay_orders, pay_no=first)).trade_no
    created = await attempts.create_attempt(
        db,
        merchant,
        attempts.NewAttempt(trade_no, "wechatpay", "native", 900),
        claim=None,
        channel_account_id=account_id,
    )
    second = created.pay_no
    trade = await _row(db, trade_orders, trade_no=trade_no)
    assert (trade.status, trade.current_pay_no) == ("open", second)
    await prepay_core.start_prepay(db, second)
    await prepay_core.credential_ready(db, second, {"code_url": "weixin://y"}, None)

    assert (await receipts.apply_payment(db, _report(account_id, second, 700)))[0] is (
        ApplyOutcome.APPLIED
    )
    # The first attempt's shopper paid too, before it could be closed.
    outcome, event_id = await receipts.apply_payment(db, _report(account_id, first, 700, "cb-9"))
    assert outcome is ApplyOutcome.DUPLICATE_PAYMENT and event_id is not None

    assert (await _row(db, trade_orders, trade_no=trade_no)).status == "paid"
    kept = [
        p
        for p in await _rows(db, pay_orders, trade_no=trade_no)
        if p.status == "paid" and p.refunded_minor < p.paid_minor
    ]
    assert [p.pay_no for p in kept] == [second]  # one kept successful payment
    [refund] = await _rows(db, refund_orders, pay_no=first)
    assert (refund.amount_minor, refund.reason) == (700, "duplicate payment")
    assert await _event_types(db, first) == ["payment.duplicate"]
    [anomaly] = await _rows(db, anomalies, pay_no=first)
    assert (anomaly.kind, anomaly.status) == ("duplicate_payment", "resolved")

    with pytest.raises(Conflict) as refused:
        await attempts.create_attempt(
            db,
            merchant,
            attempts.NewAttempt(trade_no, "wechatpay", "native", 900),
            claim=None,
            channel_account_id=account_id,
        )
    assert refused.value.code == "trade_not_open"


async def test_a_failed_trade_is_reopened_by_a_new_attempt(db: Database, vault: Vault) -> None:
    merchant, account_id = await factories.merchant_with_account(db, vault)
    first = await factories.pending_payment(db, merchant, account_id)
    trade_no = (await _row(db, pay_orders, pay_no=first)).trade_no
    await prepay_core.start_prepay(db, first)
    await pay_core.prepay_failed(db, first, "PARAM_ERROR", "refused by the channel")
    assert (await _row(db, trade_orders, trade_no=trade_no)).status == "failed"
    created = await attempts.create_attempt(
        db,
        merchant,
        attempts.NewAttempt(trade_no, "wechatpay", "native", 900),
        claim=None,
        channel_account_id=account_id,
    )
    trade = await _row(db, trade_orders, trade_no=trade_no)
    assert (trade.status, trade.current_pay_no) == ("open", created.pay_no)
    view = await attempts.get_trade(db, merchant.merchant_id, trade_no)
    assert [a["status"] for a in view["attempts"]] == ["prepay_failed", "pending"]
