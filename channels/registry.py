"""Which adapter speaks for which channel name, and what each channel can take."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from channels.base import Channel


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """One channel: its methods, currencies, adapter, and the ids its messages must carry."""

    methods: frozenset[str]
    currencies: frozenset[str]
    # "module:function" taking the decrypted credentials; imported on first use.
    factory: str
    # TradeStatus field name -> credentials key, for the cross-check of callbacks and queries
    # (a key the account's credentials do not have is not checked).
    identity: Mapping[str, str]


CHANNELS: Mapping[str, ChannelSpec] = {
    "wechatpay": ChannelSpec(
        methods=frozenset({"native", "jsapi", "app", "h5"}),
        currencies=frozenset({"CNY"}),
        factory="channels.wechatpay:from_credentials",
        identity={"merchant_id": "mchid", "app_id": "appid"},
    ),
    "alipay": ChannelSpec(
        methods=frozenset({"qr", "page", "wap"}),
        currencies=frozenset({"CNY"}),
        factory="channels.alipay:from_credentials",
        identity={"app_id": "app_id"},
    ),
    "stripe": ChannelSpec(
        methods=frozenset({"payment_intent"}),
        # payfront's currencies (core.money; channels do not import core), all Stripe ones.
        currencies=frozenset(
            {"USD", "EUR", "GBP", "HKD", "SGD", "AUD", "CAD", "JPY", "KRW", "CNY"}
        ),
        factory="channels.stripe:from_credentials",
        identity={},
    ),
}


def spec(channel: str) -> ChannelSpec:
    try:
        return CHANNELS[channel]
    except KeyError:
        raise ValueError(f"unknown channel {channel!r}") from None


def build_channel(channel: str, credentials: Mapping[str, str]) -> Channel:
    """An adapter for one channel account, its keys parsed once here."""
    module_name, _, attribute = spec(channel).factory.partition(":")
    factory: Callable[[Mapping[str, str]], Channel] = getattr(
        importlib.import_module(module_name), attribute
    )
    return factory(credentials)


def account_identity(channel: str, credentials: Mapping[str, str]) -> dict[str, str]:
    """The ids a channel's messages must carry for this account (``TradeStatus`` field names)."""
    return {
        field: credentials[key]
        for field, key in spec(channel).identity.items()
        if credentials.get(key)
    }
