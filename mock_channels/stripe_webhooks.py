"""How the Stripe emulator signs and schedules webhook deliveries.

Signature (docs.stripe.com/webhooks, "verify events"): header ``Stripe-Signature:
t=TIMESTAMP,v1=HEX[,v1=HEX…]`` where each v1 is hex HMAC-SHA256, keyed with a whole ``whsec_…``
signing secret, over ``"TIMESTAMP." + body``; while a rolled secret has not expired, Stripe
signs with it too (one v1 per secret). Test-mode events also carry a ``v0`` signature that
verifies against nothing: receivers must ignore schemes other than v1. Written against
``hmac`` directly, independently of payfront's adapter.

Retries: Stripe documents only "up to three days with an exponential back off" in live mode
(and "three times over a few hours" in test mode), not the intervals. The schedule below is an
approximation of observed live-mode behaviour — attempts about 5 min, 30 min, 2 h, 4 h, 8 h and
16 h after the first, then daily, the last at 72 h — played faster by the sandbox's
``time_scale``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

STRIPE_RETRY_DELAYS_S: tuple[float, ...] = (
    5 * 60,
    25 * 60,
    90 * 60,
    2 * 3600,
    4 * 3600,
    8 * 3600,
    24 * 3600,
    24 * 3600,
    8 * 3600,
)

# Stripe's webhook requests identify themselves so (docs.stripe.com/webhooks).
USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
_V0_KEY = b"payfront-sandbox-v0-verifies-nothing"


def hmac_hex(key: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(key, f"{timestamp}.".encode("ascii") + body, hashlib.sha256).hexdigest()


def signature_header(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    parts = [f"t={timestamp}"]
    parts += [f"v1={hmac_hex(secret.encode('utf-8'), timestamp, body)}" for secret in secrets]
    parts.append(f"v0={hmac_hex(_V0_KEY, timestamp, body)}")
    return ",".join(parts)


def delivery_headers(secrets: Sequence[str], timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "Cache-Control": "no-cache",
        "Accept": "*/*; q=0.5, application/xml",
        "Stripe-Signature": signature_header(secrets, timestamp, body),
    }
