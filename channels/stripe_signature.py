"""Stripe's webhook signatures (``Stripe-Signature: t=…,v1=…``): signing, parsing the header,
and verifying a body against an account's signing secrets within Stripe's tolerance."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime

from channels.errors import CallbackRejected

SIGNATURE_TOLERANCE_SECONDS = 300

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_HEX_SIGNATURE = re.compile(r"[0-9a-f]{64}")


class SignatureRejected(CallbackRejected):
    """A webhook's ``Stripe-Signature`` is missing, malformed, stale or does not verify."""


def sign_payload(secret: str, timestamp: int, body: bytes) -> str:
    """Stripe's v1 scheme: hex HMAC-SHA256 keyed with the whole ``whsec_…`` string over
    ``"{timestamp}." + raw body``."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def parse_signature_header(header: str) -> tuple[int, list[str]]:
    """``t=…,v1=…[,v1=…][,v0=…]`` → (timestamp, v1 signatures); other schemes are ignored."""
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if name == "t":
            if timestamp is not None or not _TIMESTAMP.fullmatch(value):
                raise SignatureRejected("malformed_signature", "bad t= in Stripe-Signature")
            timestamp = int(value)
        elif name == "v1":
            signatures.append(value)
    if timestamp is None:
        raise SignatureRejected("malformed_signature", "Stripe-Signature has no t=")
    if not signatures:
        raise SignatureRejected("missing_signature", "Stripe-Signature has no v1 signature")
    return timestamp, signatures


def verify_signature(
    headers: Mapping[str, str], body: bytes, now: datetime, *, secrets: tuple[str, ...]
) -> None:
    """Accept the body if any v1 signature matches any configured secret and ``t`` is within
    the tolerance (either way: a clock ahead is as suspect as a replay)."""
    header = next(
        (value for name, value in headers.items() if name.lower() == "stripe-signature"), None
    )
    if not header:
        raise SignatureRejected("missing_signature", "no Stripe-Signature header")
    timestamp, candidates = parse_signature_header(header)
    expected = [sign_payload(secret, timestamp, body) for secret in secrets]
    genuine = any(
        hmac.compare_digest(mine, theirs)
        for theirs in candidates
        if _HEX_SIGNATURE.fullmatch(theirs)
        for mine in expected
    )
    if not genuine:
        raise SignatureRejected("bad_signature", "no v1 signature matches")
    if abs(now.timestamp() - timestamp) > SIGNATURE_TOLERANCE_SECONDS:
        raise SignatureRejected("stale_timestamp", f"Stripe-Signature t={timestamp} is stale")
