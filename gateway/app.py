"""Builds the gateway application and runs it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from aiohttp import web
from arq import create_pool
from arq.connections import RedisSettings

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
    routes_refunds,
    routes_resolutions,
    routes_routing,
    routes_trades,
    routes_wallets,
    routes_webhooks,
)
from gateway.errors import request_context
from gateway.routes_payments import STATE
from gateway.routing_cache import CircuitView, RoutingCache
from gateway.state import AccountCache, AuthCache, GatewayState
from workers.directory import ChannelDirectory


def create_app(settings: Settings) -> web.Application:
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
    app.add_routes(routes_routing.routes)
    app.add_routes(metrics.routes)
    openapi.publish(app, settings)  # built once here, served as bytes

    async def resources(app: web.Application) -> AsyncIterator[None]:
        db = Database(settings.database_url)
        vault = Vault(settings.master_key)
        redis = await create_pool(
            RedisSettings.from_dsn(settings.redis_url),
            job_serializer=orjson.dumps,
            job_deserializer=orjson.loads,
            default_queue_name=settings.queue_name,
        )
        hub = WakeupHub(redis)
        await hub.start()
        circuits = CircuitView(redis, BreakerConfig.of(settings), settings.breaker_refresh_s)
        await circuits.start()
        app[STATE] = GatewayState(
            settings=settings,
            db=db,
            vault=vault,
            redis=redis,
            hub=hub,
            channels=ChannelDirectory(db, vault),
            auth=AuthCache(ttl_s=settings.auth_cache_ttl_s),
            accounts=AccountCache(ttl_s=settings.auth_cache_ttl_s),
            routing=RoutingCache(ttl_s=settings.auth_cache_ttl_s),
            circuits=circuits,
        )
        yield
        await circuits.stop()
        await hub.stop()
        await redis.aclose()
        await db.dispose()

    app.cleanup_ctx.append(resources)
    return app


def run_gateway(settings: Settings) -> None:
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    web.run_app(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        access_log=None,
        print=None,
    )
