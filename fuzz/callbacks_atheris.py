"""Coverage-guided fuzzing (atheris / libFuzzer) of the three channel adapters' ``parse_callback``.

The parsers are pure functions, so this needs no server: keys are generated at start-up, and
each input is turned into one callback for one channel — random bytes, or bytes genuinely
signed (and for WeChat Pay encrypted) with the keys payfront trusts, so that the fuzzer also
reaches the code behind the signature checks. A parser may only return a ``ChannelEvent`` or
raise ``CallbackRejected`` / ``CallbackIgnored``; anything else is a crash, which libFuzzer
reports with the input that caused it (saved as ``crash-…``).

    .venv/bin/pip install atheris        # a wheel for CPython 3.11 on Linux
    mkdir -p .payfront/fuzz-corpus
    .venv/bin/python fuzz/callbacks_atheris.py -max_total_time=600 \
        -artifact_prefix=.payfront/ .payfront/fuzz-corpus
    .venv/bin/python fuzz/callbacks_atheris.py .payfront/crash-<sha1>     # replay one input

See docs/api.md, "Fuzzing".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere

# Coverage feedback from payfront's channel code only (not pydantic, not the standard library).
with atheris.instrument_imports(include=["channels"]):
    import channels.alipay
    import channels.stripe
    import channels.wechatpay  # noqa: F401  (imported to be instrumented)
    from channels.base import Channel, ChannelEvent
    from channels.errors import CallbackIgnored, CallbackRejected
    from channels.registry import build_channel

import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PLATFORM_KEY_ID = "PUB_KEY_ID_0114232134912410000000000000000"
MCHID = "1900000109"
APPID = "wxd678efh567hg6787"
APIV3_KEY = "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6"
ALIPAY_APP_ID = "2021001144680325"
STRIPE_WEBHOOK_SECRET = "whsec_" + base64.b64encode(os.urandom(24)).decode()


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


WECHAT_PLATFORM_KEY = _rsa()
ALIPAY_KEY = _rsa()
CHANNELS: dict[str, Channel] = {
    "wechatpay": build_channel(
        "wechatpay",
        {
            "mchid": MCHID,
            "appid": APPID,
            "merchant_serial_no": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
            "merchant_private_key_pem": _private_pem(_rsa()),
            "apiv3_key": APIV3_KEY,
            "platform_public_key_pem": _public_pem(WECHAT_PLATFORM_KEY),
            "platform_public_key_id": PLATFORM_KEY_ID,
        },
    ),
    "alipay": build_channel(
        "alipay",
        {
            "app_id": ALIPAY_APP_ID,
            "app_private_key_pem": _private_pem(_rsa()),
            "alipay_public_key_pem": _public_pem(ALIPAY_KEY),
        },
    ),
    "stripe": build_channel(
        "stripe",
        {
            "secret_key": "sk_test_51PayfrontFuzz000000000000000",
            "webhook_secret": STRIPE_WEBHOOK_SECRET,
            "account_id": "acct_1PayfrontFuzz",
        },
    ),
}
NAMES = sorted(CHANNELS)


def _pick(fdp: atheris.FuzzedDataProvider, choices: list[object]) -> object:
    """A plausible value most of the time, so that inputs get past the first checks."""
    if fdp.ConsumeIntInRange(0, 3):
        return fdp.PickValueInList(choices)
    return fdp.PickValueInList(
        [fdp.ConsumeUnicodeNoSurrogates(24), fdp.ConsumeInt(9), None, [], {}, True, 0.5]
    )


def _fields(fdp: atheris.FuzzedDataProvider, spec: dict[str, list[object]]) -> dict[str, object]:
    return {
        key: _pick(fdp, choices) for key, choices in spec.items() if fdp.ConsumeIntInRange(0, 7)
    }


WECHAT_TRANSACTION: dict[str, list[object]] = {
    "mchid": [MCHID],
    "appid": [APPID],
    "out_trade_no": ["pay0001", ""],
    "transaction_id": ["4200000000000000000000000001"],
    "trade_state": ["SUCCESS", "NOTPAY", "CLOSED", "REFUND", "PAYERROR"],
    "success_time": ["2026-11-25T20:00:00+08:00", "2026-11-25T20:00:00Z", "2026-02-30T25:00"],
    "amount": [
        {"total": 100, "payer_total": 100, "currency": "CNY", "payer_currency": "CNY"},
        {"total": -1, "currency": "CNY"},
        {"total": 2**63, "currency": "USD"},
        {"total": "100"},
    ],
    "out_refund_no": ["rfd0001"],
    "refund_status": ["SUCCESS", "ABNORMAL", "CLOSED"],
}
ALIPAY_NOTIFY: dict[str, list[object]] = {
    "notify_id": ["2026112500222120531000000000"],
    "notify_type": ["trade_status_sync"],
    "notify_time": ["2026-11-25 12:05:32"],
    "app_id": [ALIPAY_APP_ID],
    "out_trade_no": ["pay0001"],
    "trade_no": ["2026112522001404070200176844"],
    "trade_status": ["TRADE_SUCCESS", "TRADE_FINISHED", "WAIT_BUYER_PAY", "TRADE_CLOSED"],
    "total_amount": ["19.99", "0.01", "-1", "1e9", "NaN", "1.001"],
    "gmt_payment": ["2026-11-25 12:05:31"],
    "charset": ["utf-8", "GBK", "gb2312"],
    "refund_fee": ["1.00"],
    "gmt_refund": ["2026-11-25 12:06:00.123"],
    "out_biz_no": ["rfd0001"],
}
STRIPE_OBJECT: dict[str, list[object]] = {
    "id": ["pi_3PayfrontIntent000001", "re_1", "ch_1"],
    "object": ["payment_intent", "charge", "refund"],
    "amount": [250, 0, -1, 2**53],
    "amount_received": [250, 0],
    "currency": ["usd", "jpy", "cny"],
    "status": ["succeeded", "canceled", "processing", "requires_payment_method"],
    "metadata": [{"pay_no": "pay0001"}, {"refund_no": "rfd0001"}, {}],
    "payment_intent": ["pi_3PayfrontIntent000001"],
    "created": [1795612200],
}


def _json(value: object) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # an integer over 64 bits
        return b"{}"


def _wechat(fdp: atheris.FuzzedDataProvider, mode: int) -> tuple[dict[str, str], bytes]:
    if mode == 2 and fdp.ConsumeBool():
        body = _json(_fields(fdp, WECHAT_TRANSACTION))
    else:
        body = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 4096))
    if mode == 2:  # the body's resource encrypted with the account's APIv3 key
        nonce = "abcdefghijkl"
        sealed = AESGCM(APIV3_KEY.encode()).encrypt(nonce.encode(), body, b"transaction")
        body = orjson.dumps(
            {
                "id": "EV-fuzz",
                "create_time": "2026-11-25T20:00:01+08:00",
                "resource_type": "encrypt-resource",
                "event_type": fdp.PickValueInList(["TRANSACTION.SUCCESS", "REFUND.SUCCESS"]),
                "resource": {
                    "original_type": "transaction",
                    "algorithm": "AEAD_AES_256_GCM",
                    "ciphertext": base64.b64encode(sealed).decode(),
                    "associated_data": "transaction",
                    "nonce": nonce,
                },
            }
        )
    stamp = str(int(time.time()) + fdp.ConsumeIntInRange(-400, 400))
    header_nonce = fdp.ConsumeUnicodeNoSurrogates(40)
    headers = {
        "Wechatpay-Timestamp": stamp,
        "Wechatpay-Nonce": header_nonce,
        "Wechatpay-Serial": PLATFORM_KEY_ID if fdp.ConsumeBool() else fdp.ConsumeUnicode(40),
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }
    if mode:
        message = f"{stamp}\n{header_nonce}\n".encode("utf-8", "surrogatepass") + body + b"\n"
        signature = WECHAT_PLATFORM_KEY.sign(message, padding.PKCS1v15(), hashes.SHA256())
        headers["Wechatpay-Signature"] = base64.b64encode(signature).decode()
    else:
        headers["Wechatpay-Signature"] = fdp.ConsumeUnicode(400)
    return headers, body


def _alipay(fdp: atheris.FuzzedDataProvider, mode: int) -> tuple[dict[str, str], bytes]:
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    if not mode:
        return headers, fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 4096))
    fields = {key: str(value) for key, value in _fields(fdp, ALIPAY_NOTIFY).items()}
    message = "&".join(f"{key}={fields[key]}" for key in sorted(fields)).encode()
    signature = ALIPAY_KEY.sign(message, padding.PKCS1v15(), hashes.SHA256())
    form = {**fields, "sign": base64.b64encode(signature).decode(), "sign_type": "RSA2"}
    return headers, urlencode(form).encode("ascii")


def _stripe(fdp: atheris.FuzzedDataProvider, mode: int) -> tuple[dict[str, str], bytes]:
    if mode and fdp.ConsumeBool():
        event = {
            "id": "evt_fuzz",
            "object": "event",
            "type": _pick(
                fdp,
                [
                    "payment_intent.succeeded",
                    "payment_intent.payment_failed",
                    "payment_intent.canceled",
                    "charge.refunded",
                    "refund.created",
                    "refund.updated",
                    "refund.failed",
                    "charge.succeeded",
                ],
            ),
            "created": fdp.ConsumeInt(5),
            "livemode": False,
            "account": _pick(fdp, ["acct_1PayfrontFuzz", "acct_other"]),
            "data": {"object": _fields(fdp, STRIPE_OBJECT)},
        }
        body = _json(event)
    else:
        body = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 4096))
    if not mode:
        return {"Stripe-Signature": fdp.ConsumeUnicode(200)}, body
    stamp = int(time.time()) + fdp.ConsumeIntInRange(-400, 400)
    signed = str(stamp).encode() + b"." + body
    v1 = hmac.new(STRIPE_WEBHOOK_SECRET.encode(), signed, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={stamp},v1={v1}"}, body


BUILDERS = {"wechatpay": _wechat, "alipay": _alipay, "stripe": _stripe}


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    name = fdp.PickValueInList(NAMES)
    mode = fdp.ConsumeIntInRange(0, 2)  # 0: unsigned, 1: genuinely signed, 2: signed + sealed
    headers, body = BUILDERS[name](fdp, mode)
    try:
        event = CHANNELS[name].parse_callback(headers, body, now=datetime.now(UTC))
    except (CallbackRejected, CallbackIgnored):
        return
    if not isinstance(event, ChannelEvent) or (event.trade is None) == (event.refund is None):
        raise AssertionError(f"{name}: a malformed ChannelEvent: {event!r}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
