"""Hypothesis strategies for hostile HTTP input: JSON of every shape, strings that are huge,
non-ASCII or full of control characters, bytes that are not JSON, and header values."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

# Strings a field validator may not expect: control characters, NUL, lone surrogates
# (escaped in JSON as \ud800), right-to-left marks, emoji, and long runs.
weird_text = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(codec="utf-8"), max_size=40),
    st.text(st.characters(max_codepoint=0x1F), max_size=10),
    st.sampled_from(
        ["", " ", "\x00", "\u202e", "𝔱𝔢𝔞", "\ud800", "'; DROP TABLE pay_orders; --", "%00", "../"]
    ),
    # Long strings are built, not drawn character by character (cheap and reliably long).
    st.builds(
        lambda unit, count: unit * count,
        st.sampled_from(["x", "é", "汉", "😀", "\x00", " "]),
        st.integers(min_value=60, max_value=40_000),
    ),
)

numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -1, 1.5, 1e308, 2**63, 2**64, -(2**63) - 1, 10**30]),
)

json_scalars = st.one_of(st.none(), st.booleans(), numbers, weird_text)

json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(weird_text, children, max_size=4),
    ),
    max_leaves=12,
)


def dumps(value: Any) -> bytes:
    """JSON as Python writes it: big integers and lone surrogates (as escapes) included."""
    return json.dumps(value).encode()


def not_json() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=300),
        st.sampled_from(
            [
                b"",
                b"{",
                b"{}}",
                b'{"amount": 100,}',
                b"[1, 2]",
                b'"just a string"',
                b"null",
                b"NaN",
                b'{"amount": NaN}',
                b'{"a": "\xff\xfe"}',
                b"\xef\xbb\xbf{}",  # a UTF-8 byte-order mark
                b'{"amount": 1' + b"0" * 5000 + b"}",
                b"[" * 5000 + b"]" * 5000,
                b'{"a":' * 2000 + b"1" + b"}" * 2000,
            ]
        ),
    )


def mutated_object(valid: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """``valid`` with some fields replaced by anything, some removed, some added."""
    fields = sorted(valid)
    return st.builds(
        _mutate,
        st.just(valid),
        st.dictionaries(st.sampled_from(fields), json_values, max_size=len(fields)),
        st.sets(st.sampled_from(fields), max_size=2),
        st.dictionaries(weird_text, json_values, max_size=2),
    )


def _mutate(
    valid: dict[str, Any],
    replaced: dict[str, Any],
    removed: set[str],
    added: dict[str, Any],
) -> dict[str, Any]:
    body = {**valid, **replaced}
    for name in removed:
        body.pop(name, None)
    return {**body, **added}


def request_bodies(valid: dict[str, Any]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        mutated_object(valid).map(dumps),
        json_values.map(dumps),
        not_json(),
    )


# Header values HTTP can carry: visible characters and inner spaces (anything else the client
# refuses to send), Latin-1 included (bytes over 0x7f once were a 500: see the regression
# tests in tests/fuzz/test_merchant_api.py).
HEADER_CODEC = "latin-1"

header_values = st.one_of(
    st.text(
        st.characters(
            codec=HEADER_CODEC,
            exclude_categories=["Cc", "Cs"],
            exclude_characters="\x7f",
        ),
        max_size=300,
    ).map(str.strip),
    st.sampled_from(["", "0", "-1", "null", "x" * 8000]),
)
