"""Money as integer minor units with an ISO 4217 currency; decimal strings only at the edges."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

# Minor-unit exponents for the currencies payfront accepts. Zero-decimal currencies have none.
CURRENCY_EXPONENTS: dict[str, int] = {
    "CNY": 2,
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "HKD": 2,
    "SGD": 2,
    "AUD": 2,
    "CAD": 2,
    "JPY": 0,
    "KRW": 0,
}

MAX_AMOUNT_MINOR = 10**13


def to_major_string(amount_minor: int, currency: str) -> str:
    """``(1234, "CNY") -> "12.34"``: exact, no float."""
    exponent = CURRENCY_EXPONENTS[currency]
    value = Decimal(amount_minor).scaleb(-exponent)
    return f"{value:.{exponent}f}"


def from_major_string(text: str, currency: str) -> int:
    """``("12.34", "CNY") -> 1234``; refuses more decimals than the currency has."""
    exponent = CURRENCY_EXPONENTS[currency]
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"not a decimal amount: {text!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {text!r}")
    scaled = value.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{text!r} has more than {exponent} decimals for {currency}")
    return int(scaled)
