"""The SDK's sans-I/O core: builds API requests and turns responses into models or errors.

The sync and async clients only move bytes; everything they send and every decision about what
came back lives here, so both clients behave identically and tests need no network.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from sdk.errors import APIConnectionError, APIError, PayfrontError, PayfrontTimeout, error_class_for
from sdk.models import (
    Balance,
    Payment,
    Refund,
    Settlement,
    Token,
    WebhookEndpoint,
    refund_list,
)

SDK_VERSION = "0.1.0"
USER_AGENT = f"payfront-python/{SDK_VERSION}"
DEFAULT_BASE_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_LONG_POLL_SECONDS = 30.0
# Every request the SDK makes is safe to repeat (GETs, or a POST carrying an Idempotency-Key),
# so each gets one retry after a transport failure.
MAX_ATTEMPTS = 2

ModelT = TypeVar("ModelT")


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One HTTP request to send, as plain data.

    ``long_poll_seconds`` is how long the server may hold the response, which the sender adds
    to its read timeout.
    """

    method: str
    url: str
    headers: Mapping[str, str]
    params: Mapping[str, str] = field(default_factory=dict)
    content: bytes | None = None
    long_poll_seconds: float = 0.0
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class ApiCall(Generic[ModelT]):
    """A request paired with the parser for its successful response body."""

    request: ApiRequest
    parse_body: Callable[[Mapping[str, Any]], ModelT]

    def handle_response(self, status: int, headers: Mapping[str, str], content: bytes) -> ModelT:
        """Return the parsed model for a 2xx response, or raise the matching ``PayfrontError``."""
        try:
            if not 200 <= status < 300:
                raise error_from_response(status, headers, content)
            body = _decode_json_object(content)
            if body is None:
                raise APIError(
                    "response body is not a JSON object",
                    status=status,
                    request_id=_request_id(headers),
                )
            try:
                return self.parse_body(body)
            except ValueError as exc:
                raise APIError(
                    f"unexpected response from the API: {exc}",
                    status=status,
                    request_id=_request_id(headers),
                ) from exc
        except PayfrontError as exc:
            exc.idempotency_key = self.request.idempotency_key
            raise

    def connection_error(self, exc: Exception) -> APIConnectionError:
        """Wrap a transport failure (the request got no HTTP response) for the caller."""
        error = APIConnectionError(f"could not reach the payfront API: {exc!r}")
        error.idempotency_key = self.request.idempotency_key
        return error


def _request_id(headers: Mapping[str, str]) -> str | None:
    # Plain dicts are case-sensitive; httpx.Headers is not. Scan so both work.
    for name, value in headers.items():
        if name.lower() == "request-id":
            return value
    return None


def _decode_json_object(content: bytes) -> Mapping[str, Any] | None:
    try:
        decoded = json.loads(content)
    except ValueError:
        return None
    return decoded if isinstance(decoded, dict) else None


def error_from_response(status: int, headers: Mapping[str, str], content: bytes) -> PayfrontError:
    """Build the exception for a non-2xx response from its ``{"error": {...}}`` body.

    A body that is not the documented shape (a proxy's HTML page, say) still yields an error of
    the right class, chosen by status.
    """
    body = _decode_json_object(content)
    error_object = body.get("error") if body is not None else None
    if not isinstance(error_object, Mapping):
        error_object = {}

    def text(key: str) -> str | None:
        value = error_object.get(key)
        return value if isinstance(value, str) else None

    error_type = text("type")
    message = text("message") or f"HTTP {status} from the payfront API"
    error_class = error_class_for(error_type, status)
    return error_class(
        message,
        status=status,
        type=error_type,
        code=text("code"),
        param=text("param"),
        request_id=text("request_id") or _request_id(headers),
    )


def _path_segment(value: str, name: str) -> str:
    if not value:
        raise ValueError(f"{name} must not be empty")
    # Quote everything, "/" included, so an identifier can never climb to another route.
    return quote(value, safe="")


def _format_seconds(seconds: float) -> str:
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


class RequestBuilder:
    """Builds the ``ApiCall`` for each API operation of one merchant key and base URL."""

    def __init__(self, api_key: str, base_url: str = DEFAULT_BASE_URL) -> None:
        if not api_key:
            raise ValueError("api_key must not be empty")
        self._api_key = api_key
        self._base_url = base_url.rstrip("/")

    def __repr__(self) -> str:
        # Never show the key itself; its mode prefix is enough to tell test from live.
        return f"RequestBuilder(base_url={self._base_url!r}, api_key={self._api_key[:8]!r}…)"

    @property
    def base_url(self) -> str:
        """The API root every request URL starts with, without a trailing slash."""
        return self._base_url

    def _headers(self, *, authenticated: bool = True) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if authenticated:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def create_payment(
        self,
        *,
        amount: int,
        currency: str,
        merchant_order_no: str,
        description: str,
        channel: str | None = "wechatpay",
        method: str | None = "native",
        expires_in: int | None = None,
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> ApiCall[Payment]:
        """``POST /v1/payments``; generates a UUID4 idempotency key when none is given.

        ``channel=None`` leaves the choice to the merchant's routing rules; ``method`` may
        then name a kind (``qr``, ``redirect``, ``card``, ``in_app``) or be None too.
        """
        body: dict[str, Any] = {
            "amount": amount,
            "currency": currency,
            "merchant_order_no": merchant_order_no,
            "channel": channel,
            "method": method,
            "description": description,
        }
        if channel is None:
            del body["channel"]
        if method is None:
            del body["method"]
        if expires_in is not None:
            body["expires_in"] = expires_in
        if metadata is not None:
            body["metadata"] = dict(metadata)
        key = idempotency_key if idempotency_key is not None else str(uuid.uuid4())
        if not key:
            raise ValueError("idempotency_key must not be empty")
        headers = self._headers()
        headers["Content-Type"] = "application/json"
        headers["Idempotency-Key"] = key
        request = ApiRequest(
            method="POST",
            url=f"{self._base_url}/v1/payments",
            headers=headers,
            content=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
            idempotency_key=key,
        )
        return ApiCall(request, Payment.from_json)

    def get_payment(self, pay_no: str) -> ApiCall[Payment]:
        """``GET /v1/payments/{pay_no}``."""
        request = ApiRequest(
            method="GET",
            url=f"{self._base_url}/v1/payments/{_path_segment(pay_no, 'pay_no')}",
            headers=self._headers(),
        )
        return ApiCall(request, Payment.from_json)

    def create_refund(
        self,
        pay_no: str,
        *,
        amount: int | None = None,
        reason: str | None = None,
        merchant_refund_no: str | None = None,
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> ApiCall[Refund]:
        """``POST /v1/payments/{pay_no}/refunds``; no ``amount``: all that is left."""
        body: dict[str, Any] = {}
        if amount is not None:
            body["amount"] = amount
        if reason is not None:
            body["reason"] = reason
        if merchant_refund_no is not None:
            body["merchant_refund_no"] = merchant_refund_no
        if metadata is not None:
            body["metadata"] = dict(metadata)
        key = idempotency_key if idempotency_key is not None else str(uuid.uuid4())
        if not key:
            raise ValueError("idempotency_key must not be empty")
        headers = self._headers()
        headers["Content-Type"] = "application/json"
        headers["Idempotency-Key"] = key
        request = ApiRequest(
            method="POST",
            url=f"{self._base_url}/v1/payments/{_path_segment(pay_no, 'pay_no')}/refunds",
            headers=headers,
            content=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
            idempotency_key=key,
        )
        return ApiCall(request, Refund.from_json)

    def get_refund(self, refund_no: str) -> ApiCall[Refund]:
        """``GET /v1/refunds/{refund_no}``."""
        request = ApiRequest(
            method="GET",
            url=f"{self._base_url}/v1/refunds/{_path_segment(refund_no, 'refund_no')}",
            headers=self._headers(),
        )
        return ApiCall(request, Refund.from_json)

    def list_refunds(self, pay_no: str) -> ApiCall[list[Refund]]:
        """``GET /v1/payments/{pay_no}/refunds``, oldest first."""
        request = ApiRequest(
            method="GET",
            url=f"{self._base_url}/v1/payments/{_path_segment(pay_no, 'pay_no')}/refunds",
            headers=self._headers(),
        )
        return ApiCall(request, refund_list)

    def create_webhook_endpoint(self, url: str) -> ApiCall[WebhookEndpoint]:
        """``POST /v1/webhook_endpoints``; the answer carries the signing secret, once."""
        headers = self._headers()
        headers["Content-Type"] = "application/json"
        request = ApiRequest(
            method="POST",
            url=f"{self._base_url}/v1/webhook_endpoints",
            headers=headers,
            content=json.dumps({"url": url}).encode("utf-8"),
        )
        return ApiCall(request, WebhookEndpoint.from_json)

    def get_token(self, token: str, *, wait: float = 0) -> ApiCall[Token]:
        """``GET /v1/tokens/{token}?wait=…``; the token is its own credential, so no API key."""
        if not 0 <= wait <= MAX_LONG_POLL_SECONDS:  # NaN fails too
            raise ValueError(f"wait must be between 0 and {MAX_LONG_POLL_SECONDS:g} seconds")
        request = ApiRequest(
            method="GET",
            url=f"{self._base_url}/v1/tokens/{_path_segment(token, 'token')}",
            headers=self._headers(authenticated=False),
            params={"wait": _format_seconds(wait)} if wait > 0 else {},
            long_poll_seconds=wait,
        )
        return ApiCall(request, Token.from_json)

    def get_balance(self) -> ApiCall[Balance]:
        """``GET /v1/balance``."""
        request = ApiRequest(
            method="GET", url=f"{self._base_url}/v1/balance", headers=self._headers()
        )
        return ApiCall(request, Balance.from_json)

    def get_settlement(self, day: date, currency: str) -> ApiCall[Settlement]:
        """``GET /v1/settlements?date=…&currency=…``."""
        if not currency:
            raise ValueError("currency must not be empty")
        request = ApiRequest(
            method="GET",
            url=f"{self._base_url}/v1/settlements",
            headers=self._headers(),
            params={"date": day.isoformat(), "currency": currency},
        )
        return ApiCall(request, Settlement.from_json)


class CredentialWait:
    """The deadline logic of ``wait_for_credential``, shared by both clients.

    Each round long-polls for the time left (at most 30 s); the wait ends when the token is no
    longer pending/prepaying, or with ``PayfrontTimeout`` once the deadline has passed.
    """

    def __init__(
        self, token: str, timeout: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if timeout < 0 or math.isnan(timeout):
            raise ValueError("timeout must not be negative")
        self.token = token
        self._timeout = timeout
        self._clock = clock
        self._deadline = clock() + timeout

    def next_wait(self) -> float:
        """Seconds the next long-poll may last: the time left, capped at the server's limit."""
        remaining = self._deadline - self._clock()
        # Whole milliseconds, as sent on the wire, so the request and the read timeout agree.
        return round(min(max(remaining, 0.0), MAX_LONG_POLL_SECONDS), 3)

    def outcome(self, token: Token) -> Token | None:
        """Return ``token`` if settled, ``None`` to poll again; raise once past the deadline."""
        if not token.is_waiting:
            return token
        if self._clock() >= self._deadline:
            raise PayfrontTimeout(
                f"token is still {token.status!r} after {self._timeout:g}s",
            )
        return None
