"""One Alipay application's configuration (public-key mode): its ids, its key pair and Alipay's
public key, parsed once from the account's string credentials."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.serialization import (
    load_der_private_key,
    load_der_public_key,
    load_pem_private_key,
    load_pem_public_key,
)

DEFAULT_GATEWAY_URL = "https://openapi.alipay.com/gateway.do"


@dataclass(frozen=True)
class AlipayConfig:
    """One Alipay application in public-key mode; keys are parsed objects."""

    app_id: str
    app_private_key: RSAPrivateKey = field(repr=False)
    alipay_public_key: RSAPublicKey = field(repr=False)
    gateway_url: str = DEFAULT_GATEWAY_URL
    seller_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.app_id, str) or not self.app_id or not self.app_id.isprintable():
            raise ValueError("alipay config: app_id must be a non-empty printable string")
        if self.seller_id is not None and (not self.seller_id or not self.seller_id.isprintable()):
            raise ValueError("alipay config: seller_id must be a non-empty printable string")
        if not isinstance(self.app_private_key, RSAPrivateKey):
            raise ValueError("alipay config: app_private_key must be an RSA private key")
        if not isinstance(self.alipay_public_key, RSAPublicKey):
            raise ValueError("alipay config: alipay_public_key must be an RSA public key")
        parts = urlsplit(self.gateway_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError("alipay config: gateway_url must be http(s)://host/path, no query")

    @classmethod
    def from_credentials(cls, creds: Mapping[str, str]) -> AlipayConfig:
        """Parse string credentials: PEM keys (or the bare base64 DER Alipay's key tool gives)."""

        def required(key: str) -> str:
            value = creds.get(key)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"alipay credentials: {key!r} is missing or empty")
            return value.strip()

        seller_id = creds.get("seller_id")
        return cls(
            app_id=required("app_id"),
            app_private_key=_load_private_key(required("app_private_key_pem")),
            alipay_public_key=_load_public_key(required("alipay_public_key_pem")),
            gateway_url=(creds.get("gateway_url") or DEFAULT_GATEWAY_URL).strip(),
            seller_id=seller_id.strip() if isinstance(seller_id, str) and seller_id else None,
        )


def _key_bytes(text: str) -> tuple[bytes, bool]:
    """``(data, is_pem)``: PEM as is, otherwise the base64 body of a DER key."""
    if "-----BEGIN" in text:
        return text.encode("ascii", "replace"), True
    try:
        return base64.b64decode("".join(text.split()), validate=True), False
    except (binascii.Error, ValueError) as exc:
        raise ValueError("alipay credentials: a key is neither PEM nor base64 DER") from exc


def _load_private_key(text: str) -> RSAPrivateKey:
    data, is_pem = _key_bytes(text)
    try:
        key = load_pem_private_key(data, None) if is_pem else load_der_private_key(data, None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError("alipay credentials: app_private_key_pem is not a private key") from exc
    if not isinstance(key, RSAPrivateKey) or key.key_size < 2048:
        raise ValueError("alipay credentials: the app private key must be RSA (2048+ bits)")
    return key


def _load_public_key(text: str) -> RSAPublicKey:
    data, is_pem = _key_bytes(text)
    try:
        key = load_pem_public_key(data) if is_pem else load_der_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError("alipay credentials: alipay_public_key_pem is not a public key") from exc
    if not isinstance(key, RSAPublicKey) or key.key_size < 2048:
        raise ValueError("alipay credentials: the Alipay public key must be RSA (2048+ bits)")
    return key
