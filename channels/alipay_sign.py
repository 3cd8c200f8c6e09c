"""Alipay OpenAPI RSA2 signatures: the ``k=v&…`` signing string, the exact signed span of a
JSON answer located in the raw bytes, and the notify form read as received.

Pure functions over bytes and ``cryptography`` keys; the adapter (``channels.alipay``) uses them.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.hashes import SHA256

# Charsets Alipay names in ``charset`` and the Python codec that reads each (GBK covers GB2312).
CHARSETS: Mapping[str, str] = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "gbk": "gbk",
    "gb2312": "gbk",
    "gb18030": "gb18030",
}
MAX_FORM_BYTES = 64 * 1024
MAX_FORM_FIELDS = 200
_JSON_WHITESPACE = b" \t\r\n"


def signing_string(
    params: Iterable[tuple[str, str]], *, exclude: Collection[str], skip_empty: bool
) -> str:
    """``k=v`` pairs sorted by key and joined with ``&``, raw values (no encoding).

    Requests skip empty values and exclude ``sign``; trade notifications exclude ``sign`` and
    ``sign_type`` and keep every received parameter.
    """
    items = sorted(
        (key, value) for key, value in params if key not in exclude and (value or not skip_empty)
    )
    return "&".join(f"{key}={value}" for key, value in items)


def rsa2_sign(private_key: RSAPrivateKey, message: bytes) -> str:
    """Base64 RSA-SHA256 (PKCS#1 v1.5) signature, as Alipay's ``sign`` carries it."""
    return base64.b64encode(private_key.sign(message, PKCS1v15(), SHA256())).decode("ascii")


def rsa2_verify(public_key: RSAPublicKey, message: bytes, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
        public_key.verify(raw, message, PKCS1v15(), SHA256())
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True


# -- answers --------------------------------------------------------------------------------


class MalformedAnswer(ValueError):
    """The answer is not a JSON object of the shape Alipay sends."""


@dataclass(frozen=True, slots=True)
class SignedAnswer:
    """One gateway answer: the ``…_response`` member as the exact bytes received, and ``sign``."""

    response_key: str
    content: bytes
    sign: str | None


def _skip_whitespace(body: bytes, pos: int) -> int:
    while pos < len(body) and body[pos] in _JSON_WHITESPACE:
        pos += 1
    return pos


def _end_of_string(body: bytes, pos: int) -> int:
    """``body[pos]`` is an opening quote; the index just past the closing one.

    Byte-wise scanning is safe for UTF-8: no byte of a multi-byte character is ASCII.
    """
    pos += 1
    while pos < len(body):
        byte = body[pos]
        if byte == 0x5C:  # backslash: skip the escaped character
            pos += 2
        elif byte == 0x22:
            return pos + 1
        else:
            pos += 1
    raise MalformedAnswer("unterminated string")


def _end_of_value(body: bytes, pos: int) -> int:
    """The index just past the JSON value starting at ``pos`` (strings and nesting aware)."""
    if pos >= len(body):
        raise MalformedAnswer("missing value")
    if body[pos] == 0x22:
        return _end_of_string(body, pos)
    if body[pos] in b"{[":
        depth = 0
        while pos < len(body):
            byte = body[pos]
            if byte == 0x22:
                pos = _end_of_string(body, pos)
                continue
            if byte in b"{[":
                depth += 1
            elif byte in b"}]":
                depth -= 1
                if depth == 0:
                    return pos + 1
            pos += 1
        raise MalformedAnswer("unterminated object or array")
    end = pos
    while end < len(body) and body[end] not in b",}]" and body[end] not in _JSON_WHITESPACE:
        end += 1
    if end == pos:
        raise MalformedAnswer("missing value")
    return end


def top_level_members(body: bytes) -> list[tuple[str, int, int]]:
    """``(key, start, end)`` of every member of the JSON object ``body``: each value's exact
    byte span, as received. Raises ``MalformedAnswer`` unless ``body`` is one valid object."""
    try:
        if not isinstance(orjson.loads(body), dict):
            raise MalformedAnswer("not a JSON object")
    except orjson.JSONDecodeError as exc:
        raise MalformedAnswer("not JSON") from exc
    # Valid JSON from here on: the scan only has to find where each value starts and ends.
    members: list[tuple[str, int, int]] = []
    pos = _skip_whitespace(body, 0) + 1  # past "{"
    pos = _skip_whitespace(body, pos)
    while body[pos] != 0x7D:  # "}"
        key_end = _end_of_string(body, pos)
        key = orjson.loads(body[pos:key_end])
        pos = _skip_whitespace(body, _skip_whitespace(body, key_end) + 1)  # past ":"
        end = _end_of_value(body, pos)
        members.append((key, pos, end))
        pos = _skip_whitespace(body, end)
        if body[pos] == 0x2C:  # ","
            pos = _skip_whitespace(body, pos + 1)
    return members


def open_answer(body: bytes, response_key: str) -> SignedAnswer:
    """Locate ``response_key`` (or ``error_response``) and ``sign`` in a gateway answer.

    The signed content is the value's exact bytes; it is never re-serialised.
    """
    members = top_level_members(body)
    keys = [key for key, _, _ in members]
    if len(set(keys)) != len(keys):
        raise MalformedAnswer("duplicate member")
    spans = {key: (start, end) for key, start, end in members}
    found = next((key for key in (response_key, "error_response") if key in spans), None)
    if found is None:
        raise MalformedAnswer(f"no {response_key!r} member")
    start, end = spans[found]
    if body[start] != 0x7B:
        raise MalformedAnswer(f"{found!r} is not an object")
    sign: str | None = None
    if "sign" in spans:
        sign_start, sign_end = spans["sign"]
        value = orjson.loads(body[sign_start:sign_end])
        if not isinstance(value, str):
            raise MalformedAnswer("sign is not a string")
        sign = value
    return SignedAnswer(response_key=found, content=body[start:end], sign=sign)


# -- notify forms ---------------------------------------------------------------------------


class MalformedForm(ValueError):
    """The body is not an ``application/x-www-form-urlencoded`` form Alipay would send."""


@dataclass(frozen=True, slots=True)
class NotifyForm:
    """A notify body decoded in its own ``charset``: fields in received order, values raw."""

    fields: tuple[tuple[str, str], ...]
    codec: str

    def get(self, key: str) -> str | None:
        return next((value for name, value in self.fields if name == key), None)


def parse_notify_form(body: bytes) -> NotifyForm:
    """Decode a notify form with the codec its ``charset`` field names (UTF-8 without one).

    Percent-escapes and any raw bytes are read in that charset; ``+`` is a space.
    """
    if len(body) > MAX_FORM_BYTES:
        raise MalformedForm("body too large")
    try:
        # Latin-1 maps every byte: enough to find the (ASCII) charset field before decoding.
        probe = parse_qsl(
            body.decode("latin-1"),
            keep_blank_values=True,
            encoding="latin-1",
            max_num_fields=MAX_FORM_FIELDS,
        )
        declared = {value for key, value in probe if key == "charset"}
        if len(declared) > 1:
            raise MalformedForm("several charsets")
        codec = CHARSETS.get((declared.pop() if declared else "utf-8").strip().lower())
        if codec is None:
            raise MalformedForm("unsupported charset")
        fields = parse_qsl(
            body.decode(codec),
            keep_blank_values=True,
            encoding=codec,
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except ValueError as exc:  # UnicodeDecodeError, too many fields, MalformedForm itself
        if isinstance(exc, MalformedForm):
            raise
        raise MalformedForm(str(exc)) from exc
    names = [name for name, _ in fields]
    if len(set(names)) != len(names):
        raise MalformedForm("duplicate field")
    return NotifyForm(fields=tuple(fields), codec=codec)
