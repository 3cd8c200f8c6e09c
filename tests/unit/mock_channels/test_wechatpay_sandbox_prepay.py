"""The WeChat Pay emulator's JSAPI, App and H5 orders: the shopper pays them, and for JSAPI and
App the sandbox first verifies the merchant's signed front-end parameters like WeChat's client."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from tests.unit.mock_channels.mock_wechat_kit import (
    MerchantCredentials,
    Receiver,
    Sandbox,
    decrypt_resource,
)
from tests.unit.mock_channels.test_wechatpay_sandbox import admin_order, pay

OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"


def sign(merchant: MerchantCredentials, *lines: str) -> str:
    message = "".join(line + "\n" for line in lines).encode()
    signature = merchant.private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode()


def jsapi_params(merchant: MerchantCredentials, prepay_id: str, **changes: str) -> dict[str, str]:
    params = {
        "appId": merchant.appid,
        "timeStamp": str(int(time.time())),
        "nonceStr": "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
        "package": f"prepay_id={prepay_id}",
        "signType": "RSA",
    }
    params |= changes
    fields = (params["appId"], params["timeStamp"], params["nonceStr"], params["package"])
    return {"paySign": sign(merchant, *fields), **params}


def app_params(merchant: MerchantCredentials, prepay_id: str) -> dict[str, str]:
    params = {
        "appid": merchant.appid,
        "partnerid": merchant.mchid,
        "prepayid": prepay_id,
        "package": "Sign=WXPay",
        "noncestr": "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
        "timestamp": str(int(time.time())),
    }
    fields = (params["appid"], params["timestamp"], params["noncestr"], params["prepayid"])
    return {"sign": sign(merchant, *fields), **params}


async def create(sandbox: Sandbox, product: str, number: str, url: str, **body: Any) -> str:
    answer = await sandbox.v3(
        "POST", f"/v3/pay/transactions/{product}", sandbox.order_body(number, url, **body)
    )
    assert answer.status == 200, answer.body
    credential: dict[str, str] = answer.json()
    return credential.get("prepay_id") or credential["h5_url"]


async def test_jsapi_order_paid_with_verified_front_end_parameters(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    prepay_id = await create(
        sandbox, "jsapi", "ORDER_JSAPI", receiver.url, payer={"openid": OPENID}
    )
    forged = jsapi_params(sandbox.merchant, prepay_id)
    forged["paySign"] = jsapi_params(sandbox.merchant, "wx0")["paySign"]
    for wrong in (
        forged,
        jsapi_params(sandbox.merchant, "wx_another_order"),
        jsapi_params(sandbox.merchant, prepay_id, appId="wx0000000000000000"),
        jsapi_params(sandbox.merchant, prepay_id, timeStamp="1500000000"),
        {"nonceStr": "x"},
    ):
        status, refused = await pay(sandbox, "ORDER_JSAPI", payment_params=wrong)
        assert (status, refused["code"]) == (400, "INVALID_PAYMENT_PARAMS"), wrong
    assert (await admin_order(sandbox, "ORDER_JSAPI"))["trade_state"] == "NOTPAY"

    params = jsapi_params(sandbox.merchant, prepay_id)
    status, paid = await pay(sandbox, "ORDER_JSAPI", payment_params=params)
    assert status == 200 and paid["trade_state"] == "SUCCESS"
    await receiver.wait_for(1)
    notification = json.loads(receiver.deliveries[0][1])
    resource = json.loads(decrypt_resource(sandbox.merchant.apiv3_key, notification["resource"]))
    assert resource["trade_type"] == "JSAPI"
    assert resource["payer"] == {"openid": OPENID}  # the shopper the order named


async def test_app_and_h5_orders_are_paid(sandbox: Sandbox, receiver: Receiver) -> None:
    prepay_id = await create(sandbox, "app", "ORDER_APP_PAY", receiver.url)
    status, _ = await pay(
        sandbox, "ORDER_APP_PAY", payment_params=app_params(sandbox.merchant, "x")
    )
    assert status == 400
    params = app_params(sandbox.merchant, prepay_id)
    status, paid = await pay(sandbox, "ORDER_APP_PAY", payment_params=params)
    assert status == 200 and paid["transaction"]["trade_type"] == "APP"

    scene = {"payer_client_ip": "14.23.150.211", "h5_info": {"type": "Wap"}}
    h5_url = await create(sandbox, "h5", "ORDER_H5_PAY", receiver.url, scene_info=scene)
    assert h5_url.startswith("https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx")
    status, refused = await pay(sandbox, "ORDER_H5_PAY", payment_params={"paySign": "x"})
    assert (status, refused["code"]) == (400, "INVALID_PAYMENT_PARAMS")  # H5 has no prepay_id
    status, paid = await pay(sandbox, "ORDER_H5_PAY")
    assert status == 200 and paid["transaction"]["trade_type"] == "MWEB"
    await receiver.wait_for(2)
