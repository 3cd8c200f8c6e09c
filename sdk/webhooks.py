"""Signing and verifying payfront webhooks (``Payfront-Signature: t=<unix>,v1=<hex>``).

Standard library only, so the server can sign with the very code merchants verify with.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from sdk.errors import SignatureVerificationError
from sdk.models import Event

SIGNATURE_HEADER = "Payfront-Signature"
EVENT_ID_HEADER = "Payfront-Event-Id"
EVENT_TYPE_HEADER = "Payfront-Event-Type"
SIGNATURE_SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


def compute_signature(payload: bytes, secret: str, timestamp: int) -> str:
    """Return the hex ``v1`` signature: HMAC-SHA256 keyed by ``secret`` over ``f"{t}.{body}"``."""
    signed = str(timestamp).encode("ascii") + b"." + payload
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign_webhook(payload: bytes, secret: str, timestamp: int) -> str:
    """Return the ``Payfront-Signature`` header value for ``payload`` signed at ``timestamp``.

    During secret rotation the server signs once per secret and joins the ``v1=`` parts;
    :func:`compute_signature` gives each part.
    """
    return f"t={timestamp},{SIGNATURE_SCHEME}={compute_signature(payload, secret, timestamp)}"


@dataclass(frozen=True, slots=True)
class SignatureHeader:
    """A parsed ``Payfront-Signature`` header: its timestamp and every ``v1`` signature."""

    timestamp: int
    signatures: tuple[str, ...]


def parse_signature_header(header: str) -> SignatureHeader:
    """Parse a ``Payfront-Signature`` header; raises ``SignatureVerificationError`` if malformed.

    Unknown schemes (say a future ``v2``) are ignored so old SDKs keep verifying ``v1``.
    """
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, separator, value = part.strip().partition("=")
        if not separator or not key or not value:
            raise SignatureVerificationError(f"malformed {SIGNATURE_HEADER} header")
        if key == "t":
            if timestamp is not None or not (value.isascii() and value.isdigit()):
                raise SignatureVerificationError(f"malformed timestamp in {SIGNATURE_HEADER}")
            timestamp = int(value)
        elif key == SIGNATURE_SCHEME:
            signatures.append(value)
    if timestamp is None:
        raise SignatureVerificationError(f"no timestamp in {SIGNATURE_HEADER} header")
    if not signatures:
        raise SignatureVerificationError(f"no {SIGNATURE_SCHEME} signature in {SIGNATURE_HEADER}")
    return SignatureHeader(timestamp=timestamp, signatures=tuple(signatures))


def verify_webhook(
    payload: bytes,
    signature_header: str,
    secret: str,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> Event:
    """Verify a webhook's signature and return its parsed :class:`Event`.

    ``payload`` must be the raw request body, byte for byte; ``secret`` the whole ``whsec_…``
    string. The signature timestamp must lie within ``tolerance`` seconds of ``now`` (default:
    the current time) in either direction, which bounds replays. Any one matching ``v1`` entry
    is enough, so verification keeps working while the server signs with an old and a new secret.

    Raises ``SignatureVerificationError`` for a malformed header, a stale timestamp or no match,
    and ``ValueError`` if a correctly signed body is not a valid event.
    """
    if not secret:
        raise SignatureVerificationError("webhook secret is empty")
    parsed = parse_signature_header(signature_header)
    current = time.time() if now is None else now
    if abs(current - parsed.timestamp) > tolerance:
        raise SignatureVerificationError(
            f"signature timestamp {parsed.timestamp} is outside the {tolerance}s tolerance"
        )
    expected = compute_signature(payload, secret, parsed.timestamp).encode("ascii")
    # Check every entry without an early exit on mismatch; compare_digest keeps each constant-time.
    matched = False
    for candidate in parsed.signatures:
        matched |= hmac.compare_digest(expected, candidate.lower().encode("utf-8"))
    if not matched:
        raise SignatureVerificationError("no signature matches the payload")
    return Event.from_json(json.loads(payload))
