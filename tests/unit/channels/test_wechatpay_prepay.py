"""Tests for WeChat Pay JSAPI, App and H5 orders in channels/wechatpay.py and
channels/wechatpay_prepay.py: request shapes, refusals before any call, and the credentials
(signed front-end parameters for JSAPI and App, the h5_url for H5)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.hashes import SHA256

from channels.base import CreateOrder
from channels.errors import ChannelFatal, ChannelUnknownOutcome
from channels.registry import spec
from channels.wechatpay import WechatPay, WechatPayConfig
from tests.unit.channels.test_wechatpay import (
    APIV3_KEY,
    APPID,
    MCHID,
    MERCHANT_SERIAL,
    NONCE,
    NOW,
    PLATFORM_KEY_ID,
    signed_response,
)

PREPAY_ID = "wx201410272009395522657a690389285100"
TIMESTAMP = str(int(NOW.timestamp()))


@pytest.fixture(scope="module")
def merchant_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def platform_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def channel(merchant_key: rsa.RSAPrivateKey, platform_key: rsa.RSAPrivateKey) -> WechatPay:
    config = WechatPayConfig(
        mchid=MCHID,
        appid=APPID,
        merchant_serial_no=MERCHANT_SERIAL,
        merchant_private_key=merchant_key,
        apiv3_key=APIV3_KEY.encode(),
        platform_public_key=platform_key.public_key(),
        platform_public_key_id=PLATFORM_KEY_ID,
    )
    return WechatPay(config, nonce_factory=lambda: NONCE)


def order(method: str, **overrides: Any) -> CreateOrder:
    fields: dict[str, Any] = {
        "out_trade_no": "P20261125000009",
        "amount_minor": 100,
        "currency": "CNY",
        "description": "QQ公仔",
        "notify_url": "https://pay.example.com/callbacks/wechatpay",
        "method": method,
        "payer_id": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
        "client_ip": "14.23.150.211",
    }
    fields.update(overrides)
    return CreateOrder(**fields)


def verifies(key: rsa.RSAPrivateKey, signature: str, *lines: str) -> bool:
    message = "".join(line + "\n" for line in lines).encode()
    key.public_key().verify(base64.b64decode(signature), message, PKCS1v15(), SHA256())
    return True


def test_request_shapes(channel: WechatPay) -> None:
    jsapi = channel.build_create(order("jsapi"), now=NOW)
    app = channel.build_create(order("app"), now=NOW)
    h5 = channel.build_create(order("h5"), now=NOW)

    assert jsapi.url.endswith("/v3/pay/transactions/jsapi")
    assert app.url.endswith("/v3/pay/transactions/app")
    assert h5.url.endswith("/v3/pay/transactions/h5")
    assert json.loads(jsapi.body)["payer"] == {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}
    assert list(json.loads(jsapi.body)) == [
        "appid", "mchid", "description", "out_trade_no", "notify_url", "amount", "payer",
    ]  # fmt: skip
    assert "payer" not in json.loads(app.body) and "scene_info" not in json.loads(app.body)
    assert json.loads(h5.body)["scene_info"] == {
        "payer_client_ip": "14.23.150.211",
        "h5_info": {"type": "Wap"},
    }
    assert "payer" not in json.loads(h5.body)
    native = json.loads(channel.build_create(order("native"), now=NOW).body)
    assert "payer" not in native and "scene_info" not in native


def test_missing_shopper_data_is_refused_before_any_call(channel: WechatPay) -> None:
    with pytest.raises(ChannelFatal) as caught:
        channel.build_create(order("jsapi", payer_id=None), now=NOW)
    assert caught.value.code == "PAYER_ID_REQUIRED"
    with pytest.raises(ChannelFatal) as caught:
        channel.build_create(order("jsapi", payer_id=""), now=NOW)
    assert caught.value.code == "PAYER_ID_REQUIRED"
    with pytest.raises(ChannelFatal) as caught:
        channel.build_create(order("h5", client_ip=None), now=NOW)
    assert caught.value.code == "CLIENT_IP_REQUIRED"
    # App needs neither.
    assert channel.build_create(order("app", payer_id=None, client_ip=None), now=NOW)


def test_jsapi_credential_is_signed_for_wx_request_payment(
    channel: WechatPay, merchant_key: rsa.RSAPrivateKey, platform_key: rsa.RSAPrivateKey
) -> None:
    answer = signed_response(platform_key, 200, {"prepay_id": PREPAY_ID})
    credential = channel.parse_create(answer, now=NOW, method="jsapi").credential

    assert dict(credential) == {
        "appId": APPID,
        "timeStamp": TIMESTAMP,
        "nonceStr": NONCE,
        "package": f"prepay_id={PREPAY_ID}",
        "signType": "RSA",
        "paySign": credential["paySign"],
    }
    assert verifies(
        merchant_key, credential["paySign"], APPID, TIMESTAMP, NONCE, f"prepay_id={PREPAY_ID}"
    )


def test_app_credential_is_signed_for_the_app_sdk(
    channel: WechatPay, merchant_key: rsa.RSAPrivateKey, platform_key: rsa.RSAPrivateKey
) -> None:
    answer = signed_response(platform_key, 200, {"prepay_id": PREPAY_ID})
    credential = channel.parse_create(answer, now=NOW, method="app").credential

    assert dict(credential) == {
        "appid": APPID,
        "partnerid": MCHID,
        "prepayid": PREPAY_ID,
        "package": "Sign=WXPay",
        "noncestr": NONCE,
        "timestamp": TIMESTAMP,
        "sign": credential["sign"],
    }
    assert verifies(merchant_key, credential["sign"], APPID, TIMESTAMP, NONCE, PREPAY_ID)


def test_signatures_match_wechatpayv3(
    channel: WechatPay, merchant_key: rsa.RSAPrivateKey, platform_key: rsa.RSAPrivateKey
) -> None:
    from wechatpayv3.utils import rsa_sign

    answer = signed_response(platform_key, 200, {"prepay_id": PREPAY_ID})
    jsapi = channel.parse_create(answer, now=NOW, method="jsapi").credential
    app = channel.parse_create(answer, now=NOW, method="app").credential
    # PKCS#1 v1.5 is deterministic: the library's own signing gives the same signatures.
    package = f"prepay_id={PREPAY_ID}"
    assert jsapi["paySign"] == rsa_sign(merchant_key, f"{APPID}\n{TIMESTAMP}\n{NONCE}\n{package}\n")
    assert app["sign"] == rsa_sign(merchant_key, f"{APPID}\n{TIMESTAMP}\n{NONCE}\n{PREPAY_ID}\n")


def test_without_the_method_a_prepay_id_serves_both_front_ends(
    channel: WechatPay, merchant_key: rsa.RSAPrivateKey, platform_key: rsa.RSAPrivateKey
) -> None:
    answer = signed_response(platform_key, 200, {"prepay_id": PREPAY_ID})
    both = channel.parse_create(answer, now=NOW).credential
    jsapi = channel.parse_create(answer, now=NOW, method="jsapi").credential
    app = channel.parse_create(answer, now=NOW, method="app").credential

    assert {k: both[k] for k in jsapi} == dict(jsapi)
    assert {k: both[k] for k in app if k != "package"} == {
        k: v for k, v in app.items() if k != "package"
    }
    assert both["package"] == f"prepay_id={PREPAY_ID}"  # JSAPI's; App's is fixed


def test_h5_credential_and_mismatched_answers(
    channel: WechatPay, platform_key: rsa.RSAPrivateKey
) -> None:
    url = "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx2016&package=1037"
    answer = signed_response(platform_key, 200, {"h5_url": url})
    assert channel.parse_create(answer, now=NOW, method="h5").credential == {"h5_url": url}
    assert channel.parse_create(answer, now=NOW).credential == {"h5_url": url}
    with pytest.raises(ChannelUnknownOutcome):
        channel.parse_create(answer, now=NOW, method="jsapi")
    prepay = signed_response(platform_key, 200, {"prepay_id": PREPAY_ID})
    with pytest.raises(ChannelUnknownOutcome):
        channel.parse_create(prepay, now=NOW, method="h5")


def test_registry_offers_the_methods() -> None:
    assert spec("wechatpay").methods == {"native", "jsapi", "app", "h5"}
