"""The Alipay emulator's refunds: ``alipay.trade.refund`` and ``alipay.trade.fastpay.refund.query``
with Alipay's rules and error codes, signed answers on both transports, refund notifications on
Alipay's schedule, and fault injection.

Requests are signed and answers verified by the small independent signer of
``test_alipay_sandbox`` (neither the sandbox's code nor payfront's adapter)."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.unit.mock_channels.test_alipay_sandbox import (
    APP_ID,
    Answer,
    Box,
    alipay_state,
    app_key,
    box,
    rsa2_ok,
    start,
    state_dir,
)

__all__ = ["alipay_state", "app_key", "box", "state_dir"]  # fixtures used here

REFUND = "alipay.trade.refund"
REFUND_QUERY = "alipay.trade.fastpay.refund.query"


async def paid(box: Box, out_trade_no: str, amount: str = "19.99") -> None:
    created = await box.precreate(out_trade_no, total_amount=amount)
    assert created.content["code"] == "10000", created.content
    status, view = await box.pay(out_trade_no)
    assert (status, view["status"]) == (200, "TRADE_SUCCESS")


async def refund(
    box: Box,
    out_trade_no: str,
    amount: str,
    request_no: str | None,
    *,
    transport: str = "post",
    **more: Any,
) -> Answer:
    biz: dict[str, Any] = {"out_trade_no": out_trade_no, "refund_amount": amount, **more}
    if request_no is not None:
        biz["out_request_no"] = request_no
    return await box.call(REFUND, biz, transport=transport)


async def query_refund(box: Box, out_trade_no: str, request_no: str, **more: Any) -> Answer:
    biz = {"out_trade_no": out_trade_no, "out_request_no": request_no, **more}
    return await box.call(REFUND_QUERY, biz)


def notification(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode(), keep_blank_values=True))


@pytest.mark.parametrize("transport", ["get", "post"])
async def test_partial_refunds_then_the_rest_closes_the_trade(box: Box, transport: str) -> None:
    await paid(box, "R_LIFE")
    await box.receiver.wait_for(1)  # the payment's notification

    first = await refund(box, "R_LIFE", "5.00", "R_LIFE_1", transport=transport)
    assert box.verified(first) and first.key == "alipay_trade_refund_response"
    content = first.content
    assert (content["code"], content["fund_change"], content["refund_fee"]) == (
        "10000",
        "Y",
        "5.00",
    )
    assert content["out_trade_no"] == "R_LIFE" and content["trade_no"].startswith("20")
    assert content["gmt_refund_pay"]

    # The same out_request_no and amount: the earlier refund, no money moved this time.
    repeat = await refund(box, "R_LIFE", "5.00", "R_LIFE_1")
    assert (repeat.content["fund_change"], repeat.content["refund_fee"]) == ("N", "5.00")
    assert repeat.content["gmt_refund_pay"] == content["gmt_refund_pay"]
    # The same out_request_no with another amount is refused.
    changed = await refund(box, "R_LIFE", "6.00", "R_LIFE_1")
    assert (changed.content["code"], changed.content["sub_code"]) == (
        "40004",
        "ACQ.DISCORDANT_REPEAT_REQUEST",
    )
    assert box.verified(changed)

    rest = await refund(box, "R_LIFE", "14.99", "R_LIFE_2", refund_reason="退货")
    assert (rest.content["fund_change"], rest.content["refund_fee"]) == ("Y", "19.99")
    queried = await box.query("R_LIFE")
    assert queried.content["trade_status"] == "TRADE_CLOSED"  # fully refunded
    closed = await refund(box, "R_LIFE", "0.01", "R_LIFE_3")
    assert closed.content["sub_code"] == "ACQ.TRADE_HAS_CLOSE"
    again = await refund(box, "R_LIFE", "14.99", "R_LIFE_2")  # still answered idempotently
    assert (again.content["code"], again.content["fund_change"]) == ("10000", "N")

    _, view = await box.admin("GET", "/orders/R_LIFE")
    assert [(r["out_request_no"], r["refund_amount"]) for r in view["refunds"]] == [
        ("R_LIFE_1", "5.00"),
        ("R_LIFE_2", "14.99"),
    ]


async def test_amount_rules(box: Box) -> None:
    await paid(box, "R_AMT")
    too_much = await refund(box, "R_AMT", "20.00", "R_AMT_1")
    assert too_much.content["sub_code"] == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
    # A partial refund needs an out_request_no.
    unnumbered = await refund(box, "R_AMT", "1.00", None)
    assert unnumbered.content["sub_code"] == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
    assert (await refund(box, "R_AMT", "10.00", "R_AMT_1")).content["fund_change"] == "Y"
    over = await refund(box, "R_AMT", "10.00", "R_AMT_2")
    assert over.content["sub_code"] == "ACQ.REASON_TRADE_REFUND_FEE_ERR"
    assert box.verified(over)
    for bad in ["1.001", "0", "-1", "1e2"]:
        invalid = await refund(box, "R_AMT", bad, "R_AMT_X")
        assert invalid.content["sub_code"] == "ACQ.INVALID_PARAMETER", bad
    _, view = await box.admin("GET", "/orders/R_AMT")
    assert [r["refund_amount"] for r in view["refunds"]] == ["10.00"]


async def test_full_refund_without_out_request_no_is_numbered_by_the_trade(box: Box) -> None:
    await paid(box, "R_FULL")
    full = await refund(box, "R_FULL", "19.99", None)
    assert (full.content["fund_change"], full.content["refund_fee"]) == ("Y", "19.99")
    found = await query_refund(box, "R_FULL", "R_FULL")
    assert found.content["refund_status"] == "REFUND_SUCCESS"


async def test_only_paid_trades_are_refunded(box: Box) -> None:
    await box.precreate("R_UNSCANNED")
    assert (await refund(box, "R_UNSCANNED", "1.00", "x")).content[
        "sub_code"
    ] == "ACQ.TRADE_NOT_EXIST"
    await box.pay("R_UNSCANNED", outcome="scan")
    waiting = await refund(box, "R_UNSCANNED", "1.00", "x")
    assert waiting.content["sub_code"] == "ACQ.TRADE_STATUS_ERROR"
    await box.call("alipay.trade.close", {"out_trade_no": "R_UNSCANNED"})
    closed = await refund(box, "R_UNSCANNED", "1.00", "x")
    assert closed.content["sub_code"] == "ACQ.TRADE_HAS_CLOSE"
    assert (await refund(box, "R_NOBODY", "1.00", "x")).content["sub_code"] == (
        "ACQ.TRADE_NOT_EXIST"
    )
    assert (await query_refund(box, "R_NOBODY", "x")).content["sub_code"] == ("ACQ.TRADE_NOT_EXIST")


async def test_refund_query(box: Box) -> None:
    await paid(box, "R_QUERY", amount="88.88")
    unknown = await query_refund(box, "R_QUERY", "R_QUERY_1")
    # Alipay answers success without any refund data for a refund it does not have.
    assert unknown.content == {"code": "10000", "msg": "Success"} and box.verified(unknown)
    await refund(box, "R_QUERY", "8.88", "R_QUERY_1", refund_reason="部分退款")
    plain = await query_refund(box, "R_QUERY", "R_QUERY_1")
    assert box.verified(plain)
    assert plain.content["refund_status"] == "REFUND_SUCCESS"
    assert (plain.content["refund_amount"], plain.content["total_amount"]) == ("8.88", "88.88")
    assert plain.content["refund_reason"] == "部分退款"
    assert "gmt_refund_pay" not in plain.content  # only when query_options asks for it
    with_time = await query_refund(box, "R_QUERY", "R_QUERY_1", query_options=["gmt_refund_pay"])
    assert dt.datetime.strptime(with_time.content["gmt_refund_pay"], "%Y-%m-%d %H:%M:%S")
    _, view = await box.admin("GET", "/orders/R_QUERY")
    by_trade_no = await box.call(
        REFUND_QUERY, {"trade_no": view["trade_no"], "out_request_no": "R_QUERY_1"}
    )
    assert by_trade_no.content["out_trade_no"] == "R_QUERY"


async def test_refund_notifications(box: Box) -> None:
    await paid(box, "R_NOTIFY")
    await box.receiver.wait_for(1)
    box.receiver.answers = ["fail", "success"]
    await refund(box, "R_NOTIFY", "4.99", "R_NOTIFY_1")
    await box.receiver.wait_for(3)
    headers, body = box.receiver.deliveries[1]
    assert headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    fields = notification(body)
    signature = fields.pop("sign")
    content = "&".join(f"{k}={fields[k]}" for k in sorted(fields) if k != "sign_type")
    assert rsa2_ok(box.alipay_public, content.encode(), signature)
    assert not rsa2_ok(box.alipay_public, content.replace("4.99", "5.99").encode(), signature)
    assert fields["notify_type"] == "trade_status_sync"
    assert fields["trade_status"] == "TRADE_SUCCESS"  # partly refunded: still a paid trade
    assert (fields["out_biz_no"], fields["refund_fee"]) == ("R_NOTIFY_1", "4.99")
    assert dt.datetime.strptime(fields["gmt_refund"], "%Y-%m-%d %H:%M:%S.%f")
    assert fields["total_amount"] == "19.99" and fields["app_id"] == APP_ID
    payment_notify_id = notification(box.receiver.deliveries[0][1])["notify_id"]
    assert fields["notify_id"] != payment_notify_id
    assert notification(box.receiver.deliveries[2][1])["notify_id"] == fields["notify_id"]

    await refund(box, "R_NOTIFY", "15.00", "R_NOTIFY_2")
    await box.receiver.wait_for(4)
    last = notification(box.receiver.deliveries[3][1])
    assert (last["trade_status"], last["out_biz_no"], last["refund_fee"]) == (
        "TRADE_CLOSED",
        "R_NOTIFY_2",
        "19.99",
    )
    assert last["gmt_close"]
    # A repeated refund sends nothing.
    await refund(box, "R_NOTIFY", "15.00", "R_NOTIFY_2")
    await asyncio.sleep(0.05)
    assert len(box.receiver.deliveries) == 4
    _, view = await box.admin("GET", "/orders/R_NOTIFY")
    attempts = view["refunds"][0]["notify_attempts"]
    assert [a["acknowledged"] for a in attempts] == [False, True]


async def test_faults_apply_to_refunds(state_dir: Path, app_key: rsa.RSAPrivateKey) -> None:
    box = await start(state_dir, app_key, hang_s=5.0)
    try:
        await paid(box, "R_FAULT")
        await box.admin("PUT", f"/faults/{APP_ID}", {"error_rate": 1.0})
        failed = await refund(box, "R_FAULT", "1.00", "R_FAULT_1")
        assert failed.content["sub_code"] == "ACQ.SYSTEM_ERROR" and box.verified(failed)
        assert (await box.admin("GET", "/orders/R_FAULT"))[1]["refunds"] == []  # not acted on
        await box.admin("PUT", f"/faults/{APP_ID}", {"timeout_rate": 1.0})
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await refund(box, "R_FAULT", "1.00", "R_FAULT_1")
        await box.admin("DELETE", f"/faults/{APP_ID}")
        # Acted on although the client saw a timeout: the retry finds the refund made.
        retried = await refund(box, "R_FAULT", "1.00", "R_FAULT_1")
        assert (retried.content["code"], retried.content["fund_change"]) == ("10000", "N")
    finally:
        await box.client.close()


async def test_lost_refund_notifications_are_counted(box: Box) -> None:
    await paid(box, "R_LOST")
    await box.receiver.wait_for(1)
    await box.admin("PUT", f"/faults/{APP_ID}", {"lose_callbacks": 1.0})
    assert (await refund(box, "R_LOST", "1.00", "R_LOST_1")).content["fund_change"] == "Y"
    assert (await box.admin("GET", "/orders/R_LOST"))[1]["notifies_lost"] == 1
