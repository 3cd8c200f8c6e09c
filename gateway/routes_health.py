"""Liveness and readiness probes."""

from __future__ import annotations

import orjson
from aiohttp import web

from gateway.state import LANES

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    lanes = request.app[LANES]
    checks: dict[str, str] = {}
    for name, db in (("database", lanes.live.db), ("shadow_database", lanes.test.db)):
        try:
            await db.ping()
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"error: {type(exc).__name__}"
    try:
        await lanes.live.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    # Live traffic needs the live database and Redis; the shadow database is reported, but
    # its loss takes only test mode down, not the gateway.
    ok = all(checks[name] == "ok" for name in ("database", "redis"))
    return web.Response(
        status=200 if ok else 503,
        body=orjson.dumps({"status": "ok" if ok else "unavailable", "checks": checks}),
        content_type="application/json",
    )
