"""The WeChat Pay API v3 emulator: mounts its v3 routes (``/v3``) and its sandbox admin API
(``/sandbox/wechatpay``) on the sandbox app and ties its state to the app's lifetime.

The platform key, certificate and merchant registry persist in ``state_dir/wechatpay``; orders
and callback attempts are kept in memory and are gone after a restart.
"""

from __future__ import annotations

import random

from aiohttp import web

from mock_channels.common import install_emulator
from mock_channels.config import SandboxConfig
from mock_channels.wechatpay_admin import build_admin_app
from mock_channels.wechatpay_api import build_v3_app
from mock_channels.wechatpay_sandbox import WECHATPAY_SANDBOX, WeChatPaySandbox

V3_PREFIX = "/v3"
ADMIN_PREFIX = "/sandbox/wechatpay"


def setup_wechatpay(app: web.Application, config: SandboxConfig, rng: random.Random) -> None:
    """Add the WeChat emulator to ``app`` (whose ``HTTP_SESSION`` must be set up first)."""
    install_emulator(app, WECHATPAY_SANDBOX, WeChatPaySandbox(config, rng))
    app.add_subapp(V3_PREFIX, build_v3_app())
    app.add_subapp(ADMIN_PREFIX, build_admin_app())
