"""Builds WeChat Pay v3 callbacks from first principles, for tests that play the channel
(or an attacker). Shares no code with channels/ or mock_channels/."""

from __future__ import annotations

import base64
import os
import secrets
import time
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def sandbox_platform_key(state_dir: Path) -> tuple[RSAPrivateKey, str]:
    """The sandbox's platform signing key and its public key id, read from its state."""
    root = state_dir / "wechatpay"
    key = serialization.load_pem_private_key((root / "platform_key.pem").read_bytes(), None)
    assert isinstance(key, RSAPrivateKey)
    meta = orjson.loads((root / "platform.json").read_bytes())
    return key, str(meta["public_key_id"])


def stranger_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def transaction(
    *, mchid: str, appid: str, out_trade_no: str, total: int, currency: str = "CNY"
) -> dict[str, Any]:
    return {
        "mchid": mchid,
        "appid": appid,
        "out_trade_no": out_trade_no,
        "transaction_id": "4200" + "".join(secrets.choice("0123456789") for _ in range(24)),
        "trade_type": "NATIVE",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "attach": "",
        "success_time": "2026-11-25T20:00:00+08:00",
        "payer": {"openid": "o" + secrets.token_hex(12)},
        "amount": {
            "total": total,
            "payer_total": total,
            "currency": currency,
            "payer_currency": currency,
        },
    }


def callback(
    resource: dict[str, Any],
    *,
    apiv3_key: str,
    signing_key: RSAPrivateKey,
    serial: str,
    timestamp: int | None = None,
    event_id: str | None = None,
) -> tuple[dict[str, str], bytes]:
    """Headers and body of a TRANSACTION.SUCCESS notification, encrypted and signed."""
    nonce = secrets.token_hex(6)
    sealed = AESGCM(apiv3_key.encode()).encrypt(
        nonce.encode(), orjson.dumps(resource), b"transaction"
    )
    body = orjson.dumps(
        {
            "id": event_id or secrets.token_hex(16),
            "create_time": "2026-11-25T20:00:01+08:00",
            "resource_type": "encrypt-resource",
            "event_type": "TRANSACTION.SUCCESS",
            "summary": "支付成功",
            "resource": {
                "original_type": "transaction",
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": base64.b64encode(sealed).decode(),
                "associated_data": "transaction",
                "nonce": nonce,
            },
        }
    )
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    header_nonce = base64.b16encode(os.urandom(16)).decode()
    message = f"{stamp}\n{header_nonce}\n".encode() + body + b"\n"
    signature = signing_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    headers = {
        "Content-Type": "application/json",
        "Wechatpay-Timestamp": stamp,
        "Wechatpay-Nonce": header_nonce,
        "Wechatpay-Signature": base64.b64encode(signature).decode(),
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }
    return headers, body
