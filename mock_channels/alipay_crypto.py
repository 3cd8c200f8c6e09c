"""Alipay OpenAPI cryptography as the gateway does it: RSA2 (RSA-SHA256, PKCS#1 v1.5) over the
sorted ``k=v&…`` string, and the sandbox's Alipay key pair.

Written against ``cryptography`` directly, independently of payfront's adapter.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import string
from collections.abc import Collection, Iterable

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

_ALNUM_LOWER = string.ascii_lowercase + string.digits


def random_digits(length: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(length))


def random_lower_alnum(length: int) -> str:
    return "".join(secrets.choice(_ALNUM_LOWER) for _ in range(length))


def content_to_sign(
    params: Iterable[tuple[str, str]], *, exclude: Collection[str], skip_empty: bool
) -> str:
    """The string Alipay signs: ``key=value`` sorted by key, joined by ``&``, values raw.

    Requests: everything but ``sign``, empty values dropped. Trade notifications: everything but
    ``sign`` and ``sign_type``.
    """
    kept = [(k, v) for k, v in params if k not in exclude and not (skip_empty and v == "")]
    return "&".join(f"{k}={v}" for k, v in sorted(kept))


def rsa2_sign(private_key: rsa.RSAPrivateKey, message: bytes) -> str:
    signature = private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def rsa2_verify(public_key: rsa.RSAPublicKey, message: bytes, signature_b64: str) -> bool:
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True


def load_app_public_key(text: str) -> rsa.RSAPublicKey:
    """An application public key as a PEM (``PUBLIC KEY`` or ``RSA PUBLIC KEY``) or as the bare
    base64 that Alipay's key tool prints and its console takes."""
    stripped = text.strip()
    try:
        if stripped.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(stripped.encode("ascii"))
        else:
            der = base64.b64decode("".join(stripped.split()), validate=True)
            key = serialization.load_der_public_key(der)
    except (binascii.Error, ValueError, UnicodeEncodeError, UnsupportedAlgorithm) as exc:
        raise ValueError("not an RSA public key (PEM or base64 DER)") from exc
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise ValueError("the application key must be an RSA key of at least 2048 bits")
    return key


def public_key_pem(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def generate_alipay_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_alipay_key(pem: bytes) -> rsa.RSAPrivateKey:
    # The sandbox wrote this key itself; the consistency check costs ~50 ms per start.
    key = serialization.load_pem_private_key(
        pem, password=None, unsafe_skip_rsa_key_validation=True
    )
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the stored Alipay key is not an RSA key")
    return key
