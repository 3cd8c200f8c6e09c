"""The Alipay OpenAPI emulator: mounts the gateway (``/gateway.do``) and its sandbox admin API
(``/sandbox/alipay``) on the sandbox app and ties its state to the app's lifetime.

The Alipay key pair and the registered apps persist in ``state_dir/alipay``; trades and
notification attempts are kept in memory and are gone after a restart.
"""

from __future__ import annotations

import random

from aiohttp import web

from mock_channels.alipay_admin import build_admin_app
from mock_channels.alipay_gateway import add_gateway_routes
from mock_channels.alipay_sandbox import ALIPAY_SANDBOX, AlipaySandbox
from mock_channels.common import install_emulator
from mock_channels.config import SandboxConfig

GATEWAY_PATH = "/gateway.do"
ADMIN_PREFIX = "/sandbox/alipay"


def setup_alipay(app: web.Application, config: SandboxConfig, rng: random.Random) -> None:
    """Add the Alipay emulator to ``app`` (whose ``HTTP_SESSION`` must be set up first)."""
    install_emulator(app, ALIPAY_SANDBOX, AlipaySandbox(config, rng))
    add_gateway_routes(app, GATEWAY_PATH)
    app.add_subapp(ADMIN_PREFIX, build_admin_app())
