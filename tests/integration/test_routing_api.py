"""Routing rules through the merchant API: set, read, and payments without a channel routed
by currency, amount and kind; naming a channel works as before."""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.merchants import create_merchant
from core.settings import Settings
from core.store.db import Database
from core.store.tables import channel_accounts
from payfront.cli import cmd_routing_rules
from payfront.devsetup_alipay import provision_alipay_sandbox_account
from sdk import AsyncPayfrontClient
from tests.conftest import Stack

RULES = [
    {
        "priority": 10,
        "channel_account_id": "wx_test",
        "method": "native",
        "currency": "CNY",
        "max_amount": 10_000,
    },
    {"priority": 20, "channel_account_id": "ali_test", "method": "qr", "currency": "CNY"},
    {"priority": 30, "channel_account_id": "ali_test", "method": "page"},
]


@pytest.fixture
async def routed(stack: Stack) -> Stack:
    await provision_alipay_sandbox_account(
        stack.db,
        stack.vault,
        sandbox_url=stack.sandbox_url,
        merchant_id="mch_test",
        account_id="ali_test",
    )
    answer = await put_rules(stack, RULES)
    assert answer.status_code == 200, answer.text
    return stack


async def put_rules(stack: Stack, rules: list[dict[str, Any]]) -> httpx.Response:
    return await stack.http.put(
        f"{stack.gateway_url}/v1/routing_rules", json={"rules": rules}, headers=stack.auth()
    )


async def create_routed(stack: Stack, **fields: Any) -> httpx.Response:
    body = stack.payment_body(**fields)
    del body["channel"]
    if "method" not in fields:
        del body["method"]
    url = f"{stack.gateway_url}/v1/payments"
    return await stack.http.post(url, json=body, headers=stack.auth())


async def test_rules_are_stored_and_read_back(routed: Stack) -> None:
    read = await routed.http.get(f"{routed.gateway_url}/v1/routing_rules", headers=routed.auth())
    assert read.status_code == 200
    table = read.json()
    assert table["object"] == "routing_rules"
    assert [(r["priority"], r["channel"], r["method"], r["kind"]) for r in table["rules"]] == [
        (10, "wechatpay", "native", "qr"),
        (20, "alipay", "qr", "qr"),
        (30, "alipay", "page", "redirect"),
    ]
    assert table["rules"][0]["max_amount"] == 10_000 and table["rules"][2]["currency"] is None
    cleared = await put_rules(routed, [])
    assert cleared.json()["rules"] == []


@pytest.mark.parametrize(
    ("rule", "code", "param"),
    [
        (
            {"priority": 1, "channel_account_id": "someone_elses", "method": "native"},
            "channel_not_configured",
            "rules.0.channel_account_id",
        ),
        (
            {"priority": 1, "channel_account_id": "wx_test", "method": "qr"},
            "method_not_supported",
            "rules.0.method",
        ),
        (
            {"priority": 1, "channel_account_id": "wx_test", "method": "native", "currency": "USD"},
            "currency_not_supported",
            "rules.0.currency",
        ),
        (
            {"priority": 1, "channel_account_id": "wx_test", "method": "native", "extra": 1},
            "parameter_invalid",
            "rules.0.extra",
        ),
    ],
)
async def test_rules_that_cannot_route_are_refused_and_change_nothing(
    routed: Stack, rule: dict[str, Any], code: str, param: str
) -> None:
    answer = await put_rules(routed, [rule])
    assert answer.status_code == 400, answer.text
    assert (answer.json()["error"]["code"], answer.json()["error"]["param"]) == (code, param)
    read = await routed.http.get(f"{routed.gateway_url}/v1/routing_rules", headers=routed.auth())
    assert len(read.json()["rules"]) == 3


async def test_payments_without_a_channel_are_routed(routed: Stack) -> None:
    cases = [
        ({"amount": 100}, "wechatpay", "native", "wechatpay_native"),
        ({"amount": 20_000}, "alipay", "qr", "alipay_qr"),
        ({"amount": 100, "method": "redirect"}, "alipay", "page", "alipay_page"),
    ]
    for fields, channel, method, credential in cases:
        created = await create_routed(routed, **fields)
        assert created.status_code == 201, created.text
        payment = created.json()
        assert (payment["channel"], payment["method"]) == (channel, method)
        token = await routed.token(payment["token"], wait=5)
        assert token["status"] == "awaiting_payment", token
        assert token["credential"]["type"] == credential


async def test_unroutable_payments_are_refused_before_anything_is_written(routed: Stack) -> None:
    for fields, status, code in [
        ({"method": "card"}, 400, "no_route"),
        ({"currency": "USD"}, 400, "no_route"),
        ({"method": "banana"}, 400, "method_not_supported"),
    ]:
        answer = await create_routed(routed, **fields)
        assert answer.status_code == status, answer.text
        assert answer.json()["error"]["code"] == code
    body = routed.payment_body()
    del body["method"]
    no_method = await routed.http.post(
        f"{routed.gateway_url}/v1/payments", json=body, headers=routed.auth()
    )
    assert no_method.status_code == 400
    assert no_method.json()["error"]["param"] == "method"


async def test_naming_a_channel_works_as_before_and_one_field_switches_it(routed: Stack) -> None:
    wechat = await routed.create_payment(amount=20_000)
    assert wechat.status_code == 201
    assert (wechat.json()["channel"], wechat.json()["method"]) == ("wechatpay", "native")
    alipay = await routed.create_payment(amount=20_000, channel="alipay", method="qr")
    assert alipay.status_code == 201
    assert alipay.json()["channel"] == "alipay"


async def test_the_sdk_routes_when_channel_is_none(routed: Stack) -> None:
    async with AsyncPayfrontClient(routed.api_key, base_url=routed.gateway_url) as client:
        routed_payment = await client.create_payment(
            amount=100,
            currency="CNY",
            merchant_order_no="sdk-routed-1",
            description="tea",
            channel=None,
            method="redirect",
        )
        named = await client.create_payment(
            amount=100, currency="CNY", merchant_order_no="sdk-named-1", description="tea"
        )
    assert (routed_payment.channel, routed_payment.method) == ("alipay", "page")
    assert (named.channel, named.method) == ("wechatpay", "native")


async def _cli_merchant(url: str) -> None:
    db = Database(url)
    try:
        await create_merchant(db, "CLI shop", merchant_id="mch_cli")
        async with db.begin() as conn:
            await conn.execute(
                channel_accounts.insert().values(
                    id="wx_cli",
                    merchant_id="mch_cli",
                    channel="wechatpay",
                    credentials_enc="unused",
                    enabled=True,
                    created_at=datetime.now(UTC),
                )
            )
    finally:
        await db.dispose()


def test_the_cli_sets_and_prints_rules(
    sqlite_template: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cli.db"
    shutil.copy(sqlite_template, path)
    settings = Settings(database_url=f"sqlite+aiosqlite:///{path}")
    asyncio.run(_cli_merchant(settings.database_url))
    rules_file = tmp_path / "rules.json"
    rules_file.write_text(
        json.dumps({"rules": [{"priority": 1, "channel_account_id": "wx_cli", "method": "native"}]})
    )
    cmd_routing_rules(settings, "mch_cli", str(rules_file))
    cmd_routing_rules(settings, "mch_cli", None)
    printed = capsys.readouterr().out
    assert printed.count('"channel_account_id": "wx_cli"') == 2
    rules_file.write_text(json.dumps({"rules": [{"priority": 1, "channel_account_id": "x"}]}))
    with pytest.raises(SystemExit):
        cmd_routing_rules(settings, "mch_cli", str(rules_file))
    assert "parameter_invalid" in capsys.readouterr().err
