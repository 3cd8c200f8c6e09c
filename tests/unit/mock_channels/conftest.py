"""Fixtures for the WeChat Pay sandbox tests: keys generated at test time, a running sandbox
with one registered merchant, and a callback receiver."""

from __future__ import annotations

import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa

from mock_channels.wechatpay_store import WeChatPayStore
from tests.unit.mock_channels.mock_wechat_kit import Receiver, Sandbox, make_merchant, start_sandbox


@pytest.fixture(scope="session")
def merchant_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def platform_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state directory holding a platform key made once: generating an RSA key per test
    would dominate the run. Tests that care about first start use an empty directory."""
    state_dir = tmp_path_factory.mktemp("platform") / "state"
    WeChatPayStore(state_dir).load_or_create_platform()
    return state_dir


@pytest.fixture
async def sandbox(
    tmp_path: Path, merchant_private_key: rsa.RSAPrivateKey, platform_state: Path
) -> AsyncIterator[Sandbox]:
    state_dir = tmp_path / "state"
    shutil.copytree(platform_state, state_dir)
    box = await start_sandbox(state_dir, make_merchant(merchant_private_key))
    yield box
    await box.client.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    box: dict[str, Receiver] = {}

    async def notify(request: web.Request) -> web.Response:
        rec = box["receiver"]
        rec.deliveries.append((dict(request.headers), await request.read(), time.monotonic()))
        rec.arrived.set()
        status = rec.statuses.pop(0) if rec.statuses else 200
        if 200 <= status < 300:
            return web.Response(status=status)
        return web.json_response({"code": "FAIL", "message": "失败"}, status=status)

    app = web.Application()
    app.router.add_post("/notify", notify)
    server = TestServer(app)
    await server.start_server()
    box["receiver"] = Receiver(url=str(server.make_url("/notify")))
    yield box["receiver"]
    await server.close()
