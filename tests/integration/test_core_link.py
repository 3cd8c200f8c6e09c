"""Core-link separation: a flood of merchant notifications to a slow endpoint does not
delay payments, because webhooks have their own queue and worker pool."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from core.store.tables import events, webhook_deliveries, webhook_endpoints
from tests.conftest import Stack
from workers.queue import Queues, enqueue_delivery

FLOOD = 200


@pytest.fixture
def stack_overrides() -> dict[str, Any]:
    return {"notify_max_jobs": 4, "webhook_timeout_s": 5}


async def _flood_notifications(stack: Stack) -> None:
    now = datetime.now(UTC)
    async with stack.db.begin() as conn:
        endpoint_id = (await conn.execute(sa.select(webhook_endpoints.c.id))).scalar_one()
        await conn.execute(
            events.insert(),
            [
                {
                    "id": f"evt_flood_{n:04d}",
                    "merchant_id": "mch_test",
                    "type": "payment.succeeded",
                    "pay_no": None,
                    "payload": {"id": f"evt_flood_{n:04d}", "object": "event"},
                    "created_at": now,
                }
                for n in range(FLOOD)
            ],
        )
        await conn.execute(
            webhook_deliveries.insert(),
            [
                {
                    "event_id": f"evt_flood_{n:04d}",
                    "endpoint_id": endpoint_id,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(FLOOD)
            ],
        )
        ids = (await conn.execute(sa.select(webhook_deliveries.c.id))).scalars().all()
    queues = Queues.of(stack.settings)
    for delivery_id in ids:
        await enqueue_delivery(stack.redis, queues, delivery_id, 1)


async def test_a_webhook_flood_does_not_delay_payments(stack: Stack) -> None:
    stack.inbox.delay_s = 2.0  # 200 deliveries, 4 at a time: ~100 s of notification work
    await _flood_notifications(stack)
    await asyncio.sleep(0.5)  # the notify pool is now busy with slow deliveries

    started = time.monotonic()
    payment = (await stack.create_payment()).json()
    token = await stack.token(payment["token"], wait=10)
    elapsed = time.monotonic() - started
    assert token["status"] == "awaiting_payment"
    assert elapsed < 2.0, f"the core link took {elapsed:.2f}s under a notification flood"
    waiting = await stack.redis.zcard(stack.settings.notify_queue_name)
    assert waiting > FLOOD // 2, "the flood should still be queued"
