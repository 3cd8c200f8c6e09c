"""What merchants can see and do about their webhooks after the fact: an event with every
delivery and attempt made, and a manual re-send (after fixing an endpoint, say)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from core.errors import NotFound
from core.idempotency import IdempotencyClaim, StoredAnswer, remember, stored_answer
from core.store.db import Database
from core.store.tables import events, webhook_attempts, webhook_deliveries, webhook_endpoints
from core.views import iso


async def event_with_deliveries(db: Database, merchant_id: str, event_id: str) -> dict[str, Any]:
    """The event as sent, with ``deliveries``: per endpoint, its status and attempt log."""
    async with db.read() as conn:
        return await _view(conn, merchant_id, event_id)


async def _view(conn: AsyncConnection, merchant_id: str, event_id: str) -> dict[str, Any]:
    payload = (
        await conn.execute(
            sa.select(events.c.payload).where(
                events.c.id == event_id, events.c.merchant_id == merchant_id
            )
        )
    ).scalar()
    if payload is None:
        raise NotFound(f"no event {event_id!r}", param="event_id")
    deliveries = (
        await conn.execute(
            sa.select(webhook_deliveries, webhook_endpoints.c.url)
            .join(webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id)
            .where(webhook_deliveries.c.event_id == event_id)
            .order_by(webhook_deliveries.c.id)
        )
    ).all()
    attempts = (
        await conn.execute(
            sa.select(webhook_attempts)
            .where(webhook_attempts.c.delivery_id.in_([row.id for row in deliveries]))
            .order_by(webhook_attempts.c.delivery_id, webhook_attempts.c.attempt_no)
        )
    ).all()
    # Two statements, two snapshots on PostgreSQL: show only attempts the delivery row read
    # already counts, so the log and the status agree.
    counted = {row.id: row.attempts for row in deliveries}
    log: dict[int, list[dict[str, Any]]] = {}
    for attempt in attempts:
        if attempt.attempt_no > counted[attempt.delivery_id]:
            continue
        log.setdefault(attempt.delivery_id, []).append(
            {
                "attempt_no": attempt.attempt_no,
                "attempted_at": iso(attempt.attempted_at),
                "status_code": attempt.status_code,
                "error": attempt.error,
                "duration_ms": attempt.duration_ms,
            }
        )
    return {
        **payload,
        "deliveries": [
            {
                "endpoint_id": row.endpoint_id,
                "url": row.url,
                "status": row.status,
                "attempts": row.attempts,
                "next_attempt_at": iso(row.next_attempt_at),
                "attempt_log": log.get(row.id, []),
            }
            for row in deliveries
        ],
    }


async def resend(
    db: Database, merchant_id: str, event_id: str, claim: IdempotencyClaim | None = None
) -> tuple[list[tuple[int, int]], bytes, bool]:
    """Make the event due again at each endpoint whose delivery finished (delivered or given
    up), and create deliveries for endpoints added since; a delivery still being retried keeps
    its schedule. Returns (delivery id, attempt number due now) to enqueue, the answer (the
    event with its deliveries) and whether it is a replay of an Idempotency-Key's first."""
    now = datetime.now(UTC)
    async with db.begin() as conn:
        if claim is not None:
            answer = await conn.run_sync(stored_answer, merchant_id, claim)
            if answer is not None:
                return [], answer.body, True
        exists = (
            await conn.execute(
                sa.select(events.c.id).where(
                    events.c.id == event_id, events.c.merchant_id == merchant_id
                )
            )
        ).first()
        if exists is None:
            raise NotFound(f"no event {event_id!r}", param="event_id")
        endpoints = (
            await conn.execute(
                sa.select(webhook_endpoints.c.id).where(
                    webhook_endpoints.c.merchant_id == merchant_id,
                    webhook_endpoints.c.enabled.is_(True),
                )
            )
        ).scalars()
        rows = {
            row.endpoint_id: row
            for row in await conn.execute(
                sa.select(webhook_deliveries).where(webhook_deliveries.c.event_id == event_id)
            )
        }
        due: list[tuple[int, int]] = []
        for endpoint_id in list(endpoints):
            row = rows.get(endpoint_id)
            if row is None:
                created = await conn.execute(
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
                assert created.inserted_primary_key is not None
                due.append((int(created.inserted_primary_key[0]), 1))
                continue
            reopened = await conn.execute(
                webhook_deliveries.update()
                .where(
                    webhook_deliveries.c.id == row.id,
                    webhook_deliveries.c.status.in_(("succeeded", "failed")),
                )
                .values(status="pending", next_attempt_at=now, updated_at=now)
            )
            if reopened.rowcount == 1:
                due.append((row.id, row.attempts + 1))
        body = orjson.dumps(await _view(conn, merchant_id, event_id))
        if claim is not None:
            await conn.run_sync(remember, merchant_id, claim, StoredAnswer(202, body), now)
    return due, body, False
