"""The Alipay OpenAPI emulator: mounts the gateway (``/gateway.do``) and its sandbox admin API
(``/sandbox/alipay``) on the sandbox app and ties its state to the app's lifetime.

The Alipay key pair and the registered apps persist in ``state_dir/alipay``; trades and
notification attempts are kept in memory and are gone after a restart.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

from aiohttp import web

from mock_channels.alipay_admin import build_admin_app
from mock_channels.alipay_gateway import add_gateway_routes
from mock_channels.alipay_sandbox import ALIPAY_SANDBOX, AlipaySandbox
from mock_channels.callbacks import HTTP_SESSION
from mock_channels.config import SandboxConfig

GATEWAY_PATH = "/gateway.do"
ADMIN_PREFIX = "/sandbox/alipay"


def setup_alipay(app: web.Application, config: SandboxConfig, rng: random.Random) -> None:
    """Add the Alipay emulator to ``app`` (whose ``HTTP_SESSION`` must be set up first)."""
    sandbox = AlipaySandbox(config, rng)
    app[ALIPAY_SANDBOX] = sandbox

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        await sandbox.start(app[HTTP_SESSION])
        yield
        await sandbox.stop()

    async def release_hung_answers(app: web.Application) -> None:
        # on_shutdown runs before the server waits for open handlers to finish.
        sandbox.release_hung_answers()

    app.cleanup_ctx.append(lifetime)
    app.on_shutdown.append(release_hung_answers)
    add_gateway_routes(app, GATEWAY_PATH)
    app.add_subapp(ADMIN_PREFIX, build_admin_app())
