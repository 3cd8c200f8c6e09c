"""Tests for sdk/webhooks.py: signing and verifying ``Payfront-Signature`` headers."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

import pytest

from sdk import Event, SignatureVerificationError, compute_signature, sign_webhook, verify_webhook
from sdk.webhooks import parse_signature_header

JsonFactory = Callable[..., dict[str, Any]]
SIGNED_AT = 1_764_072_000


@pytest.fixture
def secret() -> str:
    return f"whsec_{secrets.token_hex(16)}"


@pytest.fixture
def payload(payment_json: JsonFactory) -> bytes:
    event = {
        "id": "evt_01JDX7",
        "object": "event",
        "type": "payment.succeeded",
        "created_at": "2026-11-25T11:31:03Z",
        "data": {"object": payment_json(status="paid", paid_at="2026-11-25T11:31:02Z")},
    }
    return json.dumps(event).encode()


def test_known_answer() -> None:
    # Computed independently: printf '1764072000.{"id":"evt_1"}' | openssl dgst -sha256 -hmac ...
    assert sign_webhook(b'{"id":"evt_1"}', "whsec_test_secret", SIGNED_AT) == (
        "t=1764072000,v1=b8fea8f9df2ce800b912789642214c1923c396bd57f9d8939f7e796ecb8386ad"
    )


def test_valid_signature_returns_the_event(payload: bytes, secret: str) -> None:
    header = sign_webhook(payload, secret, SIGNED_AT)

    event = verify_webhook(payload, header, secret, now=SIGNED_AT + 10)

    assert isinstance(event, Event)
    assert event.id == "evt_01JDX7"
    assert event.type == "payment.succeeded"
    assert event.payment is not None and event.payment.status == "paid"


def test_tampered_body_is_rejected(payload: bytes, secret: str) -> None:
    header = sign_webhook(payload, secret, SIGNED_AT)
    tampered = payload.replace(b'"amount": 100', b'"amount": 1')
    assert tampered != payload

    with pytest.raises(SignatureVerificationError, match="no signature matches"):
        verify_webhook(tampered, header, secret, now=SIGNED_AT)


def test_wrong_secret_is_rejected(payload: bytes, secret: str) -> None:
    header = sign_webhook(payload, f"whsec_{secrets.token_hex(16)}", SIGNED_AT)

    with pytest.raises(SignatureVerificationError, match="no signature matches"):
        verify_webhook(payload, header, secret, now=SIGNED_AT)


def test_moved_timestamp_breaks_the_signature(payload: bytes, secret: str) -> None:
    signature = compute_signature(payload, secret, SIGNED_AT)
    replayed = f"t={SIGNED_AT + 60},v1={signature}"

    with pytest.raises(SignatureVerificationError):
        verify_webhook(payload, replayed, secret, now=SIGNED_AT + 60)


@pytest.mark.parametrize("skew", [301, -301, 86_400])
def test_timestamp_outside_tolerance_is_rejected(payload: bytes, secret: str, skew: int) -> None:
    header = sign_webhook(payload, secret, SIGNED_AT)

    with pytest.raises(SignatureVerificationError, match="tolerance"):
        verify_webhook(payload, header, secret, now=SIGNED_AT + skew)


def test_tolerance_is_configurable(payload: bytes, secret: str) -> None:
    header = sign_webhook(payload, secret, SIGNED_AT)

    verify_webhook(payload, header, secret, now=SIGNED_AT + 300)
    verify_webhook(payload, header, secret, tolerance=3600, now=SIGNED_AT + 3000)
    with pytest.raises(SignatureVerificationError):
        verify_webhook(payload, header, secret, tolerance=5, now=SIGNED_AT + 6)


def test_default_now_is_the_current_time(payload: bytes, secret: str) -> None:
    with pytest.raises(SignatureVerificationError, match="tolerance"):
        verify_webhook(payload, sign_webhook(payload, secret, SIGNED_AT - 10**6), secret)


def test_any_matching_v1_entry_is_enough(payload: bytes, secret: str) -> None:
    old_secret = f"whsec_{secrets.token_hex(16)}"
    header = (
        f"t={SIGNED_AT},"
        f"v1={compute_signature(payload, old_secret, SIGNED_AT)},"
        f"v1={compute_signature(payload, secret, SIGNED_AT)}"
    )

    assert verify_webhook(payload, header, secret, now=SIGNED_AT).id == "evt_01JDX7"
    assert verify_webhook(payload, header, old_secret, now=SIGNED_AT).id == "evt_01JDX7"


def test_unknown_schemes_and_spaces_are_tolerated(payload: bytes, secret: str) -> None:
    signature = compute_signature(payload, secret, SIGNED_AT)
    header = f"t={SIGNED_AT}, v0=deadbeef, v1={signature.upper()}"

    assert verify_webhook(payload, header, secret, now=SIGNED_AT).id == "evt_01JDX7"


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        "t=,v1=abc",
        "t=soon,v1=abc",
        "t=-5,v1=abc",
        "t=1764072000",
        "v1=abc",
        "t=1764072000,t=1764072001,v1=abc",
        "t=1764072000,,v1=abc",
        "t=1764072000,v1",
        "t=1764072000,v2=abc",
        "t=１７６４０７２０００,v1=abc",
    ],
)
def test_malformed_header_is_rejected(payload: bytes, secret: str, header: str) -> None:
    with pytest.raises(SignatureVerificationError):
        verify_webhook(payload, header, secret, now=SIGNED_AT)


def test_non_ascii_signature_is_a_mismatch_not_a_crash(payload: bytes, secret: str) -> None:
    with pytest.raises(SignatureVerificationError, match="no signature matches"):
        verify_webhook(payload, f"t={SIGNED_AT},v1=ünïcode", secret, now=SIGNED_AT)


def test_empty_secret_is_rejected(payload: bytes) -> None:
    header = sign_webhook(payload, "", SIGNED_AT)

    with pytest.raises(SignatureVerificationError):
        verify_webhook(payload, header, "", now=SIGNED_AT)


def test_signed_body_that_is_not_an_event_raises_value_error(secret: str) -> None:
    body = b"not json"

    with pytest.raises(ValueError):
        verify_webhook(body, sign_webhook(body, secret, SIGNED_AT), secret, now=SIGNED_AT)


def test_parse_signature_header_collects_every_v1() -> None:
    parsed = parse_signature_header("t=12,v1=aa,v1=bb")

    assert parsed.timestamp == 12
    assert parsed.signatures == ("aa", "bb")
