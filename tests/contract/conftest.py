"""Fixtures of the shared channel contract suite: per channel, a background sandbox
(``tests.interop.harness``) whose callback receiver answers with that channel's own
``ack_success()`` (so the sandbox judges the ack as the channel would) and an account
provisioned like ``payfront dev`` does; per test, the ``Contract`` that drives it."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from channels.base import HttpResponse
from channels.transport import new_http_client
from tests.contract.drivers import DRIVERS, Driver, provision
from tests.contract.harness import Contract
from tests.interop.harness import running_sandbox

# Channel calls in the happy paths; the fault tests use a much shorter client.
CLIENT_TIMEOUT_S = 3.0
SHORT_TIMEOUT_S = 0.5
# How long a timeout fault holds an answer (shutting the sandbox down releases it at once).
HANG_S = 5.0


@pytest.fixture(scope="module")
def driver(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_template: Path,
) -> Iterator[Driver]:
    """One channel's sandbox and account, shared by the module's tests of that channel
    (parametrize indirectly with a name from ``CHANNELS``)."""
    name: str = request.param
    driver_class = DRIVERS[name]
    directory = tmp_path_factory.mktemp(f"contract-{name}")
    database = directory / "payfront.db"
    shutil.copy(sqlite_template, database)
    acks: list[HttpResponse] = []

    def answer() -> web.Response:
        # The receiver answers every callback with the adapter's own acknowledgement.
        ack = acks[0]
        return web.Response(status=ack.status, body=ack.body, headers=dict(ack.headers))

    with running_sandbox(
        directory / "sandbox",
        route="/callbacks/{name}",
        answer=answer,
        seed=20240601,
        hang_s=HANG_S,
    ) as sandbox:
        credentials = asyncio.run(
            provision(driver_class, sandbox, f"sqlite+aiosqlite:///{database}")
        )
        the_driver = driver_class(sandbox=sandbox, credentials=credentials)
        acks.append(the_driver.channel.ack_success())
        yield the_driver


@pytest.fixture
async def contract(driver: Driver) -> AsyncIterator[Contract]:
    http = new_http_client(
        timeout_s=CLIENT_TIMEOUT_S, connect_timeout_s=CLIENT_TIMEOUT_S, max_connections=8
    )
    admin = httpx.AsyncClient(base_url=driver.sandbox.base_url, timeout=10)
    try:
        yield Contract(driver=driver, channel=driver.channel, http=http, admin=admin)
    finally:
        await admin.aclose()
        await http.aclose()


@pytest.fixture
async def short_http() -> AsyncIterator[httpx.AsyncClient]:
    """A channel client that gives up after SHORT_TIMEOUT_S (for held answers)."""
    http = new_http_client(
        timeout_s=SHORT_TIMEOUT_S, connect_timeout_s=SHORT_TIMEOUT_S, max_connections=4
    )
    try:
        yield http
    finally:
        await http.aclose()
