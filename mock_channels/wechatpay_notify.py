"""WeChat Pay notifications as the emulator sends them: the JSON envelope around a resource
encrypted with the merchant's APIv3 key, signed afresh on every send, delivered on WeChat's retry
schedule. Payment (``TRANSACTION.*``) and refund (``REFUND.*``) notifications share all of it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from mock_channels.callbacks import (
    WECHATPAY_RETRY_DELAYS_S,
    CallbackAttempt,
    CallbackJob,
    CallbackSender,
)
from mock_channels.faults import FaultInjector
from mock_channels.wechatpay_crypto import AEAD_ALGORITHM, aead_encrypt
from mock_channels.wechatpay_state import Merchant, rfc3339


def notification_body(
    merchant: Merchant,
    *,
    notification_id: str,
    event_type: str,
    summary: str,
    original_type: str,
    resource: Mapping[str, Any],
    now: dt.datetime,
) -> bytes:
    """The notification exactly as WeChat frames it; ``associated_data`` is the resource type."""
    sealed = aead_encrypt(merchant.apiv3_key, orjson.dumps(resource), original_type)
    notification = {
        "id": notification_id,
        "create_time": rfc3339(now),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": summary,
        "resource": {
            "original_type": original_type,
            "algorithm": AEAD_ALGORITHM,
            "ciphertext": sealed.ciphertext,
            "associated_data": sealed.associated_data,
            "nonce": sealed.nonce,
        },
    }
    return orjson.dumps(notification)


def deliver(
    callbacks: CallbackSender,
    faults: FaultInjector,
    *,
    url: str,
    body: bytes,
    headers_for: Callable[[bytes], Mapping[str, str]],
    attempts: list[dict[str, Any]],
    lose_rate: float,
    duplicate: bool,
) -> bool:
    """Send ``body`` to ``url`` until a 2xx, recording each attempt in ``attempts``; False when
    a ``lose_callbacks`` fault drops it instead."""
    if faults.strikes(lose_rate):
        return False

    def record(attempt: CallbackAttempt) -> None:
        attempts.append(
            {
                "attempt": attempt.attempt,
                "at": rfc3339(attempt.at, millis=True),
                "status": attempt.status,
                "error": attempt.error,
                "duplicate": attempt.duplicate,
            }
        )

    callbacks.start(
        CallbackJob(
            url=url,
            body_for=lambda: body,
            headers_for=lambda sent: {"Content-Type": "application/json", **headers_for(sent)},
            record=record,
            retry_delays_s=WECHATPAY_RETRY_DELAYS_S,
            duplicate=duplicate,
        )
    )
    return True
