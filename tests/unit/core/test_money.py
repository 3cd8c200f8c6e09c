from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.money import from_major_string, to_major_string


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (1, "CNY", "0.01"),
        (1234, "CNY", "12.34"),
        (100, "USD", "1.00"),
        (500, "JPY", "500"),
        (0, "CNY", "0.00"),
        (10**12 + 7, "CNY", "10000000000.07"),
    ],
)
def test_major_string_round_trip(minor: int, currency: str, text: str) -> None:
    assert to_major_string(minor, currency) == text
    assert from_major_string(text, currency) == minor


@pytest.mark.parametrize("text", ["0.001", "1.005", "abc", "NaN", "Infinity", ""])
def test_refuses_what_is_not_an_exact_cny_amount(text: str) -> None:
    with pytest.raises(ValueError):
        from_major_string(text, "CNY")


def test_zero_decimal_currency_has_no_minor_unit() -> None:
    with pytest.raises(ValueError):
        from_major_string("1.5", "JPY")


@given(st.integers(min_value=0, max_value=10**13), st.sampled_from(["CNY", "USD", "JPY"]))
def test_conversion_is_exact_for_every_amount(minor: int, currency: str) -> None:
    assert from_major_string(to_major_string(minor, currency), currency) == minor
