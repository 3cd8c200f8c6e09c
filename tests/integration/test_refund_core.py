"""Refunds in the core, on the real databases: the sum of refunds never exceeds what was paid
(also when asked for at once), a failure gives the amount back, channel news is applied
once, cross-checked, and contradictions are recorded instead of applied."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from core import refunds
from core.errors import Conflict, IdempotencyKeyReused, InvalidRequest, NotFound
from core.idempotency import IdempotencyClaim
from core.merchants import MerchantAuth
from core.refunds import NewRefund, RefundOutcome, RefundReport
from core.states import RefundStatus
from core.store.db import Database
from core.store.tables import anomalies, events, outbox, pay_orders, refund_orders
from core.vault import Vault
from tests import factories


async def _refunded_minor(db: Database, pay_no: str) -> int:
    async with db.read() as conn:
        value = (
            await conn.execute(
                sa.select(pay_orders.c.refunded_minor).where(pay_orders.c.pay_no == pay_no)
            )
        ).scalar_one()
    return int(value)


async def _refund(db: Database, merchant: MerchantAuth, pay_no: str, **fields: Any) -> str:
    created = await refunds.create_refund(
        db,
        merchant,
        NewRefund(pay_no=pay_no, **fields),
        claim=None,
    )
    assert created.status == 201
    return created.refund_no


async def _events(db: Database, refund_no: str) -> list[str]:
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(events.c.type).where(events.c.refund_no == refund_no).order_by(events.c.id)
        )
        return list(rows.scalars())


def _report(
    paid: factories.PaidPayment, refund_no: str, status: RefundStatus, **kw: Any
) -> RefundReport:
    return RefundReport(
        channel_account_id=paid.account_id,
        refund_no=refund_no,
        pay_no=paid.pay_no,
        status=status,
        source_id=str(kw.pop("source_id", f"test:{refund_no}:{status}")),
        **kw,
    )


async def test_partial_refunds_add_up_to_at_most_what_was_paid(db: Database, vault: Vault) -> None:
    paid = await factories.paid_payment(db, vault, amount_minor=100)
    first = await _refund(db, paid.merchant, paid.pay_no, amount_minor=30, reason="broken cup")
    await _refund(db, paid.merchant, paid.pay_no, amount_minor=50)
    assert await _refunded_minor(db, paid.pay_no) == 80

    with pytest.raises(InvalidRequest) as too_much:
        await _refund(db, paid.merchant, paid.pay_no, amount_minor=21)
    assert too_much.value.code == "amount_exceeds_refundable"
    assert "20" in too_much.value.message
    # No amount: all that is left.
    rest = await _refund(db, paid.merchant, paid.pay_no)
    view = await refunds.get_refund(db, paid.merchant.merchant_id, rest)
    assert (view["amount"], view["status"], view["currency"]) == (20, "pending", "CNY")
    with pytest.raises(Conflict) as nothing_left:
        await _refund(db, paid.merchant, paid.pay_no)
    assert nothing_left.value.code == "payment_fully_refunded"
    assert await _refunded_minor(db, paid.pay_no) == 100

    listed = await refunds.list_refunds(db, paid.merchant.merchant_id, paid.pay_no)
    assert [item["amount"] for item in listed] == [30, 50, 20]
    assert listed[0]["refund_no"] == first and listed[0]["reason"] == "broken cup"
    async with db.read() as conn:
        owed = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(outbox)
                .where(outbox.c.kind == "refund", outbox.c.status == "pending")
            )
        ).scalar_one()
    assert owed == 3  # one refund job owed per refund, recorded with it


async def test_concurrent_refunds_never_exceed_the_payment(db: Database, vault: Vault) -> None:
    paid = await factories.paid_payment(db, vault, amount_minor=100)

    async def attempt() -> str:
        try:
            return await _refund(db, paid.merchant, paid.pay_no, amount_minor=30)
        except InvalidRequest as exc:
            return exc.code

    results = await asyncio.gather(*(attempt() for _ in range(12)))
    made = [result for result in results if result.startswith("rfd")]
    assert len(made) == 3
    assert results.count("amount_exceeds_refundable") == 9
    assert await _refunded_minor(db, paid.pay_no) == 90
    async with db.read() as conn:
        total = (
            await conn.execute(
                sa.select(sa.func.sum(refund_orders.c.amount_minor)).where(
                    refund_orders.c.pay_no == paid.pay_no
                )
            )
        ).scalar_one()
    assert total == 90


async def test_only_a_paid_payment_of_ones_own_can_be_refunded(db: Database, vault: Vault) -> None:
    merchant, account_id = await factories.merchant_with_account(db, vault)
    unpaid = await factories.payment(db, merchant, account_id)
    with pytest.raises(Conflict) as refused:
        await _refund(db, merchant, unpaid)
    assert refused.value.code == "payment_not_refundable"
    with pytest.raises(NotFound):
        await _refund(db, merchant, "pay_does_not_exist")

    paid = await factories.paid_payment(db, vault)
    with pytest.raises(NotFound):  # another merchant's payment is not found, not refused
        await _refund(db, merchant, paid.pay_no)
    with pytest.raises(NotFound):
        await refunds.list_refunds(db, merchant.merchant_id, paid.pay_no)
    async with db.read() as conn:
        count = (
            await conn.execute(sa.select(sa.func.count()).select_from(refund_orders))
        ).scalar_one()
    assert count == 0
    assert await _refunded_minor(db, unpaid) == 0


async def test_idempotency_key_replays_and_refuses_another_body(db: Database, vault: Vault) -> None:
    paid = await factories.paid_payment(db, vault)
    claim = IdempotencyClaim(key="refund-1", request_hash="a" * 64)
    new = NewRefund(pay_no=paid.pay_no, amount_minor=40)
    first = await refunds.create_refund(db, paid.merchant, new, claim=claim)
    again = await refunds.create_refund(db, paid.merchant, new, claim=claim)
    assert again.replayed and not first.replayed
    assert again.refund_no == first.refund_no
    assert orjson.loads(again.body) == orjson.loads(first.body)
    assert await _refunded_minor(db, paid.pay_no) == 40  # held once

    with pytest.raises(IdempotencyKeyReused):
        await refunds.create_refund(
            db, paid.merchant, new, claim=IdempotencyClaim(key="refund-1", request_hash="b" * 64)
        )
    await _refund(db, paid.merchant, paid.pay_no, amount_minor=10, merchant_refund_no="R-1")
    with pytest.raises(Conflict) as taken:
        await _refund(db, paid.merchant, paid.pay_no, amount_minor=10, merchant_refund_no="R-1")
    assert taken.value.code == "merchant_refund_no_taken"
    assert await _refunded_minor(db, paid.pay_no) == 50  # the refused one held nothing


async def test_success_is_applied_once_and_recorded_as_one_event(
    db: Database, vault: Vault
) -> None:
    paid = await factories.paid_payment(db, vault)
    refund_no = await _refund(db, paid.merchant, paid.pay_no, amount_minor=60)
    start, _ = await refunds.start_refund(db, refund_no)
    assert start is refunds.RefundStart.FRESH
    start, _ = await refunds.start_refund(db, refund_no)
    assert start is refunds.RefundStart.RESUMED

    accepted = _report(paid, refund_no, RefundStatus.PROCESSING, amount_minor=60)
    assert (await refunds.apply_refund(db, accepted))[0] is RefundOutcome.APPLIED
    done = _report(paid, refund_no, RefundStatus.SUCCEEDED, amount_minor=60, currency="CNY")
    outcome, event_id = await refunds.apply_refund(db, done)
    assert outcome is RefundOutcome.APPLIED and event_id is not None
    again = await asyncio.gather(*(refunds.apply_refund(db, done) for _ in range(5)))
    assert {outcome for outcome, _ in again} == {RefundOutcome.DUPLICATE}
    late = _report(paid, refund_no, RefundStatus.PROCESSING)
    assert (await refunds.apply_refund(db, late))[0] is RefundOutcome.DUPLICATE

    view = await refunds.get_refund(db, paid.merchant.merchant_id, refund_no)
    assert view["status"] == "succeeded" and view["succeeded_at"] is not None
    assert await _events(db, refund_no) == ["refund.succeeded"]
    async with db.read() as conn:
        owed = (
            await conn.execute(
                sa.select(outbox.c.kind).where(outbox.c.ref == event_id).order_by(outbox.c.kind)
            )
        ).scalars()
        assert list(owed) == ["notify", "post_entry"]  # merchant told; ledger owed a posting
    assert await _refunded_minor(db, paid.pay_no) == 60


async def test_a_failed_refund_gives_its_amount_back(db: Database, vault: Vault) -> None:
    paid = await factories.paid_payment(db, vault, amount_minor=100)
    refund_no = await _refund(db, paid.merchant, paid.pay_no)
    assert await _refunded_minor(db, paid.pay_no) == 100
    await refunds.start_refund(db, refund_no)
    failed = _report(
        paid,
        refund_no,
        RefundStatus.FAILED,
        failure_code="NOT_ENOUGH",
        failure_message="insufficient balance",
    )
    outcome, event_id = await refunds.apply_refund(db, failed)
    assert outcome is RefundOutcome.APPLIED and event_id is not None
    assert await _refunded_minor(db, paid.pay_no) == 0
    view = await refunds.get_refund(db, paid.merchant.merchant_id, refund_no)
    assert view["failure"] == {"code": "NOT_ENOUGH", "message": "insufficient balance"}
    assert await _events(db, refund_no) == ["refund.failed"]
    # The amount can be refunded again, by a new refund.
    await _refund(db, paid.merchant, paid.pay_no, amount_minor=100)
    assert await _refunded_minor(db, paid.pay_no) == 100


async def test_contradictions_are_recorded_not_applied(db: Database, vault: Vault) -> None:
    paid = await factories.paid_payment(db, vault)
    refund_no = await _refund(db, paid.merchant, paid.pay_no, amount_minor=50)
    await refunds.start_refund(db, refund_no)
    wrong_amount = _report(paid, refund_no, RefundStatus.SUCCEEDED, amount_minor=70)
    assert (await refunds.apply_refund(db, wrong_amount))[0] is RefundOutcome.ANOMALY
    view = await refunds.get_refund(db, paid.merchant.merchant_id, refund_no)
    assert view["status"] == "submitting"

    failed = _report(paid, refund_no, RefundStatus.FAILED, failure_code="CLOSED")
    assert (await refunds.apply_refund(db, failed))[0] is RefundOutcome.APPLIED
    # The channel later says it succeeded after all: money moved that we gave back.
    late_success = _report(
        paid, refund_no, RefundStatus.SUCCEEDED, amount_minor=50, source_id="callback-late"
    )
    assert (await refunds.apply_refund(db, late_success))[0] is RefundOutcome.ANOMALY
    view = await refunds.get_refund(db, paid.merchant.merchant_id, refund_no)
    assert view["status"] == "failed"

    stranger = _report(paid, "rfd_not_ours", RefundStatus.SUCCEEDED, amount_minor=10)
    assert (await refunds.apply_refund(db, stranger))[0] is RefundOutcome.ANOMALY
    unknown = RefundReport(
        channel_account_id=paid.account_id,
        refund_no="rfd_not_ours",
        pay_no="pay_not_ours",
        status=RefundStatus.SUCCEEDED,
        source_id="evt-x",
    )
    assert (await refunds.apply_refund(db, unknown))[0] is RefundOutcome.UNKNOWN_REFUND
    async with db.read() as conn:
        kinds = sorted(
            (
                await conn.execute(
                    sa.select(anomalies.c.kind).where(anomalies.c.pay_no == paid.pay_no)
                )
            ).scalars()
        )
    assert kinds == ["refund_mismatch", "refund_mismatch", "refund_unknown"]
    assert await _events(db, refund_no) == ["refund.failed"]
