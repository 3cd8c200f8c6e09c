"""The small part that sends: one shared httpx client over aiohttp, errors classified.

A connect error or pool timeout means nothing was sent (retry is safe); anything after the
request may have left is an unknown outcome (query before anything else).
"""

from __future__ import annotations

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from channels.base import HttpRequest, HttpResponse
from channels.errors import ChannelRetryable, ChannelUnknownOutcome

# aiohttp errors that are raised before a byte of the request is written.
_NOT_SENT_AIOHTTP = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)


def new_http_client(
    *, timeout_s: float, connect_timeout_s: float, max_connections: int
) -> httpx.AsyncClient:
    """The client every channel call goes through (httpx API, aiohttp's faster pool)."""
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    return httpx.AsyncClient(
        transport=AiohttpTransport(limits=limits),
        timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s, pool=connect_timeout_s),
        follow_redirects=False,
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
