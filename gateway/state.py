"""The gateway's shared resources, built at start-up and kept on the application."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from aiohttp import web
from arq.connections import ArqRedis

from core.merchants import MerchantAuth, authenticate
from core.payments import find_channel_account
from core.settings import Mode, Settings
from core.store.db import Database
from core.ttlcache import TtlCache
from core.vault import Vault, hash_api_key
from core.wakeups import WakeupHub
from gateway.routing_cache import CircuitView, RoutingCache
from workers.directory import ChannelDirectory


class AuthCache:
    """API key → merchant, for a short time, so the token path does one DB transaction."""

    def __init__(self, ttl_s: float) -> None:
        self._cache: TtlCache[str, MerchantAuth | None] = TtlCache(ttl_s)

    async def lookup(self, db: Database, api_key: str) -> MerchantAuth | None:
        # Keyed by the key's hash: the key itself is never kept.
        return await self._cache.get(hash_api_key(api_key), lambda: authenticate(db, api_key))


class AccountCache:
    """(merchant, channel) → channel account id, for a short time: one SELECT saved on the
    token path. A newly disabled account may still be chosen for ``ttl_s`` seconds."""

    def __init__(self, ttl_s: float) -> None:
        self._cache: TtlCache[tuple[str, str], str] = TtlCache(ttl_s)

    async def lookup(self, db: Database, merchant_id: str, channel: str) -> str:
        return await self._cache.get(
            (merchant_id, channel), lambda: find_channel_account(db, merchant_id, channel)
        )


@dataclass
class GatewayState:
    """One mode's resources (``settings`` as ``Settings.for_mode`` gives them): its database,
    channel adapters, caches and circuits. Redis, the wake-up hub and the vault are shared."""

    settings: Settings
    db: Database
    # The ledger's tables: ``db`` itself unless the ledger has a database of its own.
    ledger_db: Database
    vault: Vault
    redis: ArqRedis
    hub: WakeupHub
    channels: ChannelDirectory
    auth: AuthCache
    accounts: AccountCache
    # Routing rules and channel-account circuits (gateway.routing_cache; docs/routing.md).
    routing: RoutingCache
    circuits: CircuitView


TEST_TOKEN_PREFIX = "tok_test_"


@dataclass(frozen=True)
class Lanes:
    """The live and the test mode side by side. Which one serves a request is decided from
    the request alone, before any database is read: the API key's prefix (``sk_live_`` /
    ``sk_test_``), the token's prefix (``tok_test_``), or the callback path
    (``/test/callbacks/...``). A test-mode request can only reach the shadow database."""

    live: GatewayState
    test: GatewayState

    def of(self, mode: Mode) -> GatewayState:
        return self.live if mode == "live" else self.test

    def for_api_key(self, api_key: str) -> GatewayState:
        return self.live if api_key.startswith("sk_live_") else self.test

    def for_token(self, token: str) -> GatewayState:
        return self.test if token.startswith(TEST_TOKEN_PREFIX) else self.live

    def __iter__(self) -> Iterator[GatewayState]:
        return iter((self.live, self.test))


LANES = web.AppKey("payfront", Lanes)
