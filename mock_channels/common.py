"""Channel-neutral helpers shared by the emulators: atomic state files, the admin APIs' JSON
body parsing and error middleware, the sandboxes' common core (faults, callbacks, answers held
back until shutdown), and tying an emulator to the sandbox app's lifetime.

Nothing here knows a channel's protocol; each emulator passes in what is its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import pathlib
import random
from collections.abc import AsyncIterator, Callable
from typing import Protocol, TypeVar

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from pydantic import BaseModel, ValidationError

from mock_channels.callbacks import HTTP_SESSION, CallbackSender
from mock_channels.config import SandboxConfig
from mock_channels.faults import FaultInjector, FaultPlan

# -- state files ------------------------------------------------------------------------------


def write_atomically(path: pathlib.Path, data: bytes, mode: int = 0o644) -> None:
    """Write next to the target, then rename: a crash never leaves half a file behind."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


# -- admin APIs -------------------------------------------------------------------------------

_Body = TypeVar("_Body", bound=BaseModel)
_Error = TypeVar("_Error", bound=Exception)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def field_issues(exc: ValidationError) -> list[dict[str, str]]:
    """Each validation error as ``{"field": "a.b", "issue": message}``."""
    return [
        {"field": ".".join(map(str, e["loc"])), "issue": e["msg"]}
        for e in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


class BodyParser:
    """Reads a request's JSON body as a model; a body that does not validate raises what
    ``invalid`` makes of its issues. An empty body is read as ``if_empty``."""

    def __init__(
        self, invalid: Callable[[list[dict[str, str]]], Exception], *, if_empty: bytes = b""
    ) -> None:
        self._invalid = invalid
        self._if_empty = if_empty

    async def __call__(self, request: web.Request, model: type[_Body]) -> _Body:
        try:
            return model.model_validate_json(await request.read() or self._if_empty)
        except ValidationError as exc:
            raise self._invalid(field_issues(exc)) from None


def error_middleware(
    error: type[_Error], render: Callable[[_Error], web.StreamResponse]
) -> Middleware:
    """A middleware answering a handler's ``error`` with ``render(error)``."""

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except error as exc:
            return render(exc)

    return errors


# -- the sandboxes' common core ---------------------------------------------------------------


class SandboxCore:
    """What every channel's sandbox has: its config, fault injector and callback sender, and
    answers held back by a timeout fault until shutdown. A channel supplies its own refusals
    for the injected rate limit and server error."""

    def __init__(
        self, config: SandboxConfig, rng: random.Random, *, callback_label: str = "callback"
    ) -> None:
        self.config = config
        self.faults = FaultInjector(rng)
        self.callbacks = CallbackSender(
            timeout_s=config.callback_timeout_s,
            time_scale=config.time_scale,
            label=callback_label,
        )
        self._stopping = asyncio.Event()

    def rate_limited(self) -> Exception:
        raise NotImplementedError

    def system_error(self) -> Exception:
        raise NotImplementedError

    def release_hung_answers(self) -> None:
        """Let answers held by a timeout fault go, so shutdown does not wait for them."""
        self._stopping.set()

    async def stop(self) -> None:
        self.release_hung_answers()
        await self.callbacks.close()

    async def faults_before_acting(self, plan: FaultPlan) -> None:
        """Latency, then a rate limit or a server error refused before the call is acted on."""
        if plan.latency_ms:
            await asyncio.sleep(plan.latency_ms / 1000)
        if self.faults.strikes(plan.frequency_limit_rate):
            raise self.rate_limited()
        if self.faults.strikes(plan.error_rate):
            raise self.system_error()

    async def hang(self) -> None:
        """Hold an answer back longer than any client waits (until shutdown at the latest)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=self.config.hang_s)


# -- emulator lifetime -------------------------------------------------------------------------


class Emulator(Protocol):
    async def start(self, session: aiohttp.ClientSession) -> None: ...

    async def stop(self) -> None: ...

    def release_hung_answers(self) -> None: ...


_Emulator = TypeVar("_Emulator", bound=Emulator)


def install_emulator(app: web.Application, key: web.AppKey[_Emulator], sandbox: _Emulator) -> None:
    """Store ``sandbox`` under ``key`` and tie it to the app's lifetime: started with the shared
    HTTP session (``HTTP_SESSION`` must be set up first), stopped on cleanup."""
    app[key] = sandbox

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        await sandbox.start(app[HTTP_SESSION])
        yield
        await sandbox.stop()

    async def release_hung_answers(app: web.Application) -> None:
        # on_shutdown runs before the server waits for open handlers to finish.
        sandbox.release_hung_answers()

    app.cleanup_ctx.append(lifetime)
    app.on_shutdown.append(release_hung_answers)
