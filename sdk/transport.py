"""httpx glue shared by the sync and async clients: request building, timeouts, retry policy."""

from __future__ import annotations

import httpx

from sdk.protocol import ApiRequest

# Failures after which the server may or may not have seen the request; replaying is safe
# because every SDK request is a GET or carries an Idempotency-Key.
_RETRYABLE_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def is_retryable(exc: httpx.TransportError) -> bool:
    """True for connection failures and timeouts, which earn the request its one retry."""
    return isinstance(exc, _RETRYABLE_ERRORS)


def build_http_request(
    http_client: httpx.Client | httpx.AsyncClient, request: ApiRequest, timeout: float
) -> httpx.Request:
    """Turn an ``ApiRequest`` into an ``httpx.Request`` carrying the client's defaults.

    A long-poll gets its read timeout extended by the time the server may hold it; other
    requests keep the client's own timeout.
    """
    http_request = http_client.build_request(
        request.method,
        request.url,
        headers=request.headers,
        params=request.params,
        content=request.content,
    )
    if request.long_poll_seconds > 0:
        long_poll_timeout = httpx.Timeout(timeout, read=timeout + request.long_poll_seconds)
        http_request.extensions["timeout"] = long_poll_timeout.as_dict()
    return http_request
