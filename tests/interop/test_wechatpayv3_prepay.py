"""JSAPI, App and H5 orders against the WeChat Pay sandbox: the unmodified ``wechatpayv3`` client
creates them and signs the front-end parameters with its own helper; payfront's adapter does the
same over HTTP. The sandbox verifies those parameters independently before the shopper pays."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from wechatpayv3 import WeChatPay as V3Client
from wechatpayv3 import WeChatPayType

from channels.base import CreateOrder
from tests.interop.harness import BackgroundSandbox, running_sandbox
from tests.interop.test_wechatpayv3_refunds import adapter_for, now, send
from tests.interop.test_wechatpayv3_sandbox import Merchant, client_for, new_merchant, register

OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"


@pytest.fixture(scope="module")
def background_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundSandbox]:
    with running_sandbox(
        tmp_path_factory.mktemp("wechat-prepay"),
        route="/callbacks/wechatpay/{name}",
        answer=lambda: web.Response(status=204),
        seed=11,
    ) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def merchant(background_sandbox: BackgroundSandbox) -> tuple[Merchant, dict[str, Any]]:
    merchant = new_merchant("1900000444")
    return merchant, register(background_sandbox, merchant)


@pytest.fixture
def wxpay(
    background_sandbox: BackgroundSandbox, merchant: tuple[Merchant, dict[str, Any]]
) -> V3Client:
    credentials, registration = merchant
    client = client_for(
        background_sandbox,
        credentials,
        public_key=registration["platform_public_key_pem"],
        public_key_id=registration["platform_public_key_id"],
    )
    client._notify_url = background_sandbox.notify_url + "/library"
    return client


def pay(
    sandbox: BackgroundSandbox, out_trade_no: str, params: dict[str, str] | None
) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = {"outcome": "success"}
    if params is not None:
        body["payment_params"] = params
    answer = sandbox.admin("POST", f"/sandbox/wechatpay/orders/{out_trade_no}/pay", body)
    return answer.status_code, answer.json()


def test_library_jsapi_and_app_parameters_are_accepted(
    background_sandbox: BackgroundSandbox, wxpay: V3Client, merchant: tuple[Merchant, Any]
) -> None:
    code, message = wxpay.pay(
        description="QQ公仔",
        out_trade_no="V3_JSAPI_01",
        amount={"total": 9},
        payer={"openid": OPENID},
        pay_type=WeChatPayType.JSAPI,
    )
    assert code == 200, message
    prepay_id = json.loads(message)["prepay_id"]
    timestamp, nonce = str(int(time.time())), "v3n0nce"
    package = f"prepay_id={prepay_id}"
    params = {
        "appId": merchant[0].appid,
        "timeStamp": timestamp,
        "nonceStr": nonce,
        "package": package,
        "signType": "RSA",
        "paySign": wxpay.sign([merchant[0].appid, timestamp, nonce, package]),
    }
    status, paid = pay(background_sandbox, "V3_JSAPI_01", params)
    assert status == 200, paid
    notification = wxpay.callback(*_delivery(background_sandbox, "library"))
    assert notification is not None
    assert notification["resource"]["trade_type"] == "JSAPI"
    assert notification["resource"]["payer"]["openid"] == OPENID

    code, message = wxpay.pay(
        description="QQ公仔", out_trade_no="V3_APP_01", amount={"total": 9},
        pay_type=WeChatPayType.APP,
    )  # fmt: skip
    assert code == 200, message
    prepay_id = json.loads(message)["prepay_id"]
    app = {
        "appid": merchant[0].appid,
        "partnerid": merchant[0].mchid,
        "prepayid": prepay_id,
        "package": "Sign=WXPay",
        "noncestr": nonce,
        "timestamp": timestamp,
        "sign": wxpay.sign([merchant[0].appid, timestamp, nonce, prepay_id]),
    }
    assert pay(background_sandbox, "V3_APP_01", app)[0] == 200

    code, message = wxpay.pay(
        description="QQ公仔", out_trade_no="V3_H5_01", amount={"total": 9},
        scene_info={"payer_client_ip": "14.23.150.211", "h5_info": {"type": "Wap"}},
        pay_type=WeChatPayType.H5,
    )  # fmt: skip
    assert code == 200, message
    assert json.loads(message)["h5_url"].startswith("https://wx.tenpay.com/")


def _delivery(sandbox: BackgroundSandbox, name: str) -> tuple[dict[str, str], bytes]:
    delivery = sandbox.inbox(name).get(timeout=5)
    return delivery.headers, delivery.body


@pytest.mark.parametrize(
    ("method", "trade_type"), [("jsapi", "JSAPI"), ("app", "APP"), ("h5", "MWEB")]
)
def test_adapter_creates_and_the_shopper_pays(
    background_sandbox: BackgroundSandbox,
    merchant: tuple[Merchant, dict[str, Any]],
    method: str,
    trade_type: str,
) -> None:
    channel = adapter_for(background_sandbox, *merchant)
    number = f"PF_{method.upper()}_01"
    order = CreateOrder(
        out_trade_no=number,
        amount_minor=250,
        currency="CNY",
        description="payfront 下单",
        notify_url=background_sandbox.notify_url + f"/adapter-{method}",
        method=method,
        payer_id=OPENID,
        client_ip="14.23.150.211",
    )
    answer = send(channel.build_create(order, now=now()))
    credential = channel.parse_create(answer, now=now(), method=method).credential
    if method == "h5":
        assert credential["h5_url"].startswith("https://wx.tenpay.com/")
        params = None
    else:
        params = dict(credential)
        # The sandbox checks these signatures itself, independently of the adapter's code.
        tampered = params | {"nonceStr": "x", "noncestr": "x"}
        assert pay(background_sandbox, number, tampered)[0] == 400
    status, paid = pay(background_sandbox, number, params)
    assert status == 200, paid
    event = channel.parse_callback(*_delivery(background_sandbox, f"adapter-{method}"), now=now())
    assert event.trade is not None and event.trade.amount_minor == 250
    assert event.raw["trade_type"] == trade_type
    # Without the method (the Channel protocol's parse_create) a JSAPI answer still pays.
    if method == "jsapi":
        both = channel.parse_create(answer, now=now()).credential
        assert both["package"] == credential["package"] and "paySign" in both
