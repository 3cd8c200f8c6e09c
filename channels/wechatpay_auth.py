"""WeChat Pay API v3 account configuration and cryptography: the merchant's request
signatures, verification of the platform's answer and callback signatures, and the AEAD
decryption of callback resources. Pure functions of data, shared by the adapter's modules."""

from __future__ import annotations

import base64
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from cryptography.exceptions import InvalidSignature, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from channels import wechatpay_wire as wire
from channels.errors import CallbackRejected

DEFAULT_BASE_URL = "https://api.mch.weixin.qq.com"
AUTH_SCHEME = "WECHATPAY2-SHA256-RSA2048"
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
SIGNTEST_PREFIX = "WECHATPAY/SIGNTEST/"
MAX_CLOCK_SKEW_SECONDS = 300
USER_AGENT = "payfront/0.1 (wechatpay-apiv3)"
CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")

_NONCE_ALPHABET = string.ascii_letters + string.digits
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE_HEADERS = (
    "wechatpay-timestamp",
    "wechatpay-nonce",
    "wechatpay-signature",
    "wechatpay-serial",
    "wechatpay-signature-type",
)


@dataclass(frozen=True)
class WechatPayConfig:
    """One WeChat Pay merchant account in platform-public-key mode; keys are parsed objects."""

    mchid: str
    appid: str
    merchant_serial_no: str
    merchant_private_key: RSAPrivateKey = field(repr=False)
    apiv3_key: bytes = field(repr=False)
    platform_public_key: RSAPublicKey = field(repr=False)
    platform_public_key_id: str
    base_url: str = DEFAULT_BASE_URL

    def __post_init__(self) -> None:
        for name in ("mchid", "appid", "merchant_serial_no", "platform_public_key_id"):
            value = getattr(self, name)
            # These end up inside quoted Authorization parameters and header values.
            if not isinstance(value, str) or not value or '"' in value or not value.isprintable():
                raise ValueError(f"wechatpay config: {name} must be a non-empty printable string")
        if not isinstance(self.apiv3_key, bytes) or len(self.apiv3_key) != 32:
            raise ValueError("wechatpay config: apiv3_key must be exactly 32 bytes")
        if not isinstance(self.merchant_private_key, RSAPrivateKey):
            raise ValueError("wechatpay config: merchant_private_key must be an RSA private key")
        if not isinstance(self.platform_public_key, RSAPublicKey):
            raise ValueError("wechatpay config: platform_public_key must be an RSA public key")
        if not self.base_url.startswith(("https://", "http://")) or self.base_url.endswith("/"):
            raise ValueError("wechatpay config: base_url must be http(s)://host without a '/'")

    @classmethod
    def from_credentials(cls, creds: Mapping[str, str]) -> WechatPayConfig:
        """Parse and validate string credentials (PEM keys, the 32-character APIv3 key)."""

        def required(key: str) -> str:
            value = creds.get(key)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"wechatpay credentials: {key!r} is missing or empty")
            return value.strip()

        apiv3_key = required("apiv3_key")
        if not apiv3_key.isascii() or len(apiv3_key) != 32:
            raise ValueError("wechatpay credentials: 'apiv3_key' must be 32 ASCII characters")
        return cls(
            mchid=required("mchid"),
            appid=required("appid"),
            merchant_serial_no=required("merchant_serial_no"),
            merchant_private_key=_load_private_key(required("merchant_private_key_pem")),
            apiv3_key=apiv3_key.encode("ascii"),
            platform_public_key=_load_public_key(required("platform_public_key_pem")),
            platform_public_key_id=required("platform_public_key_id"),
            base_url=(creds.get("base_url") or DEFAULT_BASE_URL).strip().rstrip("/"),
        )


def _load_private_key(pem: str) -> RSAPrivateKey:
    try:
        key = load_pem_private_key(pem.encode("utf-8"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(
            "wechatpay credentials: merchant_private_key_pem is not a PEM key"
        ) from exc
    if not isinstance(key, RSAPrivateKey) or key.key_size < 2048:
        raise ValueError("wechatpay credentials: merchant private key must be RSA (2048+ bits)")
    return key


def _load_public_key(pem: str) -> RSAPublicKey:
    try:
        key = load_pem_public_key(pem.encode("utf-8"))
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError("wechatpay credentials: platform_public_key_pem is not a PEM key") from exc
    if not isinstance(key, RSAPublicKey) or key.key_size < 2048:
        raise ValueError("wechatpay credentials: platform public key must be RSA (2048+ bits)")
    return key


class SignatureRejected(CallbackRejected):
    """A WeChat Pay response or callback signature is missing, stale or does not verify."""


def random_nonce() -> str:
    """32 random alphanumerics from one read of the OS's randomness (``secrets.choice`` per
    character made 32 reads: ~4 % of a prepay's CPU). Bytes from 248 up are dropped, so each
    of the 62 characters stays equally likely (248 = 4 × 62)."""
    chars: list[str] = []
    while len(chars) < 32:
        chars += [_NONCE_ALPHABET[b % 62] for b in secrets.token_bytes(40) if b < 248]
    return "".join(chars[:32])


def format_time_expire(moment: datetime) -> str:
    """RFC 3339 in Beijing time, as WeChat documents it: ``2026-11-25T20:15:00+08:00``."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("expires_at must be timezone-aware")
    return moment.astimezone(CHINA_TZ).replace(microsecond=0).isoformat()


def signing_lines(*parts: bytes) -> bytes:
    """WeChat's signing strings: every part followed by ``\\n``, the last one included."""
    return b"".join(part + b"\n" for part in parts)


def sign_request(
    private_key: RSAPrivateKey, method: str, url_path: str, timestamp: int, nonce: str, body: bytes
) -> str:
    """Base64 RSA-SHA256 signature of ``METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n``."""
    message = signing_lines(
        method.encode(), url_path.encode(), str(timestamp).encode(), nonce.encode(), body
    )
    return base64.b64encode(private_key.sign(message, PKCS1v15(), SHA256())).decode("ascii")


def verify_response_signature(
    headers: Mapping[str, str], body: bytes, now: datetime, *, config: WechatPayConfig
) -> None:
    """Check a response's or callback's ``Wechatpay-*`` signature headers over the exact body.

    Raises ``SignatureRejected`` with a short machine reason.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    missing = [name for name in _SIGNATURE_HEADERS if not lowered.get(name)]
    if missing:
        raise SignatureRejected("missing_signature", "missing header(s): " + ", ".join(missing))
    timestamp = lowered["wechatpay-timestamp"]
    signature = lowered["wechatpay-signature"]
    serial = lowered["wechatpay-serial"]
    if lowered["wechatpay-signature-type"] != SIGNATURE_TYPE:
        raise SignatureRejected("bad_signature_type", "Wechatpay-Signature-Type is not supported")
    if signature.startswith(SIGNTEST_PREFIX):
        raise SignatureRejected("bad_signature", "WeChat Pay signature probe")
    if serial != config.platform_public_key_id:
        raise SignatureRejected("unknown_serial", f"Wechatpay-Serial {serial!r} is not configured")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise SignatureRejected("bad_timestamp", "Wechatpay-Timestamp is not a unix timestamp")
    if abs(int(timestamp) - now.timestamp()) > MAX_CLOCK_SKEW_SECONDS:
        raise SignatureRejected("stale_timestamp", f"Wechatpay-Timestamp {timestamp} is stale")
    try:
        raw_signature = base64.b64decode(signature, validate=True)
        message = signing_lines(timestamp.encode(), lowered["wechatpay-nonce"].encode(), body)
        config.platform_public_key.verify(raw_signature, message, PKCS1v15(), SHA256())
    except (ValueError, InvalidSignature) as exc:  # bad base64 / non-UTF-8 nonce / mismatch
        raise SignatureRejected("bad_signature", "signature does not verify") from exc


def decrypt_resource(apiv3_key: bytes, resource: wire.CallbackResource) -> bytes:
    try:
        return AESGCM(apiv3_key).decrypt(
            resource.nonce.encode(),
            base64.b64decode(resource.ciphertext, validate=True),
            (resource.associated_data or "").encode(),
        )
    except (ValueError, InvalidTag) as exc:  # bad base64, nonce length, surrogates, tag
        raise CallbackRejected("decrypt_failed", "resource does not decrypt") from exc


def rsa_sign_lines(private_key: RSAPrivateKey, *parts: str) -> str:
    """Base64 RSA-SHA256 over ``part\\n`` for each part: the front-end payment signatures
    (JSAPI ``paySign``, App ``sign``) use the same signing-string rule as API requests."""
    message = signing_lines(*(part.encode() for part in parts))
    return base64.b64encode(private_key.sign(message, PKCS1v15(), SHA256())).decode("ascii")
