"""Merchant transfers (payouts) against the WeChat Pay sandbox, from both sides: the unmodified
``wechatpayv3`` client (its ``mch_transfer_bills`` and query, which verify every answer's
signature, and its callback code), and payfront's own adapter over HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from wechatpayv3 import WeChatPay as V3Client

from channels.base import CreatePayout, PayoutState
from channels.errors import ChannelFatal, ChannelOrderNotFound, ChannelRetryable
from channels.wechatpay import WechatPay
from channels.wechatpay_payouts import PayoutSettings
from tests.interop.harness import BackgroundSandbox, running_sandbox
from tests.interop.test_wechatpayv3_refunds import adapter_for, send
from tests.interop.test_wechatpayv3_sandbox import Merchant, client_for, new_merchant, register

REPORT_INFOS = [
    {"info_type": "活动名称", "info_content": "钱包提现"},
    {"info_type": "奖励说明", "info_content": "余额提现到零钱"},
]
OPENID = "o-MYE42l80oelYMDE34nYD456Xoy"


@pytest.fixture(scope="module")
def background_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundSandbox]:
    with running_sandbox(
        tmp_path_factory.mktemp("wechat-payouts"),
        route="/callbacks/wechatpay/{name}",
        answer=lambda: web.Response(status=204),
        seed=7,
    ) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def merchant(background_sandbox: BackgroundSandbox) -> tuple[Merchant, dict[str, Any]]:
    merchant = new_merchant("1900000777")
    return merchant, register(background_sandbox, merchant)


def fund(sandbox: BackgroundSandbox, mchid: str, available: int) -> None:
    answer = sandbox.admin("PUT", f"/sandbox/wechatpay/balance/{mchid}", {"available": available})
    assert answer.status_code == 200, answer.text


def now() -> datetime:
    return datetime.now(UTC)


def test_library_transfers_and_queries(
    background_sandbox: BackgroundSandbox, merchant: tuple[Merchant, dict[str, Any]]
) -> None:
    credentials, registration = merchant
    wxpay: V3Client = client_for(
        background_sandbox,
        credentials,
        public_key=registration["platform_public_key_pem"],
        public_key_id=registration["platform_public_key_id"],
    )
    notify_url = background_sandbox.notify_url + "/library"
    fund(background_sandbox, credentials.mchid, 100_000)

    code, message = wxpay.mch_transfer_bills(
        out_bill_no="LIB0001",
        transfer_scene_id="1000",
        openid=OPENID,
        transfer_amount=300,
        transfer_remark="钱包提现",
        user_name="张三",  # encrypted by the library with the platform public key
        transfer_scene_report_infos=REPORT_INFOS,
        notify_url=notify_url,
    )
    assert code == 200, message  # the library verified the answer's signature
    bill = json.loads(message)
    assert bill["state"] == "WAIT_USER_CONFIRM" and bill["package_info"]

    confirmed = background_sandbox.admin(
        "POST", "/sandbox/wechatpay/transfers/LIB0001/confirm", {"mchid": credentials.mchid}
    )
    assert confirmed.status_code == 200, confirmed.text
    delivery = background_sandbox.inbox("library").get(timeout=5)
    notification = wxpay.callback(delivery.headers, delivery.body)
    assert notification is not None and notification["event_type"] == "MCHTRANSFER.BILL.FINISHED"
    assert notification["resource"]["state"] == "SUCCESS"
    tampered = delivery.body.replace(b"FINISHED", b"FINISHEd")
    assert wxpay.callback(delivery.headers, tampered) is None

    code, message = wxpay.mch_transfer_bills_query(out_bill_no="LIB0001")
    assert code == 200, message
    assert json.loads(message)["state"] == "SUCCESS"
    code, message = wxpay.mch_transfer_bills_query(out_bill_no="LIB9999")
    assert code == 404 and json.loads(message)["code"] == "NOT_FOUND"


def test_adapter_pays_out_against_the_sandbox(
    background_sandbox: BackgroundSandbox, merchant: tuple[Merchant, dict[str, Any]]
) -> None:
    credentials, registration = merchant
    plain = adapter_for(background_sandbox, credentials, registration)
    settings = PayoutSettings(
        "1000", tuple((i["info_type"], i["info_content"]) for i in REPORT_INFOS)
    )
    channel = WechatPay(plain.config, payout_settings=settings)
    notify_url = background_sandbox.notify_url + "/adapter"
    fund(background_sandbox, credentials.mchid, 1_000)

    def payout(number: str, amount: int) -> CreatePayout:
        return CreatePayout(
            out_payout_no=number,
            amount_minor=amount,
            currency="CNY",
            payee_id=OPENID,
            payee_name="李四",
            remark="钱包提现",
            notify_url=notify_url,
        )

    first = payout("PF0001", 600)
    accepted = channel.parse_payout(
        send(channel.build_payout(first, now=now())), payout=first, now=now()
    )
    assert (
        accepted.state is PayoutState.PROCESSING and accepted.channel_state == "WAIT_USER_CONFIRM"
    )
    assert accepted.payee_action["package_info"]
    # A retry (lost answer): the same bill, though the name is sealed afresh.
    repeated = channel.parse_payout(
        send(channel.build_payout(first, now=now())), payout=first, now=now()
    )
    assert repeated.channel_payout_no == accepted.channel_payout_no

    over = payout("PF0002", 401)
    with pytest.raises(ChannelRetryable) as refused:
        channel.parse_payout(send(channel.build_payout(over, now=now())), payout=over, now=now())
    assert refused.value.code == "NOT_ENOUGH"
    changed = payout("PF0001", 601)
    with pytest.raises(ChannelFatal):
        channel.parse_payout(
            send(channel.build_payout(changed, now=now())), payout=changed, now=now()
        )

    confirmed = background_sandbox.admin(
        "POST", "/sandbox/wechatpay/transfers/PF0001/confirm", {"mchid": credentials.mchid}
    )
    assert confirmed.status_code == 200
    delivery = background_sandbox.inbox("adapter").get(timeout=5)
    event = channel.parse_callback(delivery.headers, delivery.body, now=now())
    assert event.trade is None and event.payout is not None
    assert event.payout.state is PayoutState.SUCCEEDED and event.payout.amount_minor == 600

    deadline = time.monotonic() + 5
    while True:
        query = channel.build_payout_query("PF0001", now=now())
        status = channel.parse_payout_query(send(query), out_payout_no="PF0001", now=now())
        if status.state is not PayoutState.PROCESSING or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert status.state is PayoutState.SUCCEEDED and status.succeeded_at is not None

    with pytest.raises(ChannelOrderNotFound):
        query = channel.build_payout_query("PF0404", now=now())
        channel.parse_payout_query(send(query), out_payout_no="PF0404", now=now())
