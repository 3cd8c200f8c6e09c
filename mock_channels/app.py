"""The sandbox application: channel emulators mounted side by side on one aiohttp app.

WeChat Pay lives under ``/v3`` and ``/sandbox/wechatpay``; other channels' emulators mount
their own routes beside it. ``GET /sandbox/health`` answers ``{"status": "ok"}``.
"""

from __future__ import annotations

import pathlib
import random
from typing import Protocol, runtime_checkable

from aiohttp import web

from mock_channels.alipay import setup_alipay
from mock_channels.callbacks import http_session_ctx
from mock_channels.cashier import setup_cashier
from mock_channels.config import SandboxConfig
from mock_channels.stripe_emulator import setup_stripe
from mock_channels.wechatpay import setup_wechatpay

__all__ = ["SandboxConfig", "SandboxSettings", "create_app", "run_sandbox"]


# Every answer of the sandbox says so. payfront's live mode refuses an answer that carries
# it, and its test mode refuses one that does not (docs/test-mode.md): a sandbox configured
# under an unexpected name is still caught on the wire.
SANDBOX_HEADER = "Payfront-Sandbox"


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _mark_sandbox(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[SANDBOX_HEADER] = "1"


def create_app(config: SandboxConfig) -> web.Application:
    app = web.Application()
    app.on_response_prepare.append(_mark_sandbox)
    # One seeded generator for every fault decision of this sandbox: reproducible tests.
    rng = random.Random(config.seed)
    app.router.add_get("/sandbox/health", health)
    # Registered first so it is torn down last, after the emulators stopped their callbacks.
    app.cleanup_ctx.append(http_session_ctx)
    setup_wechatpay(app, config, rng)
    setup_stripe(app, config, rng)
    setup_alipay(app, config, rng)
    setup_cashier(app, config)
    return app


class SandboxSettings(Protocol):
    """The part of payfront's ``Settings`` the sandbox reads (kept structural: the sandbox
    imports nothing from ``core``)."""

    @property
    def sandbox_host(self) -> str: ...

    @property
    def sandbox_port(self) -> int: ...

    @property
    def sandbox_state_dir(self) -> pathlib.Path: ...

    @property
    def sandbox_time_scale(self) -> float: ...


@runtime_checkable
class KnowsGateway(Protocol):
    """Settings that also say where payfront's gateway answers (payfront's own ``Settings``;
    ``python -m mock_channels`` has none and keeps ``SandboxConfig.gateway_url``)."""

    @property
    def public_base_url(self) -> str: ...


def run_sandbox(settings: SandboxSettings) -> None:
    """Serve the sandbox until interrupted (``payfront sandbox``)."""
    config = SandboxConfig(
        state_dir=settings.sandbox_state_dir,
        time_scale=settings.sandbox_time_scale,
        public_base_url=f"http://{settings.sandbox_host}:{settings.sandbox_port}",
    )
    if isinstance(settings, KnowsGateway):
        # payfront's own public address: where the cashier page reads tokens.
        config.gateway_url = settings.public_base_url
    web.run_app(create_app(config), host=settings.sandbox_host, port=settings.sandbox_port)
