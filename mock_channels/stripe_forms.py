"""Stripe's form-encoded parameters decoded into nested data, the way Stripe's API reads them.

``metadata[pay_no]=P1`` is ``{"metadata": {"pay_no": "P1"}}``; ``expand[]=a&expand[]=b`` is
``{"expand": ["a", "b"]}``; indexed keys (``items[0][price]=…``, as stripe-python writes every
list) stay a mapping of index strings until a reader asks for a list (``as_list``), because a
mapping such as ``metadata`` may have digit keys. Brackets may come literal (stripe-python) or
percent-encoded (``%5B``/``%5D``). Every value is a string, as on the wire.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

_NAME = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")
_SUBSCRIPT = re.compile(r"\[([^\[\]]*)\]")
_INDEX = re.compile(r"0|[1-9][0-9]{0,5}")

Params = dict[str, Any]


class FormError(ValueError):
    """The body cannot be read as Stripe parameters; ``param`` names the offending key."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def decode_form(text: str) -> Params:
    """Nested parameters from ``application/x-www-form-urlencoded`` text (or a query string).

    A repeated scalar key keeps its last value; a key used both as a scalar and as a hash or
    array is refused.
    """
    root: Params = {}
    try:
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise FormError("Invalid request: the parameters are not UTF-8") from None
    for raw_name, value in pairs:
        match = _NAME.fullmatch(raw_name)
        if match is None:
            raise FormError(f"Invalid parameter name: {raw_name!r}", raw_name)
        path = [match.group(1), *_SUBSCRIPT.findall(match.group(2))]
        _insert(root, path, value, raw_name)
    return root


def _insert(node: Params, path: list[str], value: str, raw_name: str) -> None:
    head, rest = path[0], path[1:]
    existing = node.get(head)
    if not rest:
        if isinstance(existing, dict | list):
            raise FormError(f"Invalid value for {raw_name}: it is also a hash or array", head)
        node[head] = value
        return
    if rest[0] == "":  # name[]: append
        if len(rest) > 1:
            raise FormError(f"Invalid parameter name: {raw_name!r}", raw_name)
        if existing is None:
            existing = node[head] = []
        if not isinstance(existing, list):
            raise FormError(f"Invalid array: {raw_name} is also a scalar or hash", head)
        existing.append(value)
        return
    if existing is None:
        existing = node[head] = {}
    if not isinstance(existing, dict):
        raise FormError(f"Invalid hash: {raw_name} is also a scalar or array", head)
    _insert(existing, rest, value, raw_name)


def as_list(value: Any, param: str) -> list[Any]:
    """A list parameter given as ``p[]=…`` or ``p[0]=…&p[1]=…`` (indices 0..n-1 in any order)."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and all(_INDEX.fullmatch(key) for key in value):
        indices = sorted(int(key) for key in value)
        if indices != list(range(len(indices))):
            raise FormError(f"Invalid array: {param} indices must run from 0", param)
        return [value[str(index)] for index in indices]
    if value == "":
        return []
    raise FormError(f"Invalid array: {param}", param)
