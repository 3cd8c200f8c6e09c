"""Withdrawals: a wallet paid out to its holder through a channel's payout API.

The wallet is debited when the withdrawal is created (one conditional update: it never goes
below zero), so the money cannot also be transferred or withdrawn twice; a withdrawal that
fails at the channel credits it back, in the transaction of the move to ``failed``. Moves are
compare-and-set through ``core.states.WITHDRAWAL_TRANSITIONS``; every function here is safe
to run twice.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from core import context, ids
from core.anomalies import record_anomaly
from core.errors import Conflict, InvalidRequest, NotFound
from core.events import record_event
from core.idempotency import IdempotencyClaim, StoredAnswer, remember, stored_answer
from core.merchants import MerchantAuth
from core.outbox import mark_done
from core.states import (
    WITHDRAWAL_TERMINAL,
    IllegalTransition,
    WithdrawalEvent,
    WithdrawalStatus,
    next_withdrawal_status,
)
from core.store.cas import again_if_stale, compare_and_set
from core.store.db import Database
from core.store.tables import outbox, wallets, withdrawals
from core.views import AsRow, iso
from core.wallets import move

WITHDRAW_JOB = "withdraw"
WITHDRAW = "withdraw"
WITHDRAW_RETURN = "withdraw_return"

EVENT_FOR_STATUS = {
    WithdrawalStatus.SUCCEEDED: "withdrawal.succeeded",
    WithdrawalStatus.FAILED: "withdrawal.failed",
}


def _now() -> datetime:
    return datetime.now(UTC)


def withdrawal_object(row: Any) -> dict[str, Any]:
    failure = None
    if row.failure_code is not None:
        failure = {"code": row.failure_code, "message": row.failure_message or ""}
    return {
        "object": "withdrawal",
        "withdrawal_no": row.withdrawal_no,
        "wallet_id": row.wallet_id,
        "merchant_withdrawal_no": row.merchant_withdrawal_no,
        "status": row.status,
        "amount": row.amount_minor,
        "currency": row.currency,
        "channel": row.channel,
        "payee_id": row.payee_id,
        "payee_type": row.payee_type,
        "payee_action": row.payee_action,
        "failure": failure,
        "created_at": iso(row.created_at),
        "succeeded_at": iso(row.succeeded_at),
        "livemode": row.livemode,
    }


@dataclass(frozen=True, slots=True)
class NewWithdrawal:
    wallet_id: str
    amount_minor: int
    channel_account_id: str
    channel: str
    payee_id: str
    payee_type: str | None = None
    payee_name: str | None = None
    remark: str | None = None
    merchant_withdrawal_no: str | None = None


@dataclass(frozen=True, slots=True)
class CreatedWithdrawal:
    status: int
    body: bytes
    replayed: bool
    withdrawal_no: str


async def create_withdrawal(
    db: Database, merchant: MerchantAuth, new: NewWithdrawal, *, claim: IdempotencyClaim | None
) -> CreatedWithdrawal:
    """Debit the wallet and write the withdrawal and its outbox row in one transaction; the
    caller enqueues the withdraw job after it returns."""
    now = _now()
    try:
        async with db.begin() as conn:
            return await _write(conn, merchant, new, claim, context.current_trace_id(), now)
    except IntegrityError as exc:
        if claim is not None:
            async with db.read() as conn:
                answer = await conn.run_sync(stored_answer, merchant.merchant_id, claim)
            if answer is not None:
                return _replayed(answer)
        raise Conflict(
            f"merchant_withdrawal_no {new.merchant_withdrawal_no!r} is already used",
            code="merchant_withdrawal_no_taken",
            param="merchant_withdrawal_no",
        ) from exc


def _replayed(answer: StoredAnswer) -> CreatedWithdrawal:
    number = orjson.loads(answer.body).get("withdrawal_no", "")
    return CreatedWithdrawal(answer.status, answer.body, True, number)


async def _write(
    conn: AsyncConnection,
    merchant: MerchantAuth,
    new: NewWithdrawal,
    claim: IdempotencyClaim | None,
    trace_id: str | None,
    now: datetime,
) -> CreatedWithdrawal:
    if claim is not None:
        answer = await conn.run_sync(stored_answer, merchant.merchant_id, claim)
        if answer is not None:
            return _replayed(answer)
    wallet = (
        await conn.execute(
            sa.select(wallets).where(
                wallets.c.wallet_id == new.wallet_id, wallets.c.merchant_id == merchant.merchant_id
            )
        )
    ).first()
    if wallet is None:
        raise NotFound(f"no wallet {new.wallet_id!r}", param="wallet")
    if new.amount_minor <= 0:
        raise InvalidRequest("amount must be positive", param="amount")
    withdrawal_no = ids.new_withdrawal_no()
    await move(conn, wallet.wallet_id, WITHDRAW, withdrawal_no, -new.amount_minor, now)
    row = {
        "withdrawal_no": withdrawal_no,
        "merchant_id": merchant.merchant_id,
        "wallet_id": wallet.wallet_id,
        "channel_account_id": new.channel_account_id,
        "channel": new.channel,
        "merchant_withdrawal_no": new.merchant_withdrawal_no,
        "amount_minor": new.amount_minor,
        "currency": wallet.currency,
        "payee_id": new.payee_id,
        "payee_type": new.payee_type,
        "payee_name": new.payee_name,
        "remark": new.remark,
        "status": WithdrawalStatus.PENDING,
        "version": 0,
        "channel_payout_no": None,
        "payee_action": None,
        "failure_code": None,
        "failure_message": None,
        "livemode": merchant.livemode,
        "succeeded_at": None,
        "checked_at": None,
        "trace_id": trace_id,
        "created_at": now,
        "updated_at": now,
    }
    await conn.execute(withdrawals.insert().values(**row))
    await conn.execute(
        outbox.insert().values(
            kind=WITHDRAW_JOB, ref=withdrawal_no, status="pending", created_at=now
        )
    )
    body = orjson.dumps(withdrawal_object(AsRow(row)))
    if claim is not None:
        await conn.run_sync(remember, merchant.merchant_id, claim, StoredAnswer(201, body), now)
    return CreatedWithdrawal(201, body, False, withdrawal_no)


async def get_withdrawal(db: Database, merchant_id: str, withdrawal_no: str) -> dict[str, Any]:
    async with db.read() as conn:
        row = (
            await conn.execute(
                sa.select(withdrawals).where(
                    withdrawals.c.withdrawal_no == withdrawal_no,
                    withdrawals.c.merchant_id == merchant_id,
                )
            )
        ).first()
    if row is None:
        raise NotFound(f"no withdrawal {withdrawal_no!r}", param="withdrawal_no")
    return withdrawal_object(row)


async def load_withdrawal(db: Database, withdrawal_no: str) -> Row[Any] | None:
    async with db.read() as conn:
        return await _select(conn, withdrawal_no)


async def _select(conn: AsyncConnection, withdrawal_no: str) -> Row[Any] | None:
    return (
        await conn.execute(
            sa.select(withdrawals).where(withdrawals.c.withdrawal_no == withdrawal_no)
        )
    ).first()


class WithdrawalStart(enum.Enum):
    FRESH = "fresh"
    RESUMED = "resumed"
    NOTHING_TO_DO = "nothing_to_do"


async def start_withdrawal(
    db: Database, withdrawal_no: str
) -> tuple[WithdrawalStart, Row[Any] | None]:
    return await again_if_stale(lambda: _start(db, withdrawal_no))


async def _start(db: Database, withdrawal_no: str) -> tuple[WithdrawalStart, Row[Any] | None]:
    now = _now()
    async with db.begin() as conn:
        row = await _select(conn, withdrawal_no)
        if row is None:
            return WithdrawalStart.NOTHING_TO_DO, None
        if row.status == WithdrawalStatus.SUBMITTING:
            return WithdrawalStart.RESUMED, row
        if row.status != WithdrawalStatus.PENDING:
            await mark_done(conn, WITHDRAW_JOB, withdrawal_no, now)
            return WithdrawalStart.NOTHING_TO_DO, row
        await _transition(conn, row, WithdrawalEvent.SUBMIT, now)
        fresh = await _select(conn, withdrawal_no)
    return WithdrawalStart.FRESH, fresh


async def _transition(
    conn: AsyncConnection, row: Row[Any], event: WithdrawalEvent, now: datetime, **values: Any
) -> str | None:
    """Compare-and-set one withdrawal; a failure credits the wallet back. Returns the
    merchant event recorded, if any."""
    target = next_withdrawal_status(WithdrawalStatus(row.status), event)
    await compare_and_set(
        conn,
        withdrawals,
        withdrawals.c.withdrawal_no,
        row.withdrawal_no,
        status=row.status,
        version=row.version,
        to=target,
        now=now,
        **values,
    )
    if target is WithdrawalStatus.FAILED:
        await move(conn, row.wallet_id, WITHDRAW_RETURN, row.withdrawal_no, row.amount_minor, now)
    if target is not WithdrawalStatus.SUBMITTING:
        await mark_done(conn, WITHDRAW_JOB, row.withdrawal_no, now)
    event_type = EVENT_FOR_STATUS.get(target)
    if event_type is None:
        return None
    fresh = await _select(conn, row.withdrawal_no)
    return await record_event(
        conn,
        event_type,
        merchant_id=row.merchant_id,
        livemode=row.livemode,
        data=withdrawal_object(fresh),
        withdrawal_no=row.withdrawal_no,
        now=now,
    )


@dataclass(frozen=True, slots=True)
class PayoutReport:
    """A channel's word on one payout (its answer, a query, or a verified callback)."""

    channel_account_id: str
    withdrawal_no: str
    status: WithdrawalStatus  # PROCESSING, SUCCEEDED or FAILED
    source_id: str
    amount_minor: int | None = None
    channel_payout_no: str | None = None
    succeeded_at: datetime | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    payee_action: dict[str, str] | None = None


class PayoutOutcome(enum.StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    ANOMALY = "anomaly"  # contradicts what we hold: logged for a person, not applied
    UNKNOWN = "unknown_withdrawal"


_EVENT_FOR_REPORT = {
    WithdrawalStatus.PROCESSING: WithdrawalEvent.ACCEPTED,
    WithdrawalStatus.SUCCEEDED: WithdrawalEvent.SUCCEEDED,
    WithdrawalStatus.FAILED: WithdrawalEvent.FAILED,
}


async def apply_payout(db: Database, report: PayoutReport) -> tuple[PayoutOutcome, str | None]:
    return await again_if_stale(lambda: _apply_once(db, report))


async def _apply_once(db: Database, report: PayoutReport) -> tuple[PayoutOutcome, str | None]:
    now = _now()
    async with db.begin() as conn:
        row = (
            await conn.execute(
                sa.select(withdrawals).where(
                    withdrawals.c.withdrawal_no == report.withdrawal_no,
                    withdrawals.c.channel_account_id == report.channel_account_id,
                )
            )
        ).first()
        if row is None:
            return PayoutOutcome.UNKNOWN, None
        context.bind_trace(row.trace_id)
        current = WithdrawalStatus(row.status)
        wrong_amount = report.amount_minor is not None and report.amount_minor != row.amount_minor
        contradicts = current in WITHDRAWAL_TERMINAL and report.status not in (
            current,
            WithdrawalStatus.PROCESSING,
        )
        if wrong_amount or contradicts:
            # Not applied: recorded for a person (GET /v1/anomalies), once per source.
            problems = []
            if wrong_amount:
                problems.append(f"amount {report.amount_minor} != withdrawal {row.amount_minor}")
            if contradicts:
                problems.append(f"channel says {report.status}, withdrawal is {current}")
            await record_anomaly(
                conn,
                None,
                "payout_mismatch",
                report.source_id,
                {
                    "problems": problems,
                    "reported_status": report.status,
                    "reported_amount": report.amount_minor,
                    "channel_payout_no": report.channel_payout_no,
                },
                now,
                withdrawal_no=row.withdrawal_no,
                merchant_id=row.merchant_id,
            )
            return PayoutOutcome.ANOMALY, None
        if current is report.status or (
            current in WITHDRAWAL_TERMINAL and report.status is WithdrawalStatus.PROCESSING
        ):
            if report.payee_action and report.payee_action != row.payee_action:
                await conn.execute(
                    withdrawals.update()
                    .where(withdrawals.c.withdrawal_no == row.withdrawal_no)
                    .values(payee_action=report.payee_action)
                )
            return PayoutOutcome.DUPLICATE, None
        values: dict[str, Any] = {
            "channel_payout_no": report.channel_payout_no or row.channel_payout_no,
        }
        if report.payee_action:
            values["payee_action"] = report.payee_action
        if report.status is WithdrawalStatus.SUCCEEDED:
            values["succeeded_at"] = report.succeeded_at or now
        if report.status is WithdrawalStatus.FAILED:
            values["failure_code"] = (report.failure_code or "PAYOUT_FAILED")[:64]
            values["failure_message"] = (report.failure_message or "")[:512]
        try:
            event_id = await _transition(conn, row, _EVENT_FOR_REPORT[report.status], now, **values)
        except IllegalTransition:
            return PayoutOutcome.DUPLICATE, None
    return PayoutOutcome.APPLIED, event_id


async def mark_checked(db: Database, withdrawal_no: str) -> None:
    async with db.begin() as conn:
        await conn.execute(
            withdrawals.update()
            .where(withdrawals.c.withdrawal_no == withdrawal_no)
            .values(checked_at=_now())
        )
