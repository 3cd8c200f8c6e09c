"""The mode guard on the channel client (channels.transport.ModeGuard), on a real socket:
test mode calls only the sandbox, live mode never does."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from channels.base import HttpRequest
from channels.errors import ChannelModeViolation
from channels.transport import SANDBOX_HEADER, ModeGuard, new_http_client, send
from tests.conftest import free_port


class Server:
    def __init__(self, url: str) -> None:
        self.url = url
        self.hits = 0
        self.marked = False


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    port = free_port()
    found = Server(f"http://127.0.0.1:{port}")

    async def answer(request: web.Request) -> web.Response:
        found.hits += 1
        headers = {SANDBOX_HEADER: "1"} if found.marked else {}
        return web.json_response({"ok": True}, headers=headers)

    app = web.Application()
    app.router.add_get("/v3/ping", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield found
    await runner.cleanup()


async def call(server: Server, *, test_mode: bool, sandbox: set[str]) -> int:
    guard = ModeGuard(test_mode=test_mode, sandbox_origins=frozenset(sandbox))
    client = new_http_client(timeout_s=5, connect_timeout_s=2, max_connections=4, guard=guard)
    try:
        request = HttpRequest(method="GET", url=f"{server.url}/v3/ping", headers={}, body=b"")
        return (await send(client, request)).status
    finally:
        await client.aclose()


async def test_test_mode_refuses_a_non_sandbox_origin_before_sending(server: Server) -> None:
    with pytest.raises(ChannelModeViolation) as refused:
        await call(server, test_mode=True, sandbox={"http://127.0.0.1:1"})
    assert refused.value.code == "TEST_MODE_OUTSIDE_SANDBOX"
    assert server.hits == 0


async def test_test_mode_refuses_an_answer_not_from_the_sandbox(server: Server) -> None:
    with pytest.raises(ChannelModeViolation) as refused:
        await call(server, test_mode=True, sandbox={server.url})
    assert refused.value.code == "TEST_MODE_OUTSIDE_SANDBOX"
    server.marked = True
    assert await call(server, test_mode=True, sandbox={server.url}) == 200


async def test_live_mode_never_sends_to_a_sandbox_origin(server: Server) -> None:
    server.marked = True
    with pytest.raises(ChannelModeViolation) as refused:
        await call(server, test_mode=False, sandbox={server.url})
    assert refused.value.code == "LIVE_MODE_TO_SANDBOX"
    assert server.hits == 0


async def test_live_mode_refuses_an_answer_from_a_sandbox(server: Server) -> None:
    server.marked = True
    with pytest.raises(ChannelModeViolation) as refused:
        await call(server, test_mode=False, sandbox=set())
    assert refused.value.code == "LIVE_MODE_TO_SANDBOX"
    server.marked = False
    assert await call(server, test_mode=False, sandbox=set()) == 200
