"""The review list: differences a daily reconciliation recorded (``daily``, ids ``dif_…``) and
those found at once when a callback or a query did not match its order (``realtime``, ids
``anm_…``: the anomalies of core.receipts and core.refunds), shown and resolved as one list,
scoped by merchant. Decisions go to the ``resolutions`` trail (who, why, evidence), as for
anomalies; a realtime difference is its anomaly, with one trail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from core.errors import Conflict, InvalidRequest, NotFound
from core.idempotency import IdempotencyClaim, StoredAnswer, remember, stored_answer
from core.merchants import MerchantAuth
from core.reconcile.differences import STATUSES
from core.resolutions import Decision, record, resolve_anomaly, trail
from core.store.db import Database
from core.store.tables import anomalies, pay_orders, reconciliation_differences, withdrawals
from core.views import iso

DAILY, REALTIME = "daily", "realtime"
DAILY_PREFIX, REALTIME_PREFIX = "dif_", "anm_"
SUBJECT = "difference"
_T = reconciliation_differences


@dataclass(frozen=True, slots=True)
class ReviewFilter:
    status: str | None = None
    source: str | None = None
    kind: str | None = None
    business_date: date | None = None
    channel_account_id: str | None = None
    limit: int = 100


def _anomaly_account() -> sa.ColumnElement[Any]:
    return sa.func.coalesce(pay_orders.c.channel_account_id, withdrawals.c.channel_account_id)


def _daily_keys(merchant_id: str, wanted: ReviewFilter) -> sa.Select[Any]:
    query = sa.select(
        sa.literal(DAILY).label("source"), _T.c.id.label("id"), _T.c.created_at.label("created_at")
    ).where(_T.c.merchant_id == merchant_id)
    if wanted.status is not None:
        query = query.where(_T.c.status == wanted.status)
    if wanted.kind is not None:
        query = query.where(_T.c.kind == wanted.kind)
    if wanted.business_date is not None:
        query = query.where(_T.c.business_date == wanted.business_date)
    if wanted.channel_account_id is not None:
        query = query.where(_T.c.channel_account_id == wanted.channel_account_id)
    return query


def _realtime_keys(merchant_id: str, wanted: ReviewFilter) -> sa.Select[Any] | None:
    if wanted.business_date is not None or wanted.status in ("fixed", "cleared"):
        return None  # anomalies have no statement day, and are only open or resolved
    query = (
        sa.select(
            sa.literal(REALTIME).label("source"),
            anomalies.c.id.label("id"),
            anomalies.c.created_at.label("created_at"),
        )
        .select_from(
            anomalies.outerjoin(pay_orders, pay_orders.c.pay_no == anomalies.c.pay_no).outerjoin(
                withdrawals, withdrawals.c.withdrawal_no == anomalies.c.withdrawal_no
            )
        )
        .where(anomalies.c.merchant_id == merchant_id)
    )
    if wanted.status is not None:
        query = query.where(anomalies.c.status == wanted.status)
    if wanted.kind is not None:
        query = query.where(anomalies.c.kind == wanted.kind)
    if wanted.channel_account_id is not None:
        query = query.where(_anomaly_account() == wanted.channel_account_id)
    return query


async def list_differences(
    db: Database, merchant_id: str, wanted: ReviewFilter
) -> list[dict[str, Any]]:
    """Both sources, newest first, each with its resolution trail."""
    parts = []
    if wanted.source in (None, DAILY):
        parts.append(_daily_keys(merchant_id, wanted))
    if wanted.source in (None, REALTIME):
        realtime = _realtime_keys(merchant_id, wanted)
        if realtime is not None:
            parts.append(realtime)
    if not parts:
        return []
    keys = parts[0].subquery() if len(parts) == 1 else sa.union_all(*parts).subquery()
    async with db.read() as conn:
        picked = (
            await conn.execute(
                sa.select(keys.c.source, keys.c.id)
                .order_by(keys.c.created_at.desc(), keys.c.id.desc())
                .limit(wanted.limit)
            )
        ).all()
        daily_ids = [row.id for row in picked if row.source == DAILY]
        realtime_ids = [row.id for row in picked if row.source == REALTIME]
        daily = {
            row.id: row for row in await conn.execute(sa.select(_T).where(_T.c.id.in_(daily_ids)))
        }
        anomaly_rows = {
            row.id: row
            for row in await conn.execute(_realtime_rows().where(anomalies.c.id.in_(realtime_ids)))
        }
        found = []
        for row in picked:
            if row.source == DAILY:
                found.append(await _daily_object(conn, daily[row.id]))
            else:
                found.append(await _realtime_object(conn, anomaly_rows[row.id]))
        return found


def _realtime_rows() -> sa.Select[Any]:
    """Anomalies with what they are about, as it stands now (the pay order or withdrawal)."""

    def either(name: str) -> sa.ColumnElement[Any]:
        return sa.func.coalesce(pay_orders.c[name], withdrawals.c[name]).label(name)

    return sa.select(
        anomalies,
        _anomaly_account().label("channel_account_id"),
        either("channel"),
        either("currency"),
        either("amount_minor"),
        sa.func.coalesce(pay_orders.c.status, withdrawals.c.status).label("order_status"),
    ).select_from(
        anomalies.outerjoin(pay_orders, pay_orders.c.pay_no == anomalies.c.pay_no).outerjoin(
            withdrawals, withdrawals.c.withdrawal_no == anomalies.c.withdrawal_no
        )
    )


async def _daily_object(conn: AsyncConnection, row: Any) -> dict[str, Any]:
    public_id = f"{DAILY_PREFIX}{row.id}"
    return {
        "object": "reconciliation_difference",
        "id": public_id,
        "source": DAILY,
        "kind": row.kind,
        "status": row.status,
        "channel_account": row.channel_account_id,
        "channel": row.channel,
        "date": row.business_date.isoformat(),
        "subject": row.object,
        "reference": row.reference,
        "pay_no": row.pay_no,
        "refund_no": row.refund_no,
        "withdrawal_no": None,
        "currency": row.currency,
        "payfront": {
            "amount": row.payfront_amount_minor,
            "status": row.payfront_status,
            "fee": row.expected_fee_minor,
        },
        "channel_says": {
            "amount": row.channel_amount_minor,
            "status": row.channel_status,
            "fee": row.channel_fee_minor,
        },
        "detail": row.detail,
        "fix": row.fix,
        "anomaly_id": None,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "resolved_at": iso(row.resolved_at),
        "resolutions": await trail(conn, SUBJECT, public_id),
    }


async def _realtime_object(conn: AsyncConnection, row: Any) -> dict[str, Any]:
    detail = row.detail if isinstance(row.detail, dict) else {}
    refund_no = detail.get("refund_no")
    subject = "payout" if row.withdrawal_no else ("refund" if refund_no else "payment")
    # payfront's side is the payment or withdrawal as it stands (a refund's is in detail).
    ours = None if subject == "refund" else row
    return {
        "object": "reconciliation_difference",
        "id": f"{REALTIME_PREFIX}{row.id}",
        "source": REALTIME,
        "kind": row.kind,
        "status": row.status,
        "channel_account": row.channel_account_id,
        "channel": row.channel,
        "date": None,
        "subject": subject,
        "reference": row.withdrawal_no or refund_no or row.pay_no or row.source_id,
        "pay_no": row.pay_no,
        "refund_no": refund_no if isinstance(refund_no, str) else None,
        "withdrawal_no": row.withdrawal_no,
        "currency": row.currency,
        "payfront": None
        if ours is None
        else {"amount": ours.amount_minor, "status": ours.order_status, "fee": None},
        "channel_says": {
            "amount": detail.get("reported_amount"),
            "status": detail.get("reported_status"),
            "fee": None,
        },
        "detail": {"source_id": row.source_id, **detail},
        "fix": None,
        "anomaly_id": str(row.id),
        "created_at": iso(row.created_at),
        "updated_at": iso(row.resolved_at or row.created_at),
        "resolved_at": iso(row.resolved_at),
        # Resolved through either API, an anomaly keeps one trail.
        "resolutions": await trail(conn, "anomaly", str(row.id)),
    }


def parse_id(value: str) -> tuple[str, int]:
    for source, prefix in ((DAILY, DAILY_PREFIX), (REALTIME, REALTIME_PREFIX)):
        number = value.removeprefix(prefix)
        if value.startswith(prefix) and number.isdigit() and len(number) <= 18:
            return source, int(number)
    raise NotFound(f"no difference {value!r}", param="difference_id")


async def get_difference(db: Database, merchant_id: str, difference_id: str) -> dict[str, Any]:
    source, number = parse_id(difference_id)
    async with db.read() as conn:
        if source == DAILY:
            row = (
                await conn.execute(
                    sa.select(_T).where(_T.c.id == number, _T.c.merchant_id == merchant_id)
                )
            ).first()
            if row is not None:
                return await _daily_object(conn, row)
        else:
            row = (
                await conn.execute(
                    _realtime_rows().where(
                        anomalies.c.id == number, anomalies.c.merchant_id == merchant_id
                    )
                )
            ).first()
            if row is not None:
                return await _realtime_object(conn, row)
    raise NotFound(f"no difference {difference_id!r}", param="difference_id")


async def resolve_difference(
    db: Database,
    merchant: MerchantAuth,
    difference_id: str,
    decision: Decision,
    claim: IdempotencyClaim | None = None,
) -> tuple[bytes, bool]:
    """Close an open difference with the decision in the trail; a realtime one is its anomaly,
    resolved as the anomaly API would. Resolving twice is a conflict (the same request under
    the same Idempotency-Key replays the first answer). Returns the JSON and whether replayed."""
    source, number = parse_id(difference_id)
    if source == REALTIME:
        _, replayed = await resolve_anomaly(db, merchant, str(number), decision, claim)
        body = orjson.dumps(await get_difference(db, merchant.merchant_id, difference_id))
        return body, replayed
    now = datetime.now(UTC)
    async with db.begin() as conn:
        if claim is not None:
            answer = await conn.run_sync(stored_answer, merchant.merchant_id, claim)
            if answer is not None:
                return answer.body, True
        scoped = sa.select(_T).where(_T.c.id == number, _T.c.merchant_id == merchant.merchant_id)
        row = (await conn.execute(scoped)).first()
        if row is None:
            raise NotFound(f"no difference {difference_id!r}", param="difference_id")
        closed = await conn.execute(
            _T.update()
            .where(_T.c.id == number, _T.c.status == "open")
            .values(status="resolved", resolved_at=now, updated_at=now)
        )
        if closed.rowcount != 1:
            raise Conflict(
                f"difference {difference_id} is {row.status}, not open",
                code="difference_not_open",
                param="difference_id",
            )
        await record(conn, merchant, SUBJECT, difference_id, decision, now)
        body = orjson.dumps(await _daily_object(conn, (await conn.execute(scoped)).one()))
        if claim is not None:
            await conn.run_sync(remember, merchant.merchant_id, claim, StoredAnswer(200, body), now)
    return body, False


def check_filter(status: str | None, source: str | None, kind: str | None, limit: int) -> None:
    if status is not None and status not in STATUSES:
        raise InvalidRequest("status must be one of " + ", ".join(sorted(STATUSES)), param="status")
    if source is not None and source not in (DAILY, REALTIME):
        raise InvalidRequest("source must be 'daily' or 'realtime'", param="source")
    if kind is not None and not (1 <= len(kind) <= 40):
        raise InvalidRequest("kind must be 1 to 40 characters", param="kind")
    if not 1 <= limit <= 100:
        raise InvalidRequest("limit must be between 1 and 100", param="limit")
