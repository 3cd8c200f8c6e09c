"""Per-merchant rate limit: over the limit → 429 with Retry-After, nothing written; the
next second the merchant is served again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from core.store.tables import pay_orders
from tests.conftest import Stack

LIMIT = 5


@pytest.fixture
def stack_overrides() -> dict[str, Any]:
    return {"rate_limit_per_s": LIMIT}


async def test_over_the_limit_is_refused_and_writes_nothing(stack: Stack) -> None:
    await asyncio.sleep(1.1)  # the fixture's own requests do not count against this second
    answers = await asyncio.gather(*(stack.create_payment() for _ in range(3 * LIMIT)))
    created = [a for a in answers if a.status_code == 201]
    limited = [a for a in answers if a.status_code == 429]
    assert len(created) + len(limited) == 3 * LIMIT
    # A burst may straddle two one-second windows: at most two windows' worth get through.
    assert LIMIT <= len(created) <= 2 * LIMIT
    for answer in limited:
        error = answer.json()["error"]
        assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limited")
        assert answer.headers["Retry-After"] == "1"
    async with stack.db.read() as conn:
        count = (await conn.execute(sa.select(sa.func.count()).select_from(pay_orders))).scalar()
    assert count == len(created)

    await asyncio.sleep(1.1)
    again = await stack.create_payment()
    assert again.status_code == 201


async def test_merchants_have_separate_limits(stack: Stack) -> None:
    from core.merchants import create_api_key, create_merchant

    other = await create_merchant(stack.db, "Other shop")
    other_key = await create_api_key(stack.db, other)
    await asyncio.sleep(1.1)
    mine = await asyncio.gather(*(stack.create_payment() for _ in range(2 * LIMIT)))
    assert any(a.status_code == 429 for a in mine)
    theirs = await stack.http.get(
        f"{stack.gateway_url}/v1/payments/pay_none",
        headers={"Authorization": f"Bearer {other_key}"},
    )
    assert theirs.status_code == 404  # served (not found), not rate limited
