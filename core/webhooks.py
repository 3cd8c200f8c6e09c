"""Merchant webhooks: fan-out of events to endpoints, signing, the retry schedule, the log."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
import sqlalchemy as sa

from core.events import NOTIFY_JOB
from core.outbox import mark_done
from core.store.db import Database
from core.store.tables import (
    events,
    pay_orders,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
)
from core.vault import Vault

# Delay before attempt n+1 after attempt n failed: 3 days 3 hours in all, then we give up
# (the delivery stays in the log and can be replayed).
RETRY_SCHEDULE: tuple[timedelta, ...] = tuple(
    timedelta(seconds=s) for s in (60, 300, 1800, 3600, 7200, 14400, 28800, 43200, 86400, 86400)
)
SIGNATURE_HEADER = "Payfront-Signature"


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """``t=…,v1=…`` where v1 is HMAC-SHA256(secret, f"{t}.{payload}") in hex."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def _now() -> datetime:
    return datetime.now(UTC)


async def fan_out(db: Database, event_id: str) -> list[int]:
    """Create one delivery per enabled endpoint of the event's merchant (idempotent)."""
    now = _now()
    async with db.begin() as conn:
        merchant_id = (
            await conn.execute(sa.select(events.c.merchant_id).where(events.c.id == event_id))
        ).scalar()
        if merchant_id is None:
            return []
        endpoint_ids = (
            (
                await conn.execute(
                    sa.select(webhook_endpoints.c.id).where(
                        webhook_endpoints.c.merchant_id == merchant_id,
                        webhook_endpoints.c.enabled.is_(True),
                    )
                )
            )
            .scalars()
            .all()
        )
        existing = set(
            (
                await conn.execute(
                    sa.select(webhook_deliveries.c.endpoint_id).where(
                        webhook_deliveries.c.event_id == event_id
                    )
                )
            ).scalars()
        )
        for endpoint_id in endpoint_ids:
            if endpoint_id not in existing:
                await conn.execute(
                    webhook_deliveries.insert().values(
                        event_id=event_id,
                        endpoint_id=endpoint_id,
                        status="pending",
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                        updated_at=now,
                    )
                )
        await mark_done(conn, NOTIFY_JOB, event_id, now)
        delivery_ids = (
            (
                await conn.execute(
                    sa.select(webhook_deliveries.c.id).where(
                        webhook_deliveries.c.event_id == event_id,
                        webhook_deliveries.c.status == "pending",
                    )
                )
            )
            .scalars()
            .all()
        )
    return list(delivery_ids)


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    delivery_id: int
    attempt_no: int
    event_id: str
    event_type: str
    url: str
    secret: str
    payload: bytes
    trace_id: str | None


async def load_pending(db: Database, vault: Vault, delivery_id: int) -> PendingDelivery | None:
    async with db.read() as conn:
        row = (
            await conn.execute(
                sa.select(
                    webhook_deliveries.c.status,
                    webhook_deliveries.c.attempts,
                    events.c.id.label("event_id"),
                    events.c.type,
                    events.c.payload,
                    webhook_endpoints.c.id.label("endpoint_id"),
                    webhook_endpoints.c.url,
                    webhook_endpoints.c.secret_enc,
                    pay_orders.c.trace_id,
                )
                .join(events, events.c.id == webhook_deliveries.c.event_id)
                .outerjoin(pay_orders, pay_orders.c.pay_no == events.c.pay_no)
                .join(webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id)
                .where(webhook_deliveries.c.id == delivery_id)
            )
        ).first()
    if row is None or row.status != "pending":
        return None
    secret = vault.decrypt(row.secret_enc, context=f"webhook_endpoint:{row.endpoint_id}")
    return PendingDelivery(
        delivery_id=delivery_id,
        attempt_no=row.attempts + 1,
        event_id=row.event_id,
        event_type=row.type,
        url=row.url,
        secret=secret.decode(),
        payload=orjson.dumps(row.payload),
        trace_id=row.trace_id,
    )


async def record_attempt(
    db: Database,
    delivery: PendingDelivery,
    *,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
    retry_scale: float = 1.0,
) -> datetime | None:
    """Log one attempt; return when the next is due (None when done or given up)."""
    now = _now()
    succeeded = status_code is not None and 200 <= status_code < 300
    next_at: datetime | None = None
    if succeeded:
        status = "succeeded"
    elif delivery.attempt_no > len(RETRY_SCHEDULE):
        status = "failed"
    else:
        status = "pending"
        next_at = now + RETRY_SCHEDULE[delivery.attempt_no - 1] * retry_scale
    async with db.begin() as conn:
        updated = await conn.execute(
            webhook_deliveries.update()
            .where(
                webhook_deliveries.c.id == delivery.delivery_id,
                webhook_deliveries.c.status == "pending",
                webhook_deliveries.c.attempts == delivery.attempt_no - 1,
            )
            .values(
                status=status,
                attempts=delivery.attempt_no,
                next_attempt_at=next_at,
                updated_at=now,
            )
        )
        if updated.rowcount != 1:
            return None  # a concurrent run of the same attempt recorded it first
        await conn.execute(
            webhook_attempts.insert().values(
                delivery_id=delivery.delivery_id,
                attempt_no=delivery.attempt_no,
                attempted_at=now,
                status_code=status_code,
                error=error[:512] if error else None,
                duration_ms=duration_ms,
            )
        )
    return next_at
