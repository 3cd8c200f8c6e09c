"""The gateway's shared resources, built at start-up and kept on the application."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from arq.connections import ArqRedis

from core.merchants import MerchantAuth, authenticate
from core.payments import find_channel_account
from core.settings import Settings
from core.store.db import Database
from core.vault import Vault, hash_api_key
from core.wakeups import WakeupHub
from workers.directory import ChannelDirectory


@dataclass
class AuthCache:
    """API key → merchant, for a short time, so the token path does one DB transaction."""

    ttl_s: float
    entries: dict[str, tuple[float, MerchantAuth | None]] = field(default_factory=dict)

    async def lookup(self, db: Database, api_key: str) -> MerchantAuth | None:
        now = time.monotonic()
        cache_key = hash_api_key(api_key)  # never keep the key itself
        hit = self.entries.get(cache_key)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        merchant = await authenticate(db, api_key)
        if len(self.entries) > 10_000:
            self.entries.clear()
        self.entries[cache_key] = (now, merchant)
        return merchant


@dataclass
class AccountCache:
    """(merchant, channel) → channel account id, for a short time: one SELECT saved on the
    token path. A newly disabled account may still be chosen for ``ttl_s`` seconds."""

    ttl_s: float
    entries: dict[tuple[str, str], tuple[float, str]] = field(default_factory=dict)

    async def lookup(self, db: Database, merchant_id: str, channel: str) -> str:
        now = time.monotonic()
        hit = self.entries.get((merchant_id, channel))
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        account_id = await find_channel_account(db, merchant_id, channel)
        if len(self.entries) > 10_000:
            self.entries.clear()
        self.entries[(merchant_id, channel)] = (now, account_id)
        return account_id


@dataclass
class GatewayState:
    settings: Settings
    db: Database
    vault: Vault
    redis: ArqRedis
    hub: WakeupHub
    channels: ChannelDirectory
    auth: AuthCache
    accounts: AccountCache
