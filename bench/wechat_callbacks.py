"""Genuine WeChat Pay ``TRANSACTION.SUCCESS`` notifications, built as the sandbox builds them
(its own AEAD and RSA helpers in ``mock_channels.wechatpay_crypto``): the transaction resource
encrypted with the merchant's APIv3 key, the envelope signed with the sandbox's platform key.
Written to a file that ``wrk_replay.lua`` replays, one request per order."""

from __future__ import annotations

import base64
import os
import secrets
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from core.provision import WechatMerchantKeys
from mock_channels.wechatpay_crypto import (
    AEAD_ALGORITHM,
    SIGNATURE_TYPE,
    aead_encrypt,
    response_signing_string,
    rsa_sign,
)


@dataclass(frozen=True, slots=True)
class Signer:
    """What the channel side needs: the sandbox's platform key and its id, the merchant's ids
    and APIv3 key."""

    platform_key_pem: bytes
    platform_key_id: str
    mchid: str
    appid: str
    apiv3_key: str

    @classmethod
    def of_sandbox(cls, state_dir: Path, keys: WechatMerchantKeys) -> Signer:
        root = state_dir / "wechatpay"
        meta = orjson.loads((root / "platform.json").read_bytes())
        return cls(
            platform_key_pem=(root / "platform_key.pem").read_bytes(),
            platform_key_id=str(meta["public_key_id"]),
            mchid=keys.mchid,
            appid=keys.appid,
            apiv3_key=keys.apiv3_key,
        )


def _transaction(signer: Signer, pay_no: str, amount_minor: int) -> bytes:
    return orjson.dumps(
        {
            "mchid": signer.mchid,
            "appid": signer.appid,
            "out_trade_no": pay_no,
            "transaction_id": "4200" + "".join(secrets.choice("0123456789") for _ in range(24)),
            "trade_type": "NATIVE",
            "trade_state": "SUCCESS",
            "trade_state_desc": "支付成功",
            "bank_type": "OTHERS",
            "attach": "",
            "success_time": "2026-11-25T20:00:00+08:00",
            "payer": {"openid": "o" + secrets.token_hex(12)},
            "amount": {
                "total": amount_minor,
                "payer_total": amount_minor,
                "currency": "CNY",
                "payer_currency": "CNY",
            },
        }
    )


def _request(
    signer: Signer, key: rsa.RSAPrivateKey, pay_no: str, amount_minor: int, host: str
) -> bytes:
    """One notification as an HTTP request without its request line (wrk_replay.lua adds it)."""
    sealed = aead_encrypt(
        signer.apiv3_key, _transaction(signer, pay_no, amount_minor), "transaction"
    )
    body = orjson.dumps(
        {
            "id": secrets.token_hex(16),
            "create_time": "2026-11-25T20:00:01+08:00",
            "resource_type": "encrypt-resource",
            "event_type": "TRANSACTION.SUCCESS",
            "summary": "支付成功",
            "resource": {
                "original_type": "transaction",
                "algorithm": AEAD_ALGORITHM,
                "ciphertext": sealed.ciphertext,
                "associated_data": sealed.associated_data,
                "nonce": sealed.nonce,
            },
        }
    )
    stamp = str(int(time.time()))
    nonce = base64.b16encode(os.urandom(16)).decode()
    signature = rsa_sign(key, response_signing_string(stamp, nonce, body))
    head = (
        f"Host: {host}\r\nContent-Type: application/json\r\n"
        f"Wechatpay-Timestamp: {stamp}\r\nWechatpay-Nonce: {nonce}\r\n"
        f"Wechatpay-Signature: {signature}\r\nWechatpay-Serial: {signer.platform_key_id}\r\n"
        f"Wechatpay-Signature-Type: {SIGNATURE_TYPE}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _build_chunk(signer: Signer, pay_nos: list[str], amount_minor: int, host: str) -> bytes:
    key = serialization.load_pem_private_key(signer.platform_key_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    parts = []
    for pay_no in pay_nos:
        request = _request(signer, key, pay_no, amount_minor, host)
        parts.append(f"{len(request)}\n".encode() + request)
    return b"".join(parts)


def write_callbacks(
    path: Path,
    signer: Signer,
    pay_nos: list[str],
    *,
    amount_minor: int,
    host: str,
    workers: int,
) -> Path:
    """Sign and encrypt one notification per pay order (in ``workers`` processes: an RSA
    signature costs ~200 µs) and write them for ``wrk_replay.lua``, in order."""
    size = max(1, -(-len(pay_nos) // (workers * 4)))
    chunks = [pay_nos[i : i + size] for i in range(0, len(pay_nos), size)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        built = list(
            pool.map(
                _build_chunk,
                [signer] * len(chunks),
                chunks,
                [amount_minor] * len(chunks),
                [host] * len(chunks),
            )
        )
    path.write_bytes(b"".join(built))
    return path
