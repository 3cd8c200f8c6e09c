"""Alipay's asynchronous notifications: a signed form POSTed to ``notify_url``, sent again on
Alipay's schedule until the answer is the seven characters ``success``.

Alipay's docs (opendocs "异步通知说明"): anything but ``success`` is retried, 8 tries in about
25 hours at 4m, 10m, 10m, 1h, 2h, 6h, 15h. An HTTP 2xx alone is not an acknowledgement (unlike
WeChat Pay's): delivery is ``mock_channels.callbacks.CallbackSender``'s, judged by
``ALIPAY_ACK``.
"""

from __future__ import annotations

from typing import Any

from mock_channels.callbacks import Acknowledgement, CallbackAttempt

ALIPAY_NOTIFY_DELAYS_S: tuple[float, ...] = (
    4 * 60,
    10 * 60,
    10 * 60,
    60 * 60,
    2 * 3600,
    6 * 3600,
    15 * 3600,
)
ACK = "success"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
FORM_HEADERS = {"Content-Type": FORM_CONTENT_TYPE}


def _is_success(status: int, answer: str | None) -> str | None:
    # Surrounding whitespace is tolerated (a println'd "success" is acknowledged).
    if status == 200 and answer is not None and answer.strip() == ACK:
        return None
    return "not acknowledged"


# Alipay compares the start of the merchant's answer with "success".
ALIPAY_ACK = Acknowledgement(_is_success, answer_bytes=256)


def notify_record(attempt: CallbackAttempt) -> dict[str, Any]:
    """One notification attempt as the admin views show it."""
    return {
        "attempt": attempt.attempt,
        "at": attempt.at.isoformat(timespec="milliseconds"),
        "status": attempt.status,
        "answer": attempt.answer,
        "error": attempt.error,
        "acknowledged": attempt.acknowledged,
        "duplicate": attempt.duplicate,
    }
