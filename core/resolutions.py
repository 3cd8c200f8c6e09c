"""Decisions people make for what automation cannot settle, each kept with who, why and the
evidence: an anomaly resolved, a payment whose channel answer was lost settled by hand.

The ``resolutions`` table is the audit trail: rows are only ever added, in the same
transaction as the change they explain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from core.errors import Conflict, NotFound
from core.idempotency import IdempotencyClaim, StoredAnswer, remember, stored_answer
from core.merchants import MerchantAuth
from core.store.db import Database
from core.store.tables import anomalies, resolutions
from core.views import iso

# What a person may record about an anomaly. None of these moves money by itself: a refund
# is made through the refund API, and recorded here as "refunded".
ANOMALY_ACTIONS = frozenset({"accepted", "refunded", "corrected_at_channel", "dismissed"})


@dataclass(frozen=True, slots=True)
class Decision:
    """Who decided what, why, on what evidence (from the resolution request)."""

    action: str
    actor: str
    reason: str
    evidence: dict[str, str] = field(default_factory=dict)


def _now() -> datetime:
    return datetime.now(UTC)


async def record(
    conn: AsyncConnection,
    merchant: MerchantAuth,
    subject_type: str,
    subject_id: str,
    decision: Decision,
    now: datetime,
) -> None:
    await conn.execute(
        resolutions.insert().values(
            merchant_id=merchant.merchant_id,
            subject_type=subject_type,
            subject_id=subject_id,
            action=decision.action,
            actor=decision.actor,
            api_key_prefix=merchant.key_prefix or "",
            reason=decision.reason,
            evidence=decision.evidence,
            created_at=now,
        )
    )


async def trail(conn: AsyncConnection, subject_type: str, subject_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        sa.select(resolutions)
        .where(resolutions.c.subject_type == subject_type, resolutions.c.subject_id == subject_id)
        .order_by(resolutions.c.id)
    )
    return [
        {
            "action": row.action,
            "actor": row.actor,
            "api_key_prefix": row.api_key_prefix,
            "reason": row.reason,
            "evidence": row.evidence,
            "created_at": iso(row.created_at),
        }
        for row in rows
    ]


def _anomaly_object(row: Any, history: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "object": "anomaly",
        "id": str(row.id),
        "pay_no": row.pay_no,
        "withdrawal_no": row.withdrawal_no,
        "kind": row.kind,
        "source_id": row.source_id,
        "detail": row.detail,
        "status": row.status,
        "created_at": iso(row.created_at),
        "resolved_at": iso(row.resolved_at),
        "resolutions": history,
    }


def _scoped(merchant_id: str) -> sa.Select[Any]:
    return sa.select(anomalies).where(anomalies.c.merchant_id == merchant_id)


def _anomaly_id(value: str) -> int:
    if not value.isdigit() or len(value) > 18:
        raise NotFound(f"no anomaly {value!r}", param="anomaly_id")
    return int(value)


async def list_anomalies(
    db: Database,
    merchant_id: str,
    *,
    status: str | None = None,
    pay_no: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The merchant's anomalies, newest first, with their resolution trails."""
    query = _scoped(merchant_id)
    if status is not None:
        query = query.where(anomalies.c.status == status)
    if pay_no is not None:
        query = query.where(anomalies.c.pay_no == pay_no)
    async with db.read() as conn:
        rows = (await conn.execute(query.order_by(anomalies.c.id.desc()).limit(limit))).all()
        return [_anomaly_object(row, await trail(conn, "anomaly", str(row.id))) for row in rows]


async def get_anomaly(db: Database, merchant_id: str, anomaly_id: str) -> dict[str, Any]:
    async with db.read() as conn:
        row = (
            await conn.execute(
                _scoped(merchant_id).where(anomalies.c.id == _anomaly_id(anomaly_id))
            )
        ).first()
        if row is None:
            raise NotFound(f"no anomaly {anomaly_id!r}", param="anomaly_id")
        return _anomaly_object(row, await trail(conn, "anomaly", str(row.id)))


async def resolve_anomaly(
    db: Database,
    merchant: MerchantAuth,
    anomaly_id: str,
    decision: Decision,
    claim: IdempotencyClaim | None = None,
) -> tuple[bytes, bool]:
    """Close an open anomaly with the decision recorded; resolving twice is a conflict (the
    same request under the same Idempotency-Key replays the first answer). Returns the
    anomaly's JSON and whether it is a replay."""
    number = _anomaly_id(anomaly_id)
    now = _now()
    async with db.begin() as conn:
        if claim is not None:
            answer = await conn.run_sync(stored_answer, merchant.merchant_id, claim)
            if answer is not None:
                return answer.body, True
        scoped = _scoped(merchant.merchant_id).where(anomalies.c.id == number)
        row = (await conn.execute(scoped)).first()
        if row is None:
            raise NotFound(f"no anomaly {anomaly_id!r}", param="anomaly_id")
        closed = await conn.execute(
            anomalies.update()
            .where(anomalies.c.id == number, anomalies.c.status == "open")
            .values(status="resolved", resolved_at=now)
        )
        if closed.rowcount != 1:
            raise Conflict(
                f"anomaly {anomaly_id} is resolved already",
                code="anomaly_already_resolved",
                param="anomaly_id",
            )
        await record(conn, merchant, "anomaly", str(number), decision, now)
        fresh = (await conn.execute(scoped)).one()
        body = orjson.dumps(_anomaly_object(fresh, await trail(conn, "anomaly", str(number))))
        if claim is not None:
            await conn.run_sync(remember, merchant.merchant_id, claim, StoredAnswer(200, body), now)
    return body, False
