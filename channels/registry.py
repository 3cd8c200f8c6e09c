"""Which adapter speaks for which channel name."""

from __future__ import annotations

from collections.abc import Mapping

from channels.base import Channel

SUPPORTED_METHODS: Mapping[str, frozenset[str]] = {
    "wechatpay": frozenset({"native"}),
}


def build_channel(channel: str, credentials: Mapping[str, str]) -> Channel:
    """An adapter for one channel account, its keys parsed once here."""
    if channel == "wechatpay":
        from channels.wechatpay import WechatPay, WechatPayConfig

        return WechatPay(WechatPayConfig.from_credentials(credentials))
    raise ValueError(f"unknown channel {channel!r}")


def account_identity(channel: str, credentials: Mapping[str, str]) -> dict[str, str]:
    """The ids a channel's messages must carry for this account (``TradeStatus`` field names)."""
    if channel == "wechatpay":
        return {"merchant_id": credentials["mchid"], "app_id": credentials["appid"]}
    return {}
