"""Identifiers: sortable order numbers and unguessable tokens and keys."""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rest = divmod(number, 36)
        chars.append(_ALPHABET[rest])
    return "".join(reversed(chars))


def _sortable(prefix: str) -> str:
    # Milliseconds first so numbers sort by creation time (index locality), then 64 random bits.
    millis = time.time_ns() // 1_000_000
    return f"{prefix}{_base36(millis, 9)}{_base36(secrets.randbits(64), 13)}"


def new_pay_no() -> str:
    """``pay…``: 25 characters, also the channel's out_trade_no (WeChat allows 6–32)."""
    return _sortable("pay")


def new_refund_no() -> str:
    """``rfd…``: 25 characters, also the channel's out_refund_no / out_request_no."""
    return _sortable("rfd")


def new_wallet_id() -> str:
    return _sortable("wal")


def new_transfer_no() -> str:
    return _sortable("tfr")


def new_withdrawal_no() -> str:
    """``wdr…``: 25 characters, also the payout's number at the channel."""
    return _sortable("wdr")


def new_trade_no() -> str:
    return _sortable("trd")


def new_event_id() -> str:
    return _sortable("evt_")


def new_request_id() -> str:
    return _sortable("req_")


def new_token(livemode: bool) -> str:
    """The shopper-facing token: 256 random bits; possession is the credential. Its prefix
    (``tok_live_`` / ``tok_test_``) says which database holds it, so the gateway reads no
    live row for a test token."""
    return ("tok_live_" if livemode else "tok_test_") + secrets.token_urlsafe(32)


def new_api_key(livemode: bool) -> str:
    return ("sk_live_" if livemode else "sk_test_") + secrets.token_urlsafe(32)


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)
