"""The small part that sends: one shared httpx client over aiohttp, errors classified.

A connect error or pool timeout means nothing was sent (retry is safe); anything after the
request may have left is an unknown outcome (query before anything else).
"""

from __future__ import annotations

from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from channels.base import HttpRequest, HttpResponse
from channels.errors import ChannelModeViolation, ChannelRetryable, ChannelUnknownOutcome

# aiohttp errors that are raised before a byte of the request is written.
_NOT_SENT_AIOHTTP = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)


# The header every answer of payfront's sandbox carries (mock_channels.app).
SANDBOX_HEADER = "Payfront-Sandbox"


def _origin(url: httpx.URL) -> str:
    port = url.port or (443 if url.scheme == "https" else 80)
    return f"{url.scheme}://{url.host.lower()}:{port}"


class ModeGuard:
    """Keeps a mode's channel calls on its side of the line, on every request the client
    sends: test mode talks only to the sandbox origins, and only to something that answers
    as the sandbox; live mode never sends to a sandbox origin, and refuses any answer that
    says it comes from a sandbox. A refusal is ``ChannelModeViolation`` (never retried)."""

    def __init__(self, *, test_mode: bool, sandbox_origins: frozenset[str]) -> None:
        self.test_mode = test_mode
        self.sandbox_origins = sandbox_origins

    async def on_request(self, request: httpx.Request) -> None:
        to_sandbox = _origin(request.url) in self.sandbox_origins
        if self.test_mode and not to_sandbox:
            raise ChannelModeViolation(
                "TEST_MODE_OUTSIDE_SANDBOX",
                f"test mode sends channel calls only to the sandbox, not {_origin(request.url)}",
            )
        if not self.test_mode and to_sandbox:
            raise ChannelModeViolation(
                "LIVE_MODE_TO_SANDBOX",
                f"live mode never calls the sandbox ({_origin(request.url)})",
            )

    async def on_response(self, response: httpx.Response) -> None:
        from_sandbox = response.headers.get(SANDBOX_HEADER) == "1"
        if self.test_mode and not from_sandbox:
            raise ChannelModeViolation(
                "TEST_MODE_OUTSIDE_SANDBOX", "the answer did not come from payfront's sandbox"
            )
        if not self.test_mode and from_sandbox:
            raise ChannelModeViolation(
                "LIVE_MODE_TO_SANDBOX", "a live-mode call was answered by a sandbox"
            )


def new_http_client(
    *,
    timeout_s: float,
    connect_timeout_s: float,
    max_connections: int,
    guard: ModeGuard | None = None,
) -> httpx.AsyncClient:
    """The client every channel call goes through (httpx API, aiohttp's faster pool);
    with ``guard``, every request and answer passes its mode check."""
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    hooks: dict[str, list[Any]] = {}
    if guard is not None:
        hooks = {"request": [guard.on_request], "response": [guard.on_response]}
    return httpx.AsyncClient(
        transport=AiohttpTransport(limits=limits),
        timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s, pool=connect_timeout_s),
        follow_redirects=False,
        event_hooks=hooks,
    )


def nothing_was_sent(exc: httpx.HTTPError) -> bool:
    """True only when the request certainly never left.

    httpx_aiohttp maps every aiohttp connection error, including a server disconnect or a
    read timeout after sending, to ``httpx.ConnectTimeout``; so look at the aiohttp cause.
    """
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientError | TimeoutError):
        return isinstance(cause, _NOT_SENT_AIOHTTP)
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


async def send(
    client: httpx.AsyncClient, request: HttpRequest, *, traceparent: str | None = None
) -> HttpResponse:
    """Send a built request as it is (its body is what was signed); ``traceparent`` is added
    as a header, which no channel signs."""
    headers = dict(request.headers)
    if traceparent is not None:
        headers["traceparent"] = traceparent
    try:
        response = await client.request(
            request.method, request.url, headers=headers, content=request.body
        )
        body = response.content
    except httpx.HTTPError as exc:
        detail = f"{type(exc).__name__}: {exc}"
        if nothing_was_sent(exc):
            raise ChannelRetryable("CONNECT_FAILED", detail) from exc
        raise ChannelUnknownOutcome("NO_ANSWER", detail) from exc
    return HttpResponse(status=response.status_code, headers=dict(response.headers), body=body)
