"""Builds the gateway application and runs it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

from core.breaker import BreakerConfig
from core.logs import configure_logging
from core.settings import Settings
from core.store.db import Database
from core.vault import Vault
from core.wakeups import WakeupHub
from gateway import (
    metrics,
    openapi,
    routes_callbacks,
    routes_health,
    routes_ledger,
    routes_payments,
    routes_reconcile,
    routes_refunds,
    routes_resolutions,
    routes_routing,
    routes_trades,
    routes_wallets,
    routes_webhooks,
)
from gateway.errors import request_context
from gateway.routing_cache import CircuitView, RoutingCache
from gateway.state import LANES, AccountCache, AuthCache, GatewayState, Lanes
from workers.directory import ChannelDirectory


class _ParserRejections(logging.Filter):
    """aiohttp logs a request its parser refused (a header over the limit, too many headers)
    with a traceback that quotes the offending bytes, which may be an API key. Keep one
    line that says why, and none of the request."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.msg, record.args = (
                "request refused by the HTTP parser: %s",
                (type(error).__name__,),
            )
            record.exc_info, record.exc_text, record.levelno = None, None, logging.WARNING
            record.levelname = "WARNING"
        return True


_PARSER_FILTER = _ParserRejections()


def server_limits(settings: Settings) -> dict[str, Any]:
    """The HTTP parser's limits for the gateway's runner (``web.AppRunner(app, **...)``)."""
    return {
        "max_line_size": settings.max_header_line_bytes,
        "max_field_size": settings.max_header_line_bytes,
        "max_headers": settings.max_headers,
    }


def create_app(settings: Settings) -> web.Application:
    logging.getLogger("aiohttp.server").addFilter(_PARSER_FILTER)  # once: the same object
    app = web.Application(
        middlewares=[metrics.measure, request_context], client_max_size=settings.max_body_bytes
    )
    app.add_routes(routes_payments.routes)
    app.add_routes(routes_refunds.routes)
    app.add_routes(routes_resolutions.routes)
    app.add_routes(routes_trades.routes)
    app.add_routes(routes_wallets.routes)
    app.add_routes(routes_callbacks.routes)
    app.add_routes(routes_health.routes)
    app.add_routes(routes_webhooks.routes)
    app.add_routes(routes_ledger.routes)
    app.add_routes(routes_reconcile.routes)
    app.add_routes(routes_routing.routes)
    app.add_routes(metrics.routes)
    openapi.publish(app, settings)  # built once here, served as bytes

    async def resources(app: web.Application) -> AsyncIterator[None]:
        vault = Vault(settings.master_key)
        redis = await create_pool(
            RedisSettings.from_dsn(settings.redis_url),
            job_serializer=orjson.dumps,
            job_deserializer=orjson.loads,
            default_queue_name=settings.queue_name,
        )
        hub = WakeupHub(redis)
        await hub.start()
        lanes = Lanes(
            live=await _lane(settings.for_mode("live"), vault, redis, hub),
            test=await _lane(settings.for_mode("test"), vault, redis, hub),
        )
        app[LANES] = lanes
        yield
        for lane in lanes:
            await lane.circuits.stop()
            await lane.db.dispose()
            if lane.ledger_db is not lane.db:
                await lane.ledger_db.dispose()
        await hub.stop()
        await redis.aclose()

    app.cleanup_ctx.append(resources)
    return app


async def _lane(settings: Settings, vault: Vault, redis: ArqRedis, hub: WakeupHub) -> GatewayState:
    """One mode's side of the gateway: its own database, caches and circuit view."""
    db = Database(settings.database_url)
    ledger_db = (
        db if settings.ledger_url == settings.database_url else Database(settings.ledger_url)
    )
    circuits = CircuitView(redis, BreakerConfig.of(settings), settings.breaker_refresh_s)
    await circuits.start()
    return GatewayState(
        settings=settings,
        db=db,
        ledger_db=ledger_db,
        vault=vault,
        redis=redis,
        hub=hub,
        channels=ChannelDirectory(db, vault),
        auth=AuthCache(ttl_s=settings.auth_cache_ttl_s),
        accounts=AccountCache(ttl_s=settings.auth_cache_ttl_s),
        routing=RoutingCache(ttl_s=settings.auth_cache_ttl_s),
        circuits=circuits,
    )


def run_gateway(settings: Settings) -> None:
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    web.run_app(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        access_log=None,
        print=None,
        **server_limits(settings),
    )
