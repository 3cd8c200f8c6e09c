"""WeChat Pay API v3 create-order requests for Native, JSAPI, App and H5, and the credential each
answer gives the shopper's front-end (for JSAPI and App: parameters signed with the merchant key,
as ``wx.requestPayment`` and the App SDK's ``PayReq`` want them)."""

from __future__ import annotations

from collections.abc import Mapping

from channels import wechatpay_wire as wire
from channels.base import CreateOrder
from channels.errors import ChannelFatal
from channels.wechatpay_auth import WechatPayConfig, format_time_expire, rsa_sign_lines

# payfront method -> the v3 create-order path segment.
METHODS: Mapping[str, str] = {"native": "native", "jsapi": "jsapi", "app": "app", "h5": "h5"}
APP_PACKAGE = "Sign=WXPay"  # the App SDK's fixed ``package`` value


def prepay_request(config: WechatPayConfig, order: CreateOrder) -> tuple[str, wire.PrepayRequest]:
    """The create-order path and body; refuses (before any call) what WeChat would refuse
    for want of the shopper's openid (JSAPI) or IP address (H5)."""
    product = METHODS.get(order.method)
    if product is None:
        raise ChannelFatal(
            "METHOD_NOT_SUPPORTED",
            f"wechatpay supports {', '.join(METHODS)}, not {order.method!r}",
        )
    payer = None
    if product == "jsapi":
        if not order.payer_id:
            raise ChannelFatal(
                "PAYER_ID_REQUIRED", "wechatpay jsapi needs the shopper's openid (payer_id)"
            )
        payer = wire.Payer(openid=order.payer_id)
    scene_info = None
    if product == "h5":
        if not order.client_ip:
            raise ChannelFatal(
                "CLIENT_IP_REQUIRED", "wechatpay h5 needs the shopper's IP address (client_ip)"
            )
        scene_info = wire.SceneInfo(
            payer_client_ip=order.client_ip, h5_info=wire.H5Info(type="Wap")
        )
    body = wire.PrepayRequest(
        appid=config.appid,
        mchid=config.mchid,
        description=order.description,
        out_trade_no=order.out_trade_no,
        time_expire=format_time_expire(order.expires_at) if order.expires_at else None,
        attach=order.attach,
        notify_url=order.notify_url,
        amount=wire.RequestAmount(total=order.amount_minor, currency=order.currency.upper()),
        payer=payer,
        scene_info=scene_info,
    )
    return f"/v3/pay/transactions/{product}", body


def credential(
    config: WechatPayConfig, body: bytes, *, method: str | None, timestamp: str, nonce: str
) -> dict[str, str] | None:
    """The shopper's credential from a verified 200 answer; None if the answer has none.

    JSAPI and App answers are the same ``{"prepay_id"}``; without ``method`` a prepay id gets
    the parameters of both front-ends (their keys differ but for App's fixed ``package``)."""
    native = wire.load(wire.NativePrepayResponse, body)
    if native is not None and native.code_url and method in (None, "native"):
        return {"code_url": native.code_url}
    h5 = wire.load(wire.H5PrepayResponse, body)
    if h5 is not None and h5.h5_url and method in (None, "h5"):
        return {"h5_url": h5.h5_url}
    prepay = wire.load(wire.PrepayIdResponse, body)
    if prepay is None or not prepay.prepay_id or method not in (None, "jsapi", "app"):
        return None
    appid, key, prepay_id = config.appid, config.merchant_private_key, prepay.prepay_id
    params: dict[str, str] = {}
    if method in (None, "jsapi"):
        # wx.requestPayment: paySign over appId, timeStamp, nonceStr, package.
        package = f"prepay_id={prepay_id}"
        params |= {
            "appId": appid,
            "timeStamp": timestamp,
            "nonceStr": nonce,
            "package": package,
            "signType": "RSA",
            "paySign": rsa_sign_lines(key, appid, timestamp, nonce, package),
        }
    if method in (None, "app"):
        # The App SDK's PayReq: sign over appid, timestamp, noncestr, prepayid.
        params |= {
            "appid": appid,
            "partnerid": config.mchid,
            "prepayid": prepay_id,
            "noncestr": nonce,
            "timestamp": timestamp,
            "sign": rsa_sign_lines(key, appid, timestamp, nonce, prepay_id),
        }
        if method == "app":
            params["package"] = APP_PACKAGE
    return params
