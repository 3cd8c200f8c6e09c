"""Test mode and the shadow database (issue 6, point 5; docs/test-mode.md).

``sk_test_`` keys read and write only the shadow database and call only the sandbox; live
keys never reach the sandbox; test data never enters live tables. The stack runs workers for
both modes here, so the live side's pools (and their sweeps) run beside the test traffic.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web

from core import ids
from core.merchants import load_channel_account, save_channel_account
from core.store.db import Database
from core.store.tables import metadata
from payfront.devsetup import provision_wechat_sandbox_account
from tests.conftest import Stack, free_port


@pytest.fixture
def stack_overrides() -> dict[str, Any]:
    return {"worker_modes": "live,test"}


@pytest.fixture
async def live_db(stack: Stack) -> AsyncIterator[Database]:
    database = Database(stack.root_settings.database_url)
    yield database
    await database.dispose()


async def every_row(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order: what "touched" would change."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    async with db.read() as conn:
        for table in metadata.sorted_tables:
            result = await conn.execute(sa.select(table))
            rows[table.name] = sorted((tuple(map(repr, row)) for row in result), key=repr)
    return rows


async def live_merchant(stack: Stack, live_db: Database, *, sandbox_url: str) -> str:
    """A live merchant whose WeChat Pay account (wrongly) points at ``sandbox_url``."""
    api_key = ids.new_api_key(livemode=True)
    await provision_wechat_sandbox_account(
        live_db,
        stack.vault,
        sandbox_url=sandbox_url,
        merchant_id="mch_live",
        merchant_name="Live shop",
        api_key=api_key,
        account_id="wx_live",
    )
    return api_key


async def pay_with(stack: Stack, api_key: str) -> dict[str, Any]:
    answer = await stack.http.post(
        f"{stack.gateway_url}/v1/payments",
        json=stack.payment_body(),
        headers={"Authorization": f"Bearer {api_key}"},
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def wait_status(
    stack: Stack, api_key: str, pay_no: str, statuses: set[str]
) -> dict[str, Any]:
    async with asyncio.timeout(15):
        while True:
            answer = await stack.http.get(
                f"{stack.gateway_url}/v1/payments/{pay_no}",
                headers={"Authorization": f"Bearer {api_key}"},
            )
            assert answer.status_code == 200, answer.text
            if answer.json()["status"] in statuses:
                return dict(answer.json())
            await asyncio.sleep(0.02)


async def test_test_mode_traffic_never_touches_the_live_database(
    stack: Stack, live_db: Database
) -> None:
    before = await every_row(live_db)
    payment = await pay_with(stack, stack.api_key)
    assert payment["livemode"] is False
    assert payment["token"].startswith("tok_test_")
    assert (await stack.token(payment["token"], wait=5))["status"] == "awaiting_payment"
    assert (await stack.shopper_pays(payment["pay_no"])).status_code == 200
    await stack.wait_status(payment["pay_no"], "paid")
    refund = await stack.http.post(
        f"{stack.gateway_url}/v1/payments/{payment['pay_no']}/refunds",
        json={"amount": 40, "reason": "test"},
        headers=stack.auth(),
    )
    assert refund.status_code == 201, refund.text
    await stack.inbox.wait_for(1)
    # The shadow database holds it all...
    shadow = await every_row(stack.db)
    assert len(shadow["pay_orders"]) == 1 and len(shadow["refund_orders"]) == 1
    # ...and not one row of the live database changed (its workers ran all along).
    assert await every_row(live_db) == before


async def test_a_live_key_never_reaches_the_sandbox(stack: Stack, live_db: Database) -> None:
    api_key = await live_merchant(stack, live_db, sandbox_url=stack.sandbox_url)
    shadow_before = await every_row(stack.db)
    payment = await pay_with(stack, api_key)
    assert payment["livemode"] is True
    assert payment["token"].startswith("tok_live_")
    failed = await wait_status(stack, api_key, payment["pay_no"], {"prepay_failed"})
    assert failed["failure"]["code"] == "LIVE_MODE_TO_SANDBOX"
    # Refused before a byte was sent: the sandbox never heard of the order.
    answer = await stack.http.get(
        f"{stack.sandbox_url}/sandbox/wechatpay/orders/{payment['pay_no']}"
    )
    assert answer.status_code == 404
    # Live data stayed live: the shadow database did not change.
    assert await every_row(stack.db) == shadow_before


async def test_a_sandbox_under_another_name_is_refused_in_live_mode(
    stack: Stack, live_db: Database
) -> None:
    # Not in sandbox_urls, so the request leaves; the sandbox's answer gives it away.
    alias = stack.sandbox_url.replace("127.0.0.1", "localhost")
    api_key = await live_merchant(stack, live_db, sandbox_url=alias)
    payment = await pay_with(stack, api_key)
    failed = await wait_status(stack, api_key, payment["pay_no"], {"prepay_failed"})
    assert failed["failure"]["code"] == "LIVE_MODE_TO_SANDBOX"
    assert failed["credential"] is None


async def test_test_mode_calls_nothing_but_the_sandbox(stack: Stack) -> None:
    calls: list[str] = []

    async def channel(request: web.Request) -> web.Response:
        calls.append(request.path)
        return web.json_response({"code_url": "weixin://wxpay/bizpayurl?pr=real"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", channel)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        # A second test merchant whose account points at a "real channel".
        api_key = ids.new_api_key(livemode=False)
        await provision_wechat_sandbox_account(
            stack.db,
            stack.vault,
            sandbox_url=stack.sandbox_url,
            merchant_id="mch_other",
            merchant_name="Other shop",
            api_key=api_key,
            account_id="wx_other",
        )
        account = await load_channel_account(stack.db, stack.vault, "wx_other")
        await save_channel_account(
            stack.db,
            stack.vault,
            merchant_id="mch_other",
            account_id="wx_other",
            channel="wechatpay",
            credentials={**account.credentials, "base_url": f"http://127.0.0.1:{port}"},
        )
        payment = await pay_with(stack, api_key)
        failed = await wait_status(stack, api_key, payment["pay_no"], {"prepay_failed"})
        assert failed["failure"]["code"] == "TEST_MODE_OUTSIDE_SANDBOX"
        assert calls == []
    finally:
        await runner.cleanup()


async def test_each_mode_sees_only_its_own_objects(stack: Stack, live_db: Database) -> None:
    live_key = await live_merchant(stack, live_db, sandbox_url=stack.sandbox_url)
    test_payment = await pay_with(stack, stack.api_key)
    live_payment = await pay_with(stack, live_key)
    for key, pay_no in (
        (live_key, test_payment["pay_no"]),
        (stack.api_key, live_payment["pay_no"]),
    ):
        answer = await stack.http.get(
            f"{stack.gateway_url}/v1/payments/{pay_no}",
            headers={"Authorization": f"Bearer {key}"},
        )
        assert answer.status_code == 404, answer.text
    # A token is read from its own mode's database only: a live token renamed as a test
    # one names nothing.
    renamed = live_payment["token"].replace("tok_live_", "tok_test_", 1)
    answer = await stack.http.get(f"{stack.gateway_url}/v1/tokens/{renamed}")
    assert answer.status_code == 404
    assert (await stack.token(live_payment["token"]))["pay_no"] == live_payment["pay_no"]
    # Each account answers callbacks only on its own mode's path.
    for path in ("/callbacks/wechatpay/wx_test", "/test/callbacks/wechatpay/wx_live"):
        answer = await stack.http.post(f"{stack.gateway_url}{path}", content=b"{}")
        assert answer.status_code == 404, path
    # The live merchant's key is unknown to the shadow database, and the other way round.
    async with stack.db.read() as conn:
        assert (await conn.scalar(sa.text("SELECT count(*) FROM merchants"))) == 1
    async with live_db.read() as conn:
        ids_live = (await conn.execute(sa.text("SELECT id FROM merchants"))).scalars().all()
    assert ids_live == ["mch_live"]
