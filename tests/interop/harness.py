"""The sandbox plus a callback receiver, for the synchronous client libraries in this folder.

The libraries (``wechatpayv3``, ``python-alipay-sdk``, ``stripe``) block, so the sandbox
(``mock_channels.app.create_app``) and a receiver for its callbacks run on their own event loop
in a background thread. What differs between channels is the receiver's route, its answer and
the sandbox's seed and timing; :func:`running_sandbox` takes those.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiohttp import web

from mock_channels.app import SandboxConfig, create_app


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return dict(orjson.loads(self.body))


@dataclass
class BackgroundSandbox:
    """The sandbox plus a callback receiver, served from a thread with its own loop.

    ``route`` is the receiver's path; a final ``/{name}`` segment gives each name its own inbox
    (``inbox(name)``), otherwise every delivery lands in ``deliveries``. ``notify_url`` is the
    receiver's URL without that segment. ``answer`` builds the receiver's response.
    """

    state_dir: Path
    route: str
    answer: Callable[[], web.Response]
    seed: int
    time_scale: float = 0.001
    hang_s: float = 60.0
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    inboxes: dict[str, queue.Queue[Delivery]] = field(default_factory=dict)
    base_url: str = ""
    notify_url: str = ""
    _runners: list[web.AppRunner] = field(default_factory=list)
    _thread: threading.Thread | None = None

    def _run(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout=30)

    async def _serve(self, app: web.Application) -> str:
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    async def _receive(self, request: web.Request) -> web.Response:
        inbox = self.inbox(request.match_info.get("name", ""))
        inbox.put(Delivery(dict(request.headers), await request.read()))
        return self.answer()

    async def _start(self) -> None:
        config = SandboxConfig(
            state_dir=self.state_dir,
            time_scale=self.time_scale,
            seed=self.seed,
            hang_s=self.hang_s,
        )
        self.base_url = await self._serve(create_app(config))
        receiver = web.Application()
        receiver.router.add_post(self.route, self._receive)
        self.notify_url = await self._serve(receiver) + self.route.removesuffix("/{name}")

    async def _stop(self) -> None:
        for runner in reversed(self._runners):
            await runner.cleanup()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._run(self._start())

    def stop(self) -> None:
        try:
            self._run(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=10)
            self.loop.close()

    def admin(self, method: str, path: str, payload: Any = None) -> httpx.Response:
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            return client.request(method, path, json=payload)

    @property
    def deliveries(self) -> queue.Queue[Delivery]:
        """The inbox of a receiver route without a ``{name}`` segment."""
        return self.inbox("")

    def inbox(self, name: str) -> queue.Queue[Delivery]:
        return self.inboxes.setdefault(name, queue.Queue())

    def next_event(self, name: str, event_type: str, timeout: float = 5) -> Delivery:
        """The next delivery to ``name`` whose JSON body has ``type`` ``event_type``."""
        while True:
            delivery = self.inbox(name).get(timeout=timeout)
            if delivery.event["type"] == event_type:
                return delivery


@contextmanager
def running_sandbox(
    state_dir: Path,
    *,
    route: str,
    answer: Callable[[], web.Response],
    seed: int,
    time_scale: float = 0.001,
    hang_s: float = 60.0,
) -> Iterator[BackgroundSandbox]:
    sandbox = BackgroundSandbox(
        state_dir, route, answer, seed=seed, time_scale=time_scale, hang_s=hang_s
    )
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()
