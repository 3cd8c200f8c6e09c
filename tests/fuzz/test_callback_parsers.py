"""The WeChat Pay and Alipay callback parsers (pure functions) under random and genuinely
signed junk: they only ever raise ``CallbackRejected`` / ``CallbackIgnored`` or return a
well-formed ``ChannelEvent``. (Stripe's are in tests/unit/channels/test_stripe_channel.py.)
Keys are generated when the module loads."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given, note
from hypothesis import strategies as st

from channels.base import Channel, ChannelEvent, TradeState
from channels.errors import CallbackIgnored, CallbackRejected
from channels.registry import build_channel
from core.provision import WechatMerchantKeys
from tests import wechat_forge
from tests.fuzz.conftest import FUZZ_SETTINGS
from tests.fuzz.strategies import dumps, header_values, json_values, weird_text

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

PLATFORM_KEY_ID = "PUB_KEY_ID_0114232134912410000000000000000"


def _pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


WECHAT_MERCHANT = WechatMerchantKeys.generate()
WECHAT_PLATFORM_KEY = _rsa()
WECHAT: Channel = build_channel(
    "wechatpay",
    WECHAT_MERCHANT.credentials(
        platform_public_key_pem=_pem(WECHAT_PLATFORM_KEY),
        platform_public_key_id=PLATFORM_KEY_ID,
        base_url="https://api.mch.weixin.qq.com",
    ),
)
ALIPAY_APP_ID = "2021001144680325"
ALIPAY_KEY = _rsa()
ALIPAY: Channel = build_channel(
    "alipay",
    {
        "app_id": ALIPAY_APP_ID,
        "app_private_key_pem": _private_pem(_rsa()),
        "alipay_public_key_pem": _pem(ALIPAY_KEY),
    },
)


def mostly(valid: Any, other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``valid`` three times in four, so that examples get past the first checks."""
    return st.integers(0, 3).flatmap(lambda n: st.just(valid) if n else other)


def parse(channel: Channel, headers: dict[str, str], body: bytes) -> ChannelEvent | None:
    """Parse; None when refused or ignored. Anything else raised fails the test."""
    try:
        event = channel.parse_callback(headers, body, now=datetime.now(UTC))
    except (CallbackRejected, CallbackIgnored):
        return None
    assert isinstance(event.event_id, str)
    assert (event.trade is None) != (event.refund is None)
    if event.trade is not None:
        assert isinstance(event.trade.state, TradeState)
        assert isinstance(event.trade.out_trade_no, str)
        assert event.trade.amount_minor is None or isinstance(event.trade.amount_minor, int)
    return event


# -- WeChat Pay ---------------------------------------------------------------------------------

wechat_headers = st.fixed_dictionaries(
    {},
    optional={
        "Wechatpay-Timestamp": header_values,
        "Wechatpay-Nonce": header_values,
        "Wechatpay-Signature": header_values,
        "Wechatpay-Serial": st.just(PLATFORM_KEY_ID) | header_values,
        "Wechatpay-Signature-Type": header_values,
    },
)


@FUZZ_SETTINGS
@given(headers=wechat_headers, body=st.binary(max_size=600))
def test_wechatpay_random_callbacks_are_rejected(headers: dict[str, str], body: bytes) -> None:
    with pytest.raises(CallbackRejected):
        WECHAT.parse_callback(headers, body, now=datetime.now(UTC))


def wechat_signed(body: bytes) -> dict[str, str]:
    """Headers of a genuine platform signature over ``body`` (whatever it holds)."""
    stamp = str(int(datetime.now(UTC).timestamp()))
    nonce = base64.b16encode(os.urandom(16)).decode()
    message = f"{stamp}\n{nonce}\n".encode() + body + b"\n"
    signature = WECHAT_PLATFORM_KEY.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return {
        "Wechatpay-Timestamp": stamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": base64.b64encode(signature).decode(),
        "Wechatpay-Serial": PLATFORM_KEY_ID,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }


@FUZZ_SETTINGS
@given(body=st.one_of(st.binary(max_size=400), json_values.map(dumps)))
def test_wechatpay_signed_junk_bodies_are_rejected_or_parsed(body: bytes) -> None:
    parse(WECHAT, wechat_signed(body), body)


transaction_fields = st.fixed_dictionaries(
    {
        "mchid": mostly(WECHAT_MERCHANT.mchid, weird_text),
        "appid": mostly(WECHAT_MERCHANT.appid, weird_text),
        "out_trade_no": mostly("pay0001", weird_text),
        "trade_state": st.sampled_from(["SUCCESS", "NOTPAY", "CLOSED", "REFUND"]) | weird_text,
        "amount": mostly(
            {"total": 100, "payer_total": 100, "currency": "CNY", "payer_currency": "CNY"},
            st.fixed_dictionaries(
                {},
                optional={
                    "total": st.integers(-(2**70), 2**70) | json_values,
                    "payer_total": json_values,
                    "currency": st.sampled_from(["CNY", "USD"]) | weird_text,
                },
            )
            | json_values,
        ),
    },
    optional={
        "transaction_id": st.just("4200000000000000000000000001") | weird_text,
        "success_time": st.sampled_from(["2026-11-25T20:00:00+08:00", "2026-13-45T99:00:00"])
        | weird_text,
        "trade_type": st.sampled_from(["NATIVE", "JSAPI"]) | weird_text,
        "refund_status": json_values,
        "out_refund_no": weird_text,
    },
)


@FUZZ_SETTINGS
@given(resource=st.one_of(transaction_fields, st.dictionaries(weird_text, json_values)))
def test_wechatpay_signed_and_encrypted_junk_is_rejected_or_parsed(
    resource: dict[str, Any],
) -> None:
    try:
        headers, body = wechat_forge.callback(
            resource,
            apiv3_key=WECHAT_MERCHANT.apiv3_key,
            signing_key=WECHAT_PLATFORM_KEY,
            serial=PLATFORM_KEY_ID,
        )
    except (orjson.JSONEncodeError, UnicodeEncodeError):
        return  # an integer or string orjson cannot write: not a body WeChat could send
    note(f"resource {resource!r}")
    parse(WECHAT, headers, body)


# -- Alipay -------------------------------------------------------------------------------------

alipay_fields = st.fixed_dictionaries(
    {
        "notify_id": mostly("2026112500222120531000000000", weird_text),
        "app_id": mostly(ALIPAY_APP_ID, weird_text),
        "out_trade_no": mostly("pay0001", weird_text),
        "trade_status": st.sampled_from(
            ["TRADE_SUCCESS", "TRADE_FINISHED", "WAIT_BUYER_PAY", "TRADE_CLOSED"]
        )
        | weird_text,
        "total_amount": st.sampled_from(["19.99", "0.01", "-1", "1e9", "NaN", "1.001"])
        | weird_text,
    },
    optional={
        "notify_type": mostly("trade_status_sync", weird_text),
        "notify_time": st.sampled_from(["2026-11-25 12:05:32", "2026-02-30 25:61:00"]) | weird_text,
        "auth_app_id": st.just(ALIPAY_APP_ID) | weird_text,
        "trade_no": st.just("2026112522001404070200176844") | weird_text,
        "seller_id": weird_text,
        "gmt_payment": st.sampled_from(["2026-11-25 12:05:31", "yesterday"]) | weird_text,
        "charset": st.sampled_from(["utf-8", "GBK", "gb2312", "utf-16", "x-junk", ""]) | weird_text,
        "out_biz_no": weird_text,
        "refund_fee": st.sampled_from(["1.00", "-0.01"]) | weird_text,
        "gmt_refund": weird_text,
    },
)

FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


@FUZZ_SETTINGS
@given(
    headers=st.one_of(
        st.just(FORM), st.fixed_dictionaries({}, optional={"Content-Type": header_values})
    ),
    body=st.one_of(
        st.binary(max_size=600),
        alipay_fields.map(lambda fields: urlencode(fields, errors="surrogatepass").encode()),
    ),
)
def test_alipay_random_notifications_are_rejected(headers: dict[str, str], body: bytes) -> None:
    with pytest.raises(CallbackRejected):
        ALIPAY.parse_callback(headers, body, now=datetime.now(UTC))


def alipay_signed(fields: dict[str, str], codec: str) -> bytes | None:
    """A form body genuinely signed with the Alipay key over ``fields`` (every field but
    sign/sign_type, sorted, ``k=v`` joined by ``&``), in ``codec``; None if not encodable."""
    message = "&".join(f"{key}={fields[key]}" for key in sorted(fields))
    try:
        signed = message.encode(codec)
        signature = ALIPAY_KEY.sign(signed, padding.PKCS1v15(), hashes.SHA256())
        form = {**fields, "sign": base64.b64encode(signature).decode(), "sign_type": "RSA2"}
        return urlencode(form, encoding=codec).encode("ascii")
    except (LookupError, ValueError):  # no such codec (or a NUL in its name); not encodable
        return None


@FUZZ_SETTINGS
@given(fields=alipay_fields)
def test_alipay_signed_junk_is_rejected_or_parsed(fields: dict[str, str]) -> None:
    codec = fields.get("charset") or "utf-8"
    body = alipay_signed(fields, codec) or alipay_signed(fields, "utf-8")
    if body is None:
        return  # a lone surrogate: no sender can encode it
    note(f"body {body[:400]!r}")
    parse(ALIPAY, FORM, body)
