"""The sandbox cashier (``GET /sandbox/cashier/{token}``): a shopper's page for a payfront
token, with buttons that play the shopper through the sandbox's own controls.

The page is rendered here from the token read at payfront's gateway (so the QR code is drawn
server-side); its script then polls the token at the gateway (CORS ``*``) for status changes.
The gateway is ``SandboxConfig.gateway_url``, or ``?gateway=`` for one page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
from aiohttp import web

from mock_channels.callbacks import HTTP_SESSION
from mock_channels.cashier_page import render_cashier, render_problem
from mock_channels.config import SandboxConfig

CASHIER_PREFIX = "/sandbox/cashier"
GATEWAY_URL = web.AppKey("cashier_gateway_url", str)
# Long enough for a worker to fetch the credential, short enough for a page load.
FIRST_READ_WAIT_S = 5
READ_TIMEOUT_S = FIRST_READ_WAIT_S + 5


class GatewayUnavailable(Exception):
    pass


def gateway_base(configured: str, override: str | None) -> str:
    """The gateway's base URL: ``?gateway=`` when given (an http(s) origin), else the config."""
    if override is None:
        return configured.rstrip("/")
    parts = urlsplit(override)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise web.HTTPBadRequest(text="gateway must be an http(s) URL without query or fragment")
    return override.rstrip("/")


async def read_token(
    session: aiohttp.ClientSession, token_url: str, wait_s: float
) -> dict[str, Any] | None:
    """The token's view at the gateway; None when the gateway does not know the token."""
    try:
        async with session.get(
            token_url,
            params={"wait": f"{wait_s:g}"},
            timeout=aiohttp.ClientTimeout(total=READ_TIMEOUT_S),
        ) as answer:
            if answer.status == 404:
                return None
            if answer.status != 200:
                raise GatewayUnavailable(f"the gateway answered {answer.status}")
            view: dict[str, Any] = await answer.json()
            return view
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise GatewayUnavailable(f"the gateway at {token_url} did not answer: {exc!r}") from None


def _html(status: int, page: str) -> web.Response:
    return web.Response(
        status=status,
        text=page,
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-store"},
    )


async def cashier(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    base = gateway_base(request.config_dict[GATEWAY_URL], request.query.get("gateway"))
    token_url = f"{base}/v1/tokens/{quote(token, safe='')}"
    try:
        view = await read_token(request.config_dict[HTTP_SESSION], token_url, FIRST_READ_WAIT_S)
    except GatewayUnavailable as exc:
        return _html(502, render_problem("Gateway unavailable", str(exc)))
    if view is None:
        return _html(404, render_problem("Unknown token", f"payfront knows no token {token}."))
    # Still pending after the wait: the page renders without a credential, and its script
    # reloads it once the worker has one.
    return _html(200, render_cashier(view, token_url=token_url))


def build_cashier_app(config: SandboxConfig) -> web.Application:
    app = web.Application()
    app[GATEWAY_URL] = config.gateway_url
    app.router.add_get("/{token}", cashier)
    return app


def setup_cashier(app: web.Application, config: SandboxConfig) -> None:
    """Add the cashier to ``app`` (whose ``HTTP_SESSION`` must be set up first)."""
    app.add_subapp(CASHIER_PREFIX, build_cashier_app(config))
