"""The Idempotency-Key header on merchant writes: a Redis lock answers a concurrent duplicate
with 409 at once; the stored answer (core.idempotency) replays a finished one."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from redis.exceptions import RedisError

from core.errors import IdempotencyKeyInUse, InvalidRequest
from core.idempotency import IdempotencyClaim, request_fingerprint
from core.merchants import MerchantAuth
from gateway.state import GatewayState

log = structlog.get_logger(__name__)
LOCK_MS = 60_000


async def idempotent(
    request: web.Request,
    state: GatewayState,
    merchant: MerchantAuth,
    body: bytes,
    write: Callable[[IdempotencyClaim | None], Awaitable[web.Response]],
    *,
    scope: str = "",
) -> web.Response:
    """Run ``write`` under the request's Idempotency-Key, if it has one."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return await write(None)
    if not 1 <= len(key) <= 255:
        raise InvalidRequest("Idempotency-Key must be 1 to 255 characters", param="Idempotency-Key")
    if not (key.isascii() and key.isprintable()):
        raise InvalidRequest("Idempotency-Key must be printable ASCII", param="Idempotency-Key")
    claim = IdempotencyClaim(key=key, request_hash=request_fingerprint(body, scope=scope))
    lock = "payfront:idem:" + hashlib.sha256(f"{merchant.merchant_id}\0{key}".encode()).hexdigest()
    try:
        locked = await state.redis.set(lock, b"1", nx=True, px=LOCK_MS)
    except RedisError:
        # Without Redis, the idempotency record's primary key still lets only one request
        # write; a concurrent duplicate then gets the replay instead of a 409.
        log.warning("idempotency.lock_unavailable")
        return await write(claim)
    if not locked:
        raise IdempotencyKeyInUse(
            "a request with this Idempotency-Key is still being processed",
            param="Idempotency-Key",
        )
    try:
        return await write(claim)
    finally:
        with contextlib.suppress(RedisError):
            await state.redis.delete(lock)
