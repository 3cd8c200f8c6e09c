"""Bodies of the Stripe emulator's sandbox admin API (``/sandbox/stripe``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator


class RegisterAccount(BaseModel):
    """``POST /sandbox/stripe/accounts``: every field optional; given ones are kept, so that a
    sandbox that lost its state can be given back the credentials payfront stores."""

    model_config = ConfigDict(extra="forbid")

    account_id: str | None = Field(default=None, pattern=r"^acct_[A-Za-z0-9]{6,64}$")
    # Test keys only: the sandbox must never hold a live key.
    secret_key: str | None = Field(default=None, pattern=r"^sk_test_[A-Za-z0-9_]{8,200}$")
    webhook_secret: str | None = Field(default=None, pattern=r"^whsec_[A-Za-z0-9_+/=-]{8,200}$")
    webhook_url: str | None = Field(default=None, max_length=2048)
    # The event types the webhook endpoint is subscribed to ("*": all).
    enabled_events: list[str] | None = Field(default=None, min_length=1, max_length=100)
    # Stripe's fee on each charge: percent of the amount plus a fixed part in minor units
    # (default 2.9% + 30, Stripe's US card price).
    fee_percent: Decimal | None = Field(default=None, ge=0, le=100, max_digits=6)
    fee_fixed: int | None = Field(default=None, ge=0, le=100_000)
    # "manual": pending refunds wait for ``POST /sandbox/stripe/refunds/{id}/settle``.
    refund_settlement: Literal["auto", "manual"] | None = None

    @field_validator("webhook_url")
    @classmethod
    def _absolute_http_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                raise ValueError("must be an absolute http or https URL")
        return value


class RollWebhookSecret(BaseModel):
    """``POST /sandbox/stripe/accounts/{account_id}/roll_webhook_secret``: a new signing
    secret; the old one keeps signing (a second v1) for ``keep_previous_s`` (Stripe lets it
    live up to 24 hours), scaled by the sandbox's time_scale."""

    model_config = ConfigDict(extra="forbid")

    keep_previous_s: float = Field(default=24 * 3600, ge=0, le=24 * 3600)


class PayIntent(BaseModel):
    """``POST /sandbox/stripe/payment_intents/{id}/pay``: the shopper's move in Stripe.js."""

    model_config = ConfigDict(extra="forbid")

    outcome: Literal["success", "fail", "processing"] = "success"
    payment_method: str = Field(default="pm_card_visa", pattern=r"^pm_[A-Za-z0-9_]+$")
    decline_code: str = Field(default="generic_decline", pattern=r"^[a-z_]{1,64}$")
    # Report another received amount, to exercise payfront's mismatch handling.
    amount_received: int | None = Field(default=None, ge=0)
    # Paying a succeeded intent is refused unless ``again``: then its event is sent again.
    again: bool = False


class SettleRefund(BaseModel):
    """``POST /sandbox/stripe/refunds/{id}/settle``: Stripe's later move on a refund — a
    pending one succeeds or fails, a succeeded one fails (its card was closed, say)."""

    model_config = ConfigDict(extra="forbid")

    outcome: Literal["succeeded", "failed"] = "succeeded"
    failure_reason: Literal[
        "lost_or_stolen_card",
        "expired_or_canceled_card",
        "charge_for_pending_refund_disputed",
        "insufficient_funds",
        "declined",
        "merchant_request",
        "unknown",
    ] = "expired_or_canceled_card"
