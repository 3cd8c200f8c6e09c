"""The WeChat Pay emulator's refunds: WeChat's refund rules, the refund's life from PROCESSING to
a final state, signed answers, encrypted and signed REFUND.* callbacks on the retry schedule,
the sandbox's refund controls, and fault injection on the refund routes."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import pytest

from tests.unit.mock_channels.mock_wechat_kit import (
    Receiver,
    Sandbox,
    V3Answer,
    decrypt_resource,
    verify_platform_signature,
)
from tests.unit.mock_channels.test_wechatpay_sandbox import (
    assert_signed,
    clear_faults,
    create,
    pay,
    query_path,
    set_faults,
)

REFUNDS = "/v3/refund/domestic/refunds"


def refund_body(
    out_trade_no: str, out_refund_no: str, refund: int, notify_url: str | None, **changes: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "out_trade_no": out_trade_no,
        "out_refund_no": out_refund_no,
        "reason": "商品已售完",
        "amount": {"refund": refund, "total": 100, "currency": "CNY"},
    }
    if notify_url is not None:
        body["notify_url"] = notify_url
    body.update(changes)
    return body


async def refund(
    sandbox: Sandbox, out_trade_no: str, out_refund_no: str, amount: int, notify_url: str | None
) -> V3Answer:
    return await sandbox.v3(
        "POST", REFUNDS, refund_body(out_trade_no, out_refund_no, amount, notify_url)
    )


async def paid_order(sandbox: Sandbox, out_trade_no: str, notify_url: str) -> None:
    assert (await create(sandbox, out_trade_no, notify_url)).status == 200
    status, _ = await pay(sandbox, out_trade_no)
    assert status == 200


async def query_refund(sandbox: Sandbox, out_refund_no: str) -> V3Answer:
    return await sandbox.v3("GET", f"{REFUNDS}/{out_refund_no}")


async def wait_for_status(sandbox: Sandbox, out_refund_no: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 3
    while True:
        answer = await query_refund(sandbox, out_refund_no)
        resource: dict[str, Any] = answer.json()
        if resource["status"] == status or time.monotonic() > deadline:
            return resource
        await asyncio.sleep(0.01)


async def hold_refunds(sandbox: Sandbox) -> None:
    status, _ = await sandbox.admin(
        "PUT", f"/sandbox/wechatpay/refund-mode/{sandbox.merchant.mchid}", {"outcome": "hold"}
    )
    assert status == 200


async def test_refund_starts_processing_then_succeeds_and_notifies(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    await paid_order(sandbox, "ORDER_REFUND_1", "http://127.0.0.1:9/never")
    answer = await refund(sandbox, "ORDER_REFUND_1", "REFUND_1", 30, receiver.url)

    assert answer.status == 200
    assert_signed(sandbox, answer)
    accepted = answer.json()
    assert accepted["status"] == "PROCESSING"
    assert re.fullmatch(r"\d{29}", accepted["refund_id"])
    assert accepted["out_trade_no"] == "ORDER_REFUND_1"
    assert accepted["out_refund_no"] == "REFUND_1"
    assert re.fullmatch(r"\d{28}", accepted["transaction_id"])
    assert accepted["amount"]["refund"] == 30 and accepted["amount"]["total"] == 100
    assert accepted["amount"]["payer_refund"] == 30 and accepted["amount"]["currency"] == "CNY"
    assert "success_time" not in accepted

    order = await sandbox.v3("GET", query_path(sandbox, "ORDER_REFUND_1"))
    assert order.json()["trade_state"] == "REFUND"

    done = await wait_for_status(sandbox, "REFUND_1", "SUCCESS")
    assert done["status"] == "SUCCESS" and done["refund_id"] == accepted["refund_id"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00", done["success_time"])

    await receiver.wait_for(1)
    headers, body, _ = receiver.deliveries[0]
    assert verify_platform_signature(sandbox.platform_public_key, headers, body)
    assert headers["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"
    notification = json.loads(body)
    assert notification["event_type"] == "REFUND.SUCCESS"
    assert notification["summary"] == "退款成功"
    assert notification["resource"]["original_type"] == "refund"
    assert notification["resource"]["associated_data"] == "refund"
    resource = json.loads(decrypt_resource(sandbox.merchant.apiv3_key, notification["resource"]))
    assert resource == {
        "mchid": sandbox.merchant.mchid,
        "transaction_id": accepted["transaction_id"],
        "out_trade_no": "ORDER_REFUND_1",
        "refund_id": accepted["refund_id"],
        "out_refund_no": "REFUND_1",
        "refund_status": "SUCCESS",
        "success_time": done["success_time"],
        "user_received_account": "支付用户零钱",
        "amount": {"total": 100, "refund": 30, "payer_total": 100, "payer_refund": 30},
    }


async def test_refund_rules(sandbox: Sandbox, receiver: Receiver) -> None:
    await create(sandbox, "ORDER_UNPAID", receiver.url)
    unpaid = await refund(sandbox, "ORDER_UNPAID", "REFUND_U", 10, receiver.url)
    assert (unpaid.status, unpaid.json()["code"]) == (404, "RESOURCE_NOT_EXISTS")
    assert_signed(sandbox, unpaid)
    unknown = await refund(sandbox, "ORDER_NOBODY", "REFUND_N", 10, receiver.url)
    assert (unknown.status, unknown.json()["code"]) == (404, "RESOURCE_NOT_EXISTS")

    await paid_order(sandbox, "ORDER_RULES", receiver.url)
    wrong_total = await sandbox.v3(
        "POST",
        REFUNDS,
        refund_body(
            "ORDER_RULES",
            "REFUND_T",
            10,
            None,
            amount={"refund": 10, "total": 99, "currency": "CNY"},
        ),
    )
    assert (wrong_total.status, wrong_total.json()["code"]) == (400, "INVALID_REQUEST")

    first = await refund(sandbox, "ORDER_RULES", "REFUND_R1", 60, None)
    assert first.status == 200
    # The same out_refund_no with the same amounts is the same refund ...
    again = await refund(sandbox, "ORDER_RULES", "REFUND_R1", 60, None)
    assert again.status == 200 and again.json()["refund_id"] == first.json()["refund_id"]
    # ... with other amounts it is refused, and changes nothing.
    changed = await refund(sandbox, "ORDER_RULES", "REFUND_R1", 61, None)
    assert (changed.status, changed.json()["code"]) == (400, "INVALID_REQUEST")
    assert "不一致" in changed.json()["message"]

    over = await refund(sandbox, "ORDER_RULES", "REFUND_R2", 41, None)
    assert (over.status, over.json()["code"]) == (400, "INVALID_REQUEST")
    assert over.json()["message"] == "申请退款金额超过订单可退金额"
    rest = await refund(sandbox, "ORDER_RULES", "REFUND_R2", 40, None)
    assert rest.status == 200
    full = await refund(sandbox, "ORDER_RULES", "REFUND_R3", 1, None)
    assert (full.status, full.json()["message"]) == (400, "订单已全额退款")

    neither = await sandbox.v3(
        "POST",
        REFUNDS,
        {k: v for k, v in refund_body("X", "REFUND_P", 1, None).items() if k != "out_trade_no"},
    )
    assert (neither.status, neither.json()["code"]) == (400, "PARAM_ERROR")
    bad_number = await refund(sandbox, "ORDER_RULES", "REFUND#1", 1, None)
    assert (bad_number.status, bad_number.json()["code"]) == (400, "PARAM_ERROR")


async def test_refund_by_transaction_id_and_query_of_unknown_refund(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    await paid_order(sandbox, "ORDER_TXN", receiver.url)
    order = (await sandbox.v3("GET", query_path(sandbox, "ORDER_TXN"))).json()
    body = refund_body("ORDER_TXN", "REFUND_TXN", 100, None)
    del body["out_trade_no"]
    body["transaction_id"] = order["transaction_id"]
    answer = await sandbox.v3("POST", REFUNDS, body)
    assert answer.status == 200 and answer.json()["out_trade_no"] == "ORDER_TXN"

    missing = await query_refund(sandbox, "REFUND_NONE")
    assert (missing.status, missing.json()["code"]) == (404, "RESOURCE_NOT_EXISTS")
    assert_signed(sandbox, missing)


@pytest.mark.parametrize(
    ("outcome", "event_type", "summary"),
    [("abnormal", "REFUND.ABNORMAL", "退款异常"), ("closed", "REFUND.CLOSED", "退款关闭")],
)
async def test_forced_outcomes_and_closed_refunds_give_the_amount_back(
    sandbox: Sandbox, receiver: Receiver, outcome: str, event_type: str, summary: str
) -> None:
    await hold_refunds(sandbox)
    await paid_order(sandbox, "ORDER_FORCED", "http://127.0.0.1:9/never")
    assert (await refund(sandbox, "ORDER_FORCED", "REFUND_F1", 100, receiver.url)).status == 200
    await asyncio.sleep(0.05)  # well past the scaled delay: held, still processing
    assert (await query_refund(sandbox, "REFUND_F1")).json()["status"] == "PROCESSING"

    status, view = await sandbox.admin(
        "POST", "/sandbox/wechatpay/refunds/REFUND_F1/settle", {"outcome": outcome}
    )
    assert status == 200 and view["refund"]["status"] == outcome.upper()
    status, again = await sandbox.admin(
        "POST", "/sandbox/wechatpay/refunds/REFUND_F1/settle", {"outcome": "success"}
    )
    assert (status, again["code"]) == (409, "REFUND_FINAL")

    await receiver.wait_for(1)
    notification = json.loads(receiver.deliveries[0][1])
    assert (notification["event_type"], notification["summary"]) == (event_type, summary)
    resource = json.loads(decrypt_resource(sandbox.merchant.apiv3_key, notification["resource"]))
    assert resource["refund_status"] == outcome.upper() and "success_time" not in resource

    retry = await refund(sandbox, "ORDER_FORCED", "REFUND_F2", 100, None)
    if outcome == "closed":
        assert retry.status == 200  # a closed refund moved nothing
    else:
        assert (retry.status, retry.json()["message"]) == (400, "订单已全额退款")


async def test_refund_callback_is_retried_until_acknowledged(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    receiver.statuses = [500, 503, 204]
    await paid_order(sandbox, "ORDER_RETRY_REFUND", "http://127.0.0.1:9/never")
    assert (await refund(sandbox, "ORDER_RETRY_REFUND", "REFUND_RT", 5, receiver.url)).status == 200
    await receiver.wait_for(3, timeout=5)
    bodies = {body for _, body, _ in receiver.deliveries}
    assert len(bodies) == 1  # the same notification, re-signed per send
    signatures = {headers["Wechatpay-Signature"] for headers, _, _ in receiver.deliveries}
    assert len(signatures) == 3
    status, view = await sandbox.admin(
        "GET", f"/sandbox/wechatpay/refunds/REFUND_RT?mchid={sandbox.merchant.mchid}"
    )
    assert status == 200
    assert [attempt["status"] for attempt in view["callback_attempts"]] == [500, 503, 204]


async def test_faults_apply_to_refunds(sandbox: Sandbox, receiver: Receiver) -> None:
    await paid_order(sandbox, "ORDER_REFUND_FAULTS", receiver.url)
    await set_faults(sandbox, error_rate=1.0)
    failed = await refund(sandbox, "ORDER_REFUND_FAULTS", "REFUND_FX", 10, None)
    assert (failed.status, failed.json()["code"]) == (500, "SYSTEM_ERROR")
    assert_signed(sandbox, failed)
    await set_faults(sandbox, frequency_limit_rate=1.0)
    limited = await refund(sandbox, "ORDER_REFUND_FAULTS", "REFUND_FX", 10, None)
    assert (limited.status, limited.json()["code"]) == (429, "FREQUENCY_LIMITED")
    await clear_faults(sandbox)
    # Neither acted: the refund does not exist.
    assert (await query_refund(sandbox, "REFUND_FX")).status == 404

    await set_faults(sandbox, timeout_rate=1.0)
    with pytest.raises(TimeoutError):
        await sandbox.v3(
            "POST",
            REFUNDS,
            refund_body("ORDER_REFUND_FAULTS", "REFUND_HANG", 10, None),
            timeout=0.3,
        )
    await clear_faults(sandbox)
    # A timeout fault acts before it hangs: the refund exists.
    assert (await query_refund(sandbox, "REFUND_HANG")).json()["amount"]["refund"] == 10
