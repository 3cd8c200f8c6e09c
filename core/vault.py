"""Secrets at rest: AES-256-GCM under the master key; API keys kept only as hashes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "v1"


class Vault:
    """Encrypts and decrypts small secrets (channel credentials, webhook secrets)."""

    def __init__(self, master_key_b64: str) -> None:
        try:
            key = base64.b64decode(master_key_b64, validate=True)
        except ValueError as exc:
            raise ValueError("PAYFRONT_MASTER_KEY is not valid base64") from exc
        if len(key) != 32:
            raise ValueError("PAYFRONT_MASTER_KEY must be base64 of exactly 32 bytes")
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: bytes, *, context: str) -> str:
        # The context (e.g. the row id) is authenticated, so a ciphertext cannot be moved
        # to another row and still decrypt.
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext, context.encode())
        return f"{_VERSION}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, *, context: str) -> bytes:
        version, _, payload = token.partition(":")
        if version != _VERSION:
            raise ValueError(f"unknown secret format {version!r}")
        raw = base64.b64decode(payload)
        return self._aead.decrypt(raw[:12], raw[12:], context.encode())

    def encrypt_json(self, value: dict[str, str], *, context: str) -> str:
        return self.encrypt(orjson.dumps(value), context=context)

    def decrypt_json(self, token: str, *, context: str) -> dict[str, str]:
        value = orjson.loads(self.decrypt(token, context=context))
        if not isinstance(value, dict):
            raise ValueError("encrypted value is not an object")
        return {str(k): str(v) for k, v in value.items()}


def new_master_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def same_secret(left: str, right: str) -> bool:
    return hmac.compare_digest(left.encode(), right.encode())
