"""The WeChat Pay v3 emulator: request authentication, validation, idempotency, signed answers,
the order life cycle, callbacks and their retries, fault injection, and persistence."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from mock_channels.app import create_app
from tests.unit.mock_channels.mock_wechat_kit import (
    Receiver,
    Sandbox,
    V3Answer,
    decrypt_resource,
    make_merchant,
    start_sandbox,
    verify_platform_signature,
)

NATIVE = "/v3/pay/transactions/native"


def query_path(sandbox: Sandbox, out_trade_no: str) -> str:
    return f"/v3/pay/transactions/out-trade-no/{out_trade_no}?mchid={sandbox.merchant.mchid}"


def assert_signed(sandbox: Sandbox, answer: V3Answer) -> None:
    assert answer.headers["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"
    assert answer.headers["Wechatpay-Serial"] == sandbox.registration["platform_public_key_id"]
    assert answer.headers["Request-ID"]
    assert abs(int(answer.headers["Wechatpay-Timestamp"]) - time.time()) < 60
    assert verify_platform_signature(sandbox.platform_public_key, answer.headers, answer.body)


async def create(sandbox: Sandbox, out_trade_no: str, notify_url: str, **changes: Any) -> V3Answer:
    return await sandbox.v3("POST", NATIVE, sandbox.order_body(out_trade_no, notify_url, **changes))


async def pay(sandbox: Sandbox, out_trade_no: str, **body: Any) -> tuple[int, Any]:
    payload = {"mchid": sandbox.merchant.mchid, "outcome": "success", **body}
    return await sandbox.admin("POST", f"/sandbox/wechatpay/orders/{out_trade_no}/pay", payload)


async def admin_order(sandbox: Sandbox, out_trade_no: str) -> dict[str, Any]:
    status, view = await sandbox.admin(
        "GET", f"/sandbox/wechatpay/orders/{out_trade_no}?mchid={sandbox.merchant.mchid}"
    )
    assert status == 200
    assert isinstance(view, dict)
    return view


async def test_health(sandbox: Sandbox) -> None:
    assert await sandbox.admin("GET", "/sandbox/health") == (200, {"status": "ok"})


async def test_registration_returns_the_platform_identity(sandbox: Sandbox) -> None:
    registration = sandbox.registration
    assert registration["mchid"] == sandbox.merchant.mchid
    assert re.fullmatch(r"PUB_KEY_ID_\d{28}", registration["platform_public_key_id"])
    assert re.fullmatch(r"[0-9A-F]+", registration["platform_serial_no"])
    assert sandbox.platform_public_key.key_size == 2048
    # Registering the same mchid again replaces it and keeps the same platform identity.
    status, again = await sandbox.admin(
        "POST", "/sandbox/wechatpay/merchants", sandbox.merchant.registration()
    )
    assert status == 200
    assert again == registration


@pytest.mark.parametrize(
    "change",
    [{"apiv3_key": "too-short"}, {"merchant_public_key_pem": "not a key"}, {"mchid": ""}],
)
async def test_registration_is_validated(sandbox: Sandbox, change: dict[str, str]) -> None:
    status, body = await sandbox.admin(
        "POST", "/sandbox/wechatpay/merchants", {**sandbox.merchant.registration(), **change}
    )
    assert status == 400
    assert body["code"] == "PARAM_ERROR"


async def test_native_order_answers_a_signed_code_url(sandbox: Sandbox, receiver: Receiver) -> None:
    answer = await create(sandbox, "ORDER_0001", receiver.url)
    assert answer.status == 200, answer.body
    assert re.fullmatch(r"weixin://wxpay/bizpayurl\?pr=\w{7}", answer.json()["code_url"])
    assert answer.headers["Content-Type"].startswith("application/json")
    assert_signed(sandbox, answer)
    # The signature covers these exact bytes and nothing else.
    assert not verify_platform_signature(
        sandbox.platform_public_key, answer.headers, answer.body + b" "
    )


async def test_authorization_parameters_in_any_order(sandbox: Sandbox, receiver: Receiver) -> None:
    body = json.dumps(sandbox.order_body("ORDER_ANY_ORDER", receiver.url)).encode()
    authorization = sandbox.merchant.authorization(
        "POST",
        NATIVE,
        body,
        order=("timestamp", "serial_no", "signature", "mchid", "nonce_str"),
    )
    answer = await sandbox.v3("POST", NATIVE, raw_body=body, authorization=authorization)
    assert answer.status == 200, answer.body


@pytest.mark.parametrize("flaw", ["signature", "serial", "stale", "mchid", "schema", "missing"])
async def test_bad_authorization_is_refused_and_creates_nothing(
    sandbox: Sandbox, receiver: Receiver, merchant_private_key: rsa.RSAPrivateKey, flaw: str
) -> None:
    merchant = sandbox.merchant
    body = json.dumps(sandbox.order_body("ORDER_BADSIG", receiver.url)).encode()
    if flaw == "signature":
        # Signed over another body than the one sent.
        authorization = merchant.authorization("POST", NATIVE, body + b" ")
    elif flaw == "serial":
        authorization = merchant.authorization("POST", NATIVE, body, serial_no="ABCDEF0123")
    elif flaw == "stale":
        authorization = merchant.authorization(
            "POST", NATIVE, body, timestamp=int(time.time()) - 301
        )
    elif flaw == "mchid":
        stranger = make_merchant(merchant_private_key, mchid="1900009999")
        authorization = stranger.authorization("POST", NATIVE, body)
    elif flaw == "schema":
        authorization = merchant.authorization("POST", NATIVE, body).replace(
            "WECHATPAY2-SHA256-RSA2048", "WECHATPAY2-SM2-WITH-SM3", 1
        )
    else:
        authorization = 'WECHATPAY2-SHA256-RSA2048 mchid="1900000109"'
    answer = await sandbox.v3("POST", NATIVE, raw_body=body, authorization=authorization)
    assert answer.status == 401
    assert answer.json()["code"] == "SIGN_ERROR"
    assert_signed(sandbox, answer)
    query = await sandbox.v3("GET", query_path(sandbox, "ORDER_BADSIG"))
    assert query.status == 404
    assert query.json()["code"] == "ORDER_NOT_EXIST"


async def test_signature_covers_the_query_string(sandbox: Sandbox, receiver: Receiver) -> None:
    assert (await create(sandbox, "ORDER_QS", receiver.url)).status == 200
    path = query_path(sandbox, "ORDER_QS")
    authorization = sandbox.merchant.authorization("GET", path.split("?")[0], b"")
    answer = await sandbox.v3("GET", path, authorization=authorization)
    assert answer.status == 401


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"description": "x" * 128}, "/description"),
        ({"out_trade_no": "ORDER 01"}, "/out_trade_no"),
        ({"out_trade_no": "12345"}, "/out_trade_no"),
        ({"notify_url": "ftp://example.com/notify"}, "/notify_url"),
        ({"notify_url": "https://example.com/notify?order=1"}, "/notify_url"),
        ({"amount": {"total": 0}}, "/amount/total"),
        ({"amount": {"total": "100"}}, "/amount/total"),
        ({"amount": {"total": 1.5}}, "/amount/total"),
        ({"amount": {"total": 100, "currency": "USD"}}, "/amount/currency"),
        ({"time_expire": "2018-06-08 10:34:56"}, "/time_expire"),
        ({"mchid": "1900000999"}, "/mchid"),
        ({"appid": None}, "/appid"),
    ],
)
async def test_create_validates_like_wechat(
    sandbox: Sandbox, receiver: Receiver, changes: dict[str, Any], field: str
) -> None:
    body = {**sandbox.order_body("ORDER_PARAMS", receiver.url), **changes}
    body = {key: value for key, value in body.items() if value is not None}
    answer = await sandbox.v3("POST", NATIVE, body)
    assert answer.status == 400, answer.body
    error = answer.json()
    assert error["code"] == "PARAM_ERROR"
    assert field in error["message"]
    assert error["detail"]["field"] == field
    assert_signed(sandbox, answer)
    assert (await sandbox.v3("GET", query_path(sandbox, "ORDER_PARAMS"))).status == 404


async def test_create_refuses_an_appid_of_another_merchant(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    answer = await create(sandbox, "ORDER_APPID", receiver.url, appid="wx0000000000000000")
    assert answer.status == 400
    assert answer.json()["code"] == "APPID_MCHID_NOT_MATCH"


async def test_create_is_idempotent_and_refuses_changed_parameters(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    first = await create(sandbox, "ORDER_IDEM", receiver.url)
    # Same parameters, written differently (key order, currency left to its default).
    body = sandbox.order_body("ORDER_IDEM", receiver.url, amount={"total": 100})
    same = await sandbox.v3("POST", NATIVE, dict(reversed(body.items())))
    assert same.status == 200
    assert same.json()["code_url"] == first.json()["code_url"]

    changed = await create(sandbox, "ORDER_IDEM", receiver.url, amount={"total": 101})
    assert changed.status == 403
    assert changed.json() == {"code": "OUT_TRADE_NO_USED", "message": "商户订单号重复"}
    assert_signed(sandbox, changed)
    other_product = await sandbox.v3(
        "POST", "/v3/pay/transactions/app", sandbox.order_body("ORDER_IDEM", receiver.url)
    )
    assert other_product.status == 403


async def test_other_products_answer_their_own_credential(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    app = await sandbox.v3(
        "POST", "/v3/pay/transactions/app", sandbox.order_body("ORDER_APP", receiver.url)
    )
    assert re.fullmatch(r"wx\d{14}[0-9a-f]{20}", app.json()["prepay_id"])
    jsapi_path = "/v3/pay/transactions/jsapi"
    no_payer = await sandbox.v3("POST", jsapi_path, sandbox.order_body("ORDER_JS", receiver.url))
    assert no_payer.status == 400
    assert no_payer.json()["detail"]["field"] == "/payer"
    jsapi = await sandbox.v3(
        "POST", jsapi_path, sandbox.order_body("ORDER_JS", receiver.url, payer={"openid": "oX"})
    )
    assert "prepay_id" in jsapi.json()
    h5 = await sandbox.v3(
        "POST",
        "/v3/pay/transactions/h5",
        sandbox.order_body(
            "ORDER_H5",
            receiver.url,
            scene_info={"payer_client_ip": "14.23.150.211", "h5_info": {"type": "Wap"}},
        ),
    )
    assert h5.json()["h5_url"].startswith("https://wx.tenpay.com/")


async def test_unpaid_order_reads_like_wechat(sandbox: Sandbox, receiver: Receiver) -> None:
    await create(sandbox, "ORDER_NOTPAY", receiver.url, attach="mine")
    answer = await sandbox.v3("GET", query_path(sandbox, "ORDER_NOTPAY"))
    assert answer.status == 200
    assert_signed(sandbox, answer)
    assert answer.json() == {
        "appid": sandbox.merchant.appid,
        "mchid": sandbox.merchant.mchid,
        "out_trade_no": "ORDER_NOTPAY",
        "trade_state": "NOTPAY",
        "trade_state_desc": "订单未支付",
        "amount": {"total": 100, "payer_currency": "CNY"},
        "promotion_detail": [],
    }


async def test_close_answers_204_signed_over_an_empty_body(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    await create(sandbox, "ORDER_CLOSE", receiver.url)
    close_path = "/v3/pay/transactions/out-trade-no/ORDER_CLOSE/close"
    closed = await sandbox.v3("POST", close_path, {"mchid": sandbox.merchant.mchid})
    assert closed.status == 204
    assert closed.body == b""
    assert_signed(sandbox, closed)
    query = await sandbox.v3("GET", query_path(sandbox, "ORDER_CLOSE"))
    assert query.json()["trade_state"] == "CLOSED"
    # Closing again is accepted; creating or paying a closed order is not.
    again = await sandbox.v3("POST", close_path, {"mchid": sandbox.merchant.mchid})
    assert again.status == 204
    recreate = await create(sandbox, "ORDER_CLOSE", receiver.url)
    assert (recreate.status, recreate.json()["code"]) == (400, "ORDER_CLOSED")
    assert (await pay(sandbox, "ORDER_CLOSE"))[0] == 409
    unknown = await sandbox.v3(
        "POST", "/v3/pay/transactions/out-trade-no/NEVER_SEEN/close", {"mchid": "1900000109"}
    )
    assert unknown.status == 204


async def test_pay_sends_a_signed_encrypted_callback(sandbox: Sandbox, receiver: Receiver) -> None:
    await create(sandbox, "ORDER_PAY", receiver.url, attach="cart-7")
    status, view = await pay(sandbox, "ORDER_PAY")
    assert status == 200
    assert view["trade_state"] == "SUCCESS"
    await receiver.wait_for(1)

    headers, body, _ = receiver.deliveries[0]
    assert headers["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"
    assert headers["Wechatpay-Serial"] == sandbox.registration["platform_public_key_id"]
    assert verify_platform_signature(sandbox.platform_public_key, headers, body)
    notification = json.loads(body)
    assert notification["event_type"] == "TRANSACTION.SUCCESS"
    assert notification["resource_type"] == "encrypt-resource"
    assert notification["summary"] == "支付成功"
    assert notification["create_time"].endswith("+08:00")
    resource = notification["resource"]
    assert resource["algorithm"] == "AEAD_AES_256_GCM"
    assert resource["associated_data"] == "transaction"
    assert len(resource["nonce"]) == 12
    transaction = json.loads(decrypt_resource(sandbox.merchant.apiv3_key, resource))
    assert transaction["trade_state"] == "SUCCESS"
    assert transaction["amount"] == {
        "total": 100,
        "payer_total": 100,
        "currency": "CNY",
        "payer_currency": "CNY",
    }
    assert transaction["attach"] == "cart-7"
    assert transaction["trade_type"] == "NATIVE"
    assert re.fullmatch(r"\d{28}", transaction["transaction_id"])
    assert transaction["payer"]["openid"].startswith("o")

    # The query answers the same transaction, by out_trade_no and by transaction_id.
    query = await sandbox.v3("GET", query_path(sandbox, "ORDER_PAY"))
    assert query.json() == transaction
    by_id = await sandbox.v3(
        "GET",
        f"/v3/pay/transactions/id/{transaction['transaction_id']}?mchid={sandbox.merchant.mchid}",
    )
    assert by_id.json() == transaction

    recreate = await create(sandbox, "ORDER_PAY", receiver.url, attach="cart-7")
    assert (recreate.status, recreate.json()["code"]) == (400, "ORDERPAID")
    close_path = "/v3/pay/transactions/out-trade-no/ORDER_PAY/close"
    closed = await sandbox.v3("POST", close_path, {"mchid": sandbox.merchant.mchid})
    assert (closed.status, closed.json()["code"]) == (400, "ORDERPAID")
    assert (await pay(sandbox, "ORDER_PAY"))[0] == 409

    # Paying "again" re-sends the same notification.
    assert (await pay(sandbox, "ORDER_PAY", again=True))[0] == 200
    await receiver.wait_for(2)
    assert json.loads(receiver.deliveries[1][1])["id"] == notification["id"]
    attempts = (await admin_order(sandbox, "ORDER_PAY"))["callback_attempts"]
    assert [a["status"] for a in attempts] == [200, 200]


async def test_paid_amount_can_differ_for_mismatch_tests(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    await create(sandbox, "ORDER_MISMATCH", receiver.url)
    await pay(sandbox, "ORDER_MISMATCH", paid_amount=1, paid_currency="USD")
    await receiver.wait_for(1)
    resource = json.loads(receiver.deliveries[0][1])["resource"]
    amount = json.loads(decrypt_resource(sandbox.merchant.apiv3_key, resource))["amount"]
    assert (amount["total"], amount["currency"]) == (1, "USD")


async def test_failed_payment_updates_state_without_callback(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    await create(sandbox, "ORDER_FAIL", receiver.url)
    status, view = await pay(sandbox, "ORDER_FAIL", outcome="fail")
    assert (status, view["trade_state"]) == (200, "PAYERROR")
    query = await sandbox.v3("GET", query_path(sandbox, "ORDER_FAIL"))
    assert query.json()["trade_state"] == "PAYERROR"
    assert "success_time" not in query.json()
    await asyncio.sleep(0.05)
    assert receiver.deliveries == []


async def test_pay_errors(sandbox: Sandbox) -> None:
    assert (await pay(sandbox, "NO_SUCH_ORDER"))[0] == 404


async def test_callback_retries_on_the_scaled_schedule(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    receiver.statuses = [500, 500, 200]
    await create(sandbox, "ORDER_RETRY", receiver.url)
    await pay(sandbox, "ORDER_RETRY")
    await receiver.wait_for(3)
    times = [at for _, _, at in receiver.deliveries]
    # 15 s and 15 s, times time_scale 0.001.
    assert times[1] - times[0] >= 0.015 * 0.9
    assert times[2] - times[1] >= 0.015 * 0.9
    await asyncio.sleep(0.02)
    attempts = (await admin_order(sandbox, "ORDER_RETRY"))["callback_attempts"]
    assert [(a["attempt"], a["status"]) for a in attempts] == [(1, 500), (2, 500), (3, 200)]
    assert attempts[0]["error"] == "HTTP 500"
    assert attempts[2]["error"] is None
    assert len(receiver.deliveries) == 3


async def test_unpaid_order_past_time_expire_reads_closed(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    # Earlier than "one minute after creation" is moved to that minute (60 ms at this scale).
    await create(sandbox, "ORDER_EXPIRE", receiver.url, time_expire="2018-06-08T10:34:56+08:00")
    assert (await sandbox.v3("GET", query_path(sandbox, "ORDER_EXPIRE"))).json()[
        "trade_state"
    ] == "NOTPAY"
    await asyncio.sleep(0.1)
    query = await sandbox.v3("GET", query_path(sandbox, "ORDER_EXPIRE"))
    assert query.json()["trade_state"] == "CLOSED"
    assert (await pay(sandbox, "ORDER_EXPIRE"))[0] == 409


async def test_certificates_are_encrypted_with_the_apiv3_key(sandbox: Sandbox) -> None:
    answer = await sandbox.v3("GET", "/v3/certificates")
    assert answer.status == 200
    assert_signed(sandbox, answer)
    (entry,) = answer.json()["data"]
    assert entry["serial_no"] == sandbox.registration["platform_serial_no"]
    encrypted = entry["encrypt_certificate"]
    assert encrypted["associated_data"] == "certificate"
    certificate = x509.load_pem_x509_certificate(
        decrypt_resource(sandbox.merchant.apiv3_key, encrypted)
    )
    assert format(certificate.serial_number, "X") == entry["serial_no"]
    assert certificate.public_key() == sandbox.platform_public_key


async def test_certificate_mode_merchant_sees_the_certificate_serial(
    sandbox: Sandbox, merchant_private_key: rsa.RSAPrivateKey
) -> None:
    other = make_merchant(merchant_private_key, mchid="1900000222")
    status, _ = await sandbox.admin(
        "POST", "/sandbox/wechatpay/merchants", other.registration(platform_mode="certificate")
    )
    assert status == 200
    answer = await sandbox.v3("GET", "/v3/certificates", merchant=other)
    assert answer.headers["Wechatpay-Serial"] == sandbox.registration["platform_serial_no"]
    assert verify_platform_signature(sandbox.platform_public_key, answer.headers, answer.body)


async def set_faults(sandbox: Sandbox, **plan: Any) -> None:
    status, body = await sandbox.admin(
        "PUT", f"/sandbox/wechatpay/faults/{sandbox.merchant.mchid}", plan
    )
    assert status == 200, body


async def clear_faults(sandbox: Sandbox) -> None:
    status, _ = await sandbox.admin("DELETE", f"/sandbox/wechatpay/faults/{sandbox.merchant.mchid}")
    assert status == 204


async def test_fault_error_rate_answers_system_error_and_acts_not(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    await set_faults(sandbox, error_rate=1.0)
    answer = await create(sandbox, "ORDER_F500", receiver.url)
    assert (answer.status, answer.json()["code"]) == (500, "SYSTEM_ERROR")
    assert_signed(sandbox, answer)
    await clear_faults(sandbox)
    assert (await sandbox.v3("GET", query_path(sandbox, "ORDER_F500"))).status == 404


async def test_fault_frequency_limit(sandbox: Sandbox, receiver: Receiver) -> None:
    await set_faults(sandbox, frequency_limit_rate=1.0)
    answer = await create(sandbox, "ORDER_F429", receiver.url)
    assert (answer.status, answer.json()["code"]) == (429, "FREQUENCY_LIMITED")
    await clear_faults(sandbox)
    assert (await sandbox.v3("GET", query_path(sandbox, "ORDER_F429"))).status == 404


async def test_fault_timeout_acts_then_hangs(sandbox: Sandbox, receiver: Receiver) -> None:
    await set_faults(sandbox, timeout_rate=1.0)
    with pytest.raises(TimeoutError):
        await create_with_timeout(sandbox, "ORDER_HANG", receiver.url, timeout=0.3)
    await clear_faults(sandbox)
    query = await sandbox.v3("GET", query_path(sandbox, "ORDER_HANG"))
    assert (query.status, query.json()["trade_state"]) == (200, "NOTPAY")


async def create_with_timeout(
    sandbox: Sandbox, out_trade_no: str, notify_url: str, timeout: float
) -> V3Answer:
    body = sandbox.order_body(out_trade_no, notify_url)
    return await sandbox.v3("POST", NATIVE, body, timeout=timeout)


async def test_fault_latency(sandbox: Sandbox, receiver: Receiver) -> None:
    await set_faults(sandbox, latency_ms=150)
    started = time.monotonic()
    assert (await create(sandbox, "ORDER_SLOW", receiver.url)).status == 200
    assert time.monotonic() - started >= 0.15


async def test_fault_duplicate_callbacks(sandbox: Sandbox, receiver: Receiver) -> None:
    await set_faults(sandbox, duplicate_callbacks=True)
    await create(sandbox, "ORDER_DUP", receiver.url)
    await pay(sandbox, "ORDER_DUP")
    await receiver.wait_for(2)
    first, second = (json.loads(body) for _, body, _ in receiver.deliveries)
    assert first["id"] == second["id"]
    await asyncio.sleep(0.02)
    attempts = (await admin_order(sandbox, "ORDER_DUP"))["callback_attempts"]
    assert [a["duplicate"] for a in attempts] == [False, True]


async def test_fault_lost_callbacks(sandbox: Sandbox, receiver: Receiver) -> None:
    await set_faults(sandbox, lose_callbacks=1.0)
    await create(sandbox, "ORDER_LOST", receiver.url)
    status, view = await pay(sandbox, "ORDER_LOST")
    assert (status, view["trade_state"], view["callbacks_lost"]) == (200, "SUCCESS", 1)
    await asyncio.sleep(0.05)
    assert receiver.deliveries == []


async def test_fault_plan_is_validated(sandbox: Sandbox) -> None:
    status, body = await sandbox.admin(
        "PUT", f"/sandbox/wechatpay/faults/{sandbox.merchant.mchid}", {"error_rate": 2}
    )
    assert (status, body["code"]) == (400, "PARAM_ERROR")


async def test_faults_are_reproducible_with_a_seed(
    tmp_path: Path, merchant_private_key: rsa.RSAPrivateKey, receiver: Receiver
) -> None:
    outcomes = []
    for run in range(2):
        box = await start_sandbox(
            tmp_path / f"seeded{run}", make_merchant(merchant_private_key), seed=7
        )
        try:
            await set_faults(box, error_rate=0.5)
            path = query_path(box, "X_ORDER_1")
            outcomes.append([(await box.v3("GET", path)).status for _ in range(12)])
        finally:
            await box.client.close()
    assert outcomes[0] == outcomes[1]
    assert set(outcomes[0]) == {404, 500}


async def test_platform_key_and_merchants_survive_a_restart(
    tmp_path: Path, merchant_private_key: rsa.RSAPrivateKey, receiver: Receiver
) -> None:
    state_dir = tmp_path / "state"
    first = await start_sandbox(state_dir, make_merchant(merchant_private_key))
    await create(first, "ORDER_BEFORE", receiver.url)
    await first.client.close()

    # The merchant is not registered again: the restarted sandbox must remember it.
    client = TestClient(TestServer(create_app(first.config)))
    await client.start_server()
    try:
        second = type(first)(client, first.merchant, first.registration, first.config)
        answer = await create(second, "ORDER_AFTER", receiver.url)
        assert answer.status == 200, answer.body
        assert_signed(second, answer)
        # Orders are kept in memory only.
        assert (await second.v3("GET", query_path(second, "ORDER_BEFORE"))).status == 404
        stored = json.loads((state_dir / "wechatpay" / "platform.json").read_text())
        assert stored["public_key_id"] == first.registration["platform_public_key_id"]
    finally:
        await client.close()


async def test_unknown_v3_route_is_a_signed_404(sandbox: Sandbox) -> None:
    answer = await sandbox.v3("GET", "/v3/pay/nothing-here")
    assert answer.status == 404
    assert answer.json()["code"] == "NOT_FOUND"
    assert_signed(sandbox, answer)
