"""Tests for merchant transfers in the WeChat Pay sandbox (mock_channels/wechatpay_payouts.py):
the operating-account balance, NOT_ENOUGH, idempotency by out_bill_no, the encrypted user_name,
the payee's confirmation, the signed query and the MCHTRANSFER.BILL.FINISHED callback."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.hashes import SHA1

from tests.unit.mock_channels.mock_wechat_kit import (
    Receiver,
    Sandbox,
    decrypt_resource,
    verify_platform_signature,
)

PATH = "/v3/fund-app/mch-transfer/transfer-bills"


def transfer_body(
    sandbox: Sandbox, out_bill_no: str, notify_url: str, **changes: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "appid": sandbox.merchant.appid,
        "out_bill_no": out_bill_no,
        "transfer_scene_id": "1000",
        "openid": "o-MYE42l80oelYMDE34nYD456Xoy",
        "transfer_amount": 500,
        "transfer_remark": "钱包提现",
        "notify_url": notify_url,
        "transfer_scene_report_infos": [
            {"info_type": "活动名称", "info_content": "提现"},
            {"info_type": "奖励说明", "info_content": "余额提现"},
        ],
    }
    body.update(changes)
    return body


async def fund(sandbox: Sandbox, available: int) -> None:
    status, _ = await sandbox.admin(
        "PUT", f"/sandbox/wechatpay/balance/{sandbox.merchant.mchid}", {"available": available}
    )
    assert status == 200


async def test_transfer_needs_the_operating_balance(sandbox: Sandbox, receiver: Receiver) -> None:
    body = transfer_body(sandbox, "T0001", receiver.url)
    refused = await sandbox.v3("POST", PATH, body)
    assert refused.status == 403 and refused.json()["code"] == "NOT_ENOUGH"
    assert verify_platform_signature(sandbox.platform_public_key, refused.headers, refused.body)
    await fund(sandbox, 800)
    accepted = await sandbox.v3("POST", PATH, body)  # the same out_bill_no, after a top-up
    assert accepted.status == 200
    assert verify_platform_signature(sandbox.platform_public_key, accepted.headers, accepted.body)
    bill = accepted.json()
    assert bill["state"] == "WAIT_USER_CONFIRM" and bill["package_info"]
    again = await sandbox.v3("POST", PATH, body)
    assert again.json()["transfer_bill_no"] == bill["transfer_bill_no"]
    _, balance = await sandbox.admin("GET", f"/sandbox/wechatpay/balance/{sandbox.merchant.mchid}")
    assert balance["available"] == 300  # locked once, not twice
    changed = await sandbox.v3(
        "POST", PATH, transfer_body(sandbox, "T0001", receiver.url, transfer_amount=501)
    )
    assert changed.status == 400 and changed.json()["code"] == "INVALID_REQUEST"
    over = await sandbox.v3("POST", PATH, transfer_body(sandbox, "T0002", receiver.url))
    assert over.status == 403 and over.json()["code"] == "NOT_ENOUGH"


async def test_payee_confirms_then_the_callback_and_query(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    await fund(sandbox, 10_000)
    created = await sandbox.v3("POST", PATH, transfer_body(sandbox, "T0003", receiver.url))
    assert created.status == 200
    query = await sandbox.v3("GET", f"{PATH}/out-bill-no/T0003")
    assert query.json()["state"] == "WAIT_USER_CONFIRM"
    assert (
        query.json()["mch_id"] == sandbox.merchant.mchid and query.json()["transfer_amount"] == 500
    )
    status, view = await sandbox.admin("POST", "/sandbox/wechatpay/transfers/T0003/confirm", {})
    assert status == 200 and view["bill"]["state"] == "SUCCESS"
    await receiver.wait_for(1)
    headers, body, _ = receiver.deliveries[0]
    assert verify_platform_signature(sandbox.platform_public_key, headers, body)
    notification = json.loads(body)
    assert notification["event_type"] == "MCHTRANSFER.BILL.FINISHED"
    assert notification["resource"]["original_type"] == "mch_payment"
    resource = json.loads(decrypt_resource(sandbox.merchant.apiv3_key, notification["resource"]))
    assert (resource["out_bill_no"], resource["state"]) == ("T0003", "SUCCESS")
    assert resource["mchid"] == sandbox.merchant.mchid
    final = await sandbox.v3("GET", f"{PATH}/out-bill-no/T0003")
    assert final.json()["state"] == "SUCCESS"
    status, _ = await sandbox.admin("POST", "/sandbox/wechatpay/transfers/T0003/confirm", {})
    assert status == 409
    missing = await sandbox.v3("GET", f"{PATH}/out-bill-no/T9999")
    assert missing.status == 404 and missing.json()["code"] == "NOT_FOUND"


async def test_failed_transfer_gives_the_money_back(sandbox: Sandbox, receiver: Receiver) -> None:
    await fund(sandbox, 500)
    await sandbox.v3("POST", PATH, transfer_body(sandbox, "T0004", receiver.url))
    status, view = await sandbox.admin(
        "POST", "/sandbox/wechatpay/transfers/T0004/confirm", {"outcome": "fail"}
    )
    assert status == 200 and view["bill"]["state"] == "FAIL" and view["bill"]["fail_reason"]
    _, balance = await sandbox.admin("GET", f"/sandbox/wechatpay/balance/{sandbox.merchant.mchid}")
    assert balance["available"] == 500


async def test_auto_mode_confirms_after_a_delay(sandbox: Sandbox, receiver: Receiver) -> None:
    await fund(sandbox, 500)
    status, _ = await sandbox.admin(
        "PUT", f"/sandbox/wechatpay/transfer-mode/{sandbox.merchant.mchid}", {"payee": "auto"}
    )
    assert status == 200
    await sandbox.v3("POST", PATH, transfer_body(sandbox, "T0005", receiver.url))
    await receiver.wait_for(1)
    for _ in range(50):
        query = await sandbox.v3("GET", f"{PATH}/out-bill-no/T0005")
        if query.json()["state"] == "SUCCESS":
            break
        await asyncio.sleep(0.01)
    assert query.json()["state"] == "SUCCESS"


async def test_user_name_must_be_sealed_with_the_platform_key(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    await fund(sandbox, 300_000)
    sealed = base64.b64encode(
        sandbox.platform_public_key.encrypt(
            "张三".encode(),
            padding.OAEP(mgf=padding.MGF1(algorithm=SHA1()), algorithm=SHA1(), label=None),
        )
    ).decode()
    serial = sandbox.registration["platform_public_key_id"]
    body = transfer_body(sandbox, "T0006", receiver.url, transfer_amount=200_000, user_name=sealed)
    raw = json.dumps(body).encode()
    headers_ok = await _post_with_serial(sandbox, raw, serial)
    assert headers_ok == 200
    nameless = transfer_body(sandbox, "T0007", receiver.url, transfer_amount=200_000)
    refused = await sandbox.v3("POST", PATH, nameless)
    assert refused.status == 400 and refused.json()["code"] == "PARAM_ERROR"
    garbage = transfer_body(sandbox, "T0008", receiver.url, user_name="bm90IHNlYWxlZA==")
    assert await _post_with_serial(sandbox, json.dumps(garbage).encode(), serial) == 400


async def _post_with_serial(sandbox: Sandbox, raw: bytes, serial: str) -> int:
    headers = {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "Wechatpay-Serial": serial,
        "Authorization": sandbox.merchant.authorization("POST", PATH, raw),
    }
    response = await sandbox.client.request("POST", PATH, data=raw, headers=headers)
    async with response:
        return response.status


async def test_injected_server_error_makes_nothing(sandbox: Sandbox, receiver: Receiver) -> None:
    await fund(sandbox, 500)
    mchid = sandbox.merchant.mchid
    status, _ = await sandbox.admin("PUT", f"/sandbox/wechatpay/faults/{mchid}", {"error_rate": 1})
    assert status == 200
    failed = await sandbox.v3("POST", PATH, transfer_body(sandbox, "T0009", receiver.url))
    assert failed.status == 500 and failed.json()["code"] == "SYSTEM_ERROR"
    assert verify_platform_signature(sandbox.platform_public_key, failed.headers, failed.body)
    await sandbox.admin("DELETE", f"/sandbox/wechatpay/faults/{mchid}")
    status, _ = await sandbox.admin("GET", "/sandbox/wechatpay/transfers/T0009")
    assert status == 404
    made = await sandbox.v3("POST", PATH, transfer_body(sandbox, "T0009", receiver.url))
    assert made.status == 200
