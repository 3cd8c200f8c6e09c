"""WeChat Pay v3 cryptography as the platform does it: RSA-SHA256 signatures over the v3
signing strings, AEAD_AES_256_GCM resources, and the platform's key pair and certificate.

Written against ``cryptography`` directly, independently of payfront's adapter.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import secrets
import string
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
AEAD_ALGORITHM = "AEAD_AES_256_GCM"

_ALNUM = string.ascii_letters + string.digits


def random_alnum(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def random_digits(length: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(length))


def new_nonce() -> str:
    """A 32-character nonce like the ones WeChat puts in ``Wechatpay-Nonce``."""
    return secrets.token_hex(16).upper()


def request_signing_string(
    method: str, path_with_query: str, timestamp: str, nonce: str, body: bytes
) -> bytes:
    """``METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n`` over the exact body bytes received."""
    head = f"{method}\n{path_with_query}\n{timestamp}\n{nonce}\n".encode()
    return head + body + b"\n"


def response_signing_string(timestamp: str, nonce: str, body: bytes) -> bytes:
    """``TIMESTAMP\\nNONCE\\nBODY\\n``: what the platform signs on answers and callbacks."""
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


def rsa_sign(private_key: rsa.RSAPrivateKey, message: bytes) -> str:
    signature = private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def rsa_verify(public_key: rsa.RSAPublicKey, message: bytes, signature_b64: str) -> bool:
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True, slots=True)
class EncryptedResource:
    nonce: str
    associated_data: str
    ciphertext: str


def aead_encrypt(apiv3_key: str, plaintext: bytes, associated_data: str) -> EncryptedResource:
    """AES-256-GCM with the merchant's APIv3 key; ciphertext is base64(encrypted ‖ tag)."""
    nonce = random_alnum(12)
    sealed = AESGCM(apiv3_key.encode("ascii")).encrypt(
        nonce.encode("ascii"), plaintext, associated_data.encode("utf-8")
    )
    return EncryptedResource(
        nonce=nonce,
        associated_data=associated_data,
        ciphertext=base64.b64encode(sealed).decode("ascii"),
    )


def load_merchant_public_key(pem: str) -> rsa.RSAPublicKey:
    """A merchant's API key as a ``PUBLIC KEY`` PEM or its API certificate PEM."""
    data = pem.strip().encode("ascii")
    key = (
        x509.load_pem_x509_certificate(data).public_key()
        if b"BEGIN CERTIFICATE" in data
        else serialization.load_pem_public_key(data)
    )
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise ValueError("the merchant key must be an RSA key of at least 2048 bits")
    return key


def public_key_pem(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


@dataclass(frozen=True, slots=True)
class PlatformIdentity:
    """The sandbox's WeChat Pay platform key: one key pair, reachable both ways WeChat offers
    (a platform public key with an id, and a platform certificate with a serial number)."""

    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    public_key_id: str

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()

    @property
    def serial_no(self) -> str:
        return format(self.certificate.serial_number, "X")

    def private_key_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def certificate_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def generate_platform_identity(now: dt.datetime | None = None) -> PlatformIdentity:
    """A fresh RSA-2048 key, a self-signed certificate for it and a ``PUB_KEY_ID_…`` id."""
    now = now or dt.datetime.now(dt.UTC)
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tenpay.com (payfront sandbox)"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Sandbox Platform Certificate"),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=5 * 365))
        .sign(private_key, hashes.SHA256())
    )
    return PlatformIdentity(
        private_key=private_key,
        certificate=certificate,
        public_key_id="PUB_KEY_ID_01" + random_digits(26),
    )


def load_platform_identity(
    private_key_pem: bytes, certificate_pem: bytes, public_key_id: str
) -> PlatformIdentity:
    # The sandbox wrote this key itself; the consistency check costs ~50 ms per start.
    private_key = serialization.load_pem_private_key(
        private_key_pem, password=None, unsafe_skip_rsa_key_validation=True
    )
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise ValueError("the stored platform key is not an RSA key")
    certificate = x509.load_pem_x509_certificate(certificate_pem)
    return PlatformIdentity(
        private_key=private_key, certificate=certificate, public_key_id=public_key_id
    )
