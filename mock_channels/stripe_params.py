"""Validation of the decoded parameters of the emulated endpoints, with Stripe's error codes
and messages: unknown parameters are refused, integers and booleans are strict, currencies are
lowercase ISO codes with Stripe's minimum and maximum charge amounts, metadata keeps Stripe's
limits (50 keys, 40-character keys, 500-character values)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from mock_channels.stripe_errors import (
    StripeApiError,
    parameter_invalid,
    parameter_missing,
    parameter_unknown,
)
from mock_channels.stripe_forms import FormError, Params, as_list

# A subset of Stripe's presentment currencies (docs.stripe.com/currencies).
CURRENCIES = frozenset({
    "usd", "eur", "gbp", "jpy", "cny", "hkd", "sgd", "aud", "cad", "chf", "nzd", "sek", "nok",
    "dkk", "krw", "mxn", "brl", "inr", "pln", "czk", "huf", "thb", "myr", "idr", "php", "twd",
    "vnd", "ils", "aed", "sar", "zar",
})  # fmt: skip
# Zero-decimal currencies among them: the amount is in whole units (docs.stripe.com/currencies).
ZERO_DECIMAL = frozenset({"jpy", "krw", "vnd"})
# Minimum charge amounts in the smallest unit (docs.stripe.com/currencies#minimum-and-maximum-
# charge-amounts); currencies not listed are given no minimum here.
MINIMUM_AMOUNTS = {
    "usd": 50, "eur": 50, "gbp": 30, "aud": 50, "cad": 50, "sgd": 50, "hkd": 400, "jpy": 50,
    "chf": 50, "nzd": 50, "sek": 300, "nok": 300, "dkk": 250, "mxn": 1000, "inr": 50,
}  # fmt: skip
MAXIMUM_AMOUNT = 99_999_999  # eight digits
CANCELLATION_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer", "abandoned"})
REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
EXPANDABLE = frozenset({"latest_charge"})

_INTEGER = re.compile(r"-?[0-9]{1,15}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

CREATE_PARAMS = frozenset(
    {
        "amount", "currency", "description", "metadata", "automatic_payment_methods",
        "payment_method_types", "payment_method", "confirm", "capture_method", "receipt_email",
        "return_url", "statement_descriptor", "statement_descriptor_suffix", "expand",
    }
)  # fmt: skip
CONFIRM_PARAMS = frozenset({"payment_method", "return_url", "receipt_email", "expand"})
CANCEL_PARAMS = frozenset({"cancellation_reason", "expand"})
RETRIEVE_PARAMS = frozenset({"expand", "client_secret"})
REFUND_PARAMS = frozenset({"payment_intent", "charge", "amount", "reason", "metadata", "expand"})


def known_only(params: Params, allowed: Iterable[str]) -> None:
    allowed = frozenset(allowed)
    for name in params:
        if name not in allowed:
            raise parameter_unknown(name)


def string(
    params: Params, name: str, *, required: bool = False, max_length: int = 5000
) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise parameter_missing(name)
        return None  # an empty string unsets an optional parameter
    if not isinstance(value, str):
        raise parameter_invalid(name, f"Invalid string: {name} must be a string")
    if len(value) > max_length:
        raise parameter_invalid(
            name, f"Invalid string: {name} must be at most {max_length} characters"
        )
    return value


def integer(params: Params, name: str, *, required: bool = False) -> int | None:
    value = string(params, name, required=required)
    if value is None:
        return None
    if not _INTEGER.fullmatch(value):
        raise parameter_invalid(name, f"Invalid integer: {value}", "parameter_invalid_integer")
    return int(value)


def boolean(params: Params, name: str) -> bool | None:
    value = string(params, name)
    if value is None:
        return None
    if value not in ("true", "false"):
        raise parameter_invalid(name, f"Invalid boolean: {value}")
    return value == "true"


def choice(params: Params, name: str, options: frozenset[str]) -> str | None:
    value = string(params, name)
    if value is not None and value not in options:
        listed = ", ".join(sorted(options))
        raise parameter_invalid(name, f"Invalid {name}: must be one of {listed}")
    return value


def metadata(params: Params, name: str = "metadata") -> dict[str, str]:
    value = params.get(name)
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise parameter_invalid(name, f"Invalid hash: {name} must be a hash")
    if len(value) > 50:
        raise parameter_invalid(name, "You can have up to 50 metadata keys")
    result: dict[str, str] = {}
    for key, item in value.items():
        param = f"{name}[{key}]"
        if len(key) > 40:
            raise parameter_invalid(
                param,
                "Metadata keys can have up to 40 characters, but you passed in a key "
                f"that is {len(key)} characters.",
            )
        if not isinstance(item, str):
            raise parameter_invalid(param, "Invalid metadata value: it must be a string")
        if len(item) > 500:
            raise parameter_invalid(
                param,
                "Metadata values can have up to 500 characters, but you passed in a "
                f"value that is {len(item)} characters.",
            )
        if item != "":  # an empty value unsets the key
            result[key] = item
    return result


def expand(params: Params) -> frozenset[str]:
    if "expand" not in params:
        return frozenset()
    try:
        fields = as_list(params["expand"], "expand")
    except FormError as exc:
        raise parameter_invalid("expand", str(exc)) from None
    for index, field in enumerate(fields):
        if field not in EXPANDABLE:
            raise parameter_invalid(
                f"expand[{index}]", f"This property cannot be expanded ({field})."
            )
    return frozenset(fields)


def _format_amount(amount: int, currency: str) -> str:
    if currency in ZERO_DECIMAL:
        return f"{amount} {currency}"
    return f"{Decimal(amount).scaleb(-2):.2f} {currency}"


def amount_and_currency(params: Params) -> tuple[int, str]:
    amount = integer(params, "amount", required=True)
    currency = string(params, "currency", required=True)
    if amount is None or currency is None:  # required ones are never None; for the checker
        raise parameter_missing("amount" if amount is None else "currency")
    if currency not in CURRENCIES:
        supported = ", ".join(sorted(CURRENCIES))
        raise parameter_invalid(
            "currency",
            f"Invalid currency: {currency}. Stripe currently supports these currencies: "
            f"{supported}",
        )
    if amount < 1:
        raise parameter_invalid("amount", "Invalid positive integer", "parameter_invalid_integer")
    minimum = MINIMUM_AMOUNTS.get(currency, 1)
    if amount < minimum:
        raise parameter_invalid(
            "amount",
            f"Amount must be at least {_format_amount(minimum, currency)}",
            "amount_too_small",
        )
    if amount > MAXIMUM_AMOUNT:
        raise parameter_invalid(
            "amount",
            f"Amount must be no more than {_format_amount(MAXIMUM_AMOUNT, currency)}",
            "amount_too_large",
        )
    return amount, currency


@dataclass(frozen=True)
class CreateIntent:
    amount: int
    currency: str
    description: str | None
    metadata: dict[str, str]
    payment_method_types: list[str]
    automatic_payment_methods: dict[str, Any] | None
    capture_method: str
    payment_method: str | None
    confirm: bool
    receipt_email: str | None
    expand: frozenset[str]


def create_intent(params: Params) -> CreateIntent:
    """``POST /v1/payment_intents``: Stripe's checks, in roughly Stripe's order."""
    known_only(params, CREATE_PARAMS)
    amount, currency = amount_and_currency(params)
    automatic = params.get("automatic_payment_methods")
    types: list[str] = []
    if "payment_method_types" in params:
        try:
            types = [
                str(t) for t in as_list(params["payment_method_types"], "payment_method_types")
            ]
        except FormError as exc:
            raise parameter_invalid("payment_method_types", str(exc)) from None
    automatic_methods: dict[str, Any] | None = None
    if automatic not in (None, ""):
        if not isinstance(automatic, dict):
            raise parameter_invalid("automatic_payment_methods", "Invalid hash")
        known_only(automatic, {"enabled", "allow_redirects"})
        enabled = boolean(automatic, "enabled")
        if enabled is None:
            raise parameter_missing("automatic_payment_methods[enabled]")
        redirects = choice(automatic, "allow_redirects", frozenset({"always", "never"}))
        if enabled:
            automatic_methods = {"allow_redirects": redirects or "always", "enabled": True}
    if automatic_methods is not None and types:
        raise parameter_invalid(
            "payment_method_types",
            "You may only specify one of these parameters: automatic_payment_methods, "
            "payment_method_types.",
        )
    if not types and automatic in (None, ""):
        # Since API version 2023-08-16 automatic payment methods are on by default.
        automatic_methods = {"allow_redirects": "always", "enabled": True}
    capture = choice(
        params, "capture_method", frozenset({"automatic", "automatic_async", "manual"})
    )
    if capture == "manual":
        raise parameter_invalid(
            "capture_method", "The payfront sandbox does not emulate manual capture."
        )
    email = string(params, "receipt_email")
    if email is not None and not _EMAIL.fullmatch(email):
        raise parameter_invalid("receipt_email", f"Invalid email address: {email}", "email_invalid")
    return CreateIntent(
        amount=amount,
        currency=currency,
        description=string(params, "description", max_length=1000),
        metadata=metadata(params),
        payment_method_types=types or ["card"],
        automatic_payment_methods=automatic_methods,
        capture_method=capture or "automatic_async",
        payment_method=string(params, "payment_method"),
        confirm=bool(boolean(params, "confirm")),
        receipt_email=email,
        expand=expand(params),
    )


@dataclass(frozen=True)
class CreateRefund:
    payment_intent: str | None
    charge: str | None
    amount: int | None
    reason: str | None
    metadata: dict[str, str]


def create_refund(params: Params) -> CreateRefund:
    known_only(params, REFUND_PARAMS)
    intent_id = string(params, "payment_intent")
    charge_id = string(params, "charge")
    if intent_id is None and charge_id is None:
        raise StripeApiError(
            400,
            "One of the following params should be provided for this request: "
            "payment_intent or charge.",
            code="parameter_missing",
        )
    amount = integer(params, "amount")
    if amount is not None and amount < 1:
        raise parameter_invalid("amount", "Invalid positive integer", "parameter_invalid_integer")
    return CreateRefund(
        payment_intent=intent_id,
        charge=charge_id,
        amount=amount,
        reason=choice(params, "reason", REFUND_REASONS),
        metadata=metadata(params),
    )
