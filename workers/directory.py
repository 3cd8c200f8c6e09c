"""Channel adapters per channel account, built from the store and kept loaded."""

from __future__ import annotations

from channels.base import Channel
from channels.registry import build_channel
from core.merchants import load_channel_account
from core.store.db import Database
from core.ttlcache import TtlCache
from core.vault import Vault


class ChannelDirectory:
    """Builds each account's adapter once (keys parsed once) and refreshes it now and then."""

    def __init__(self, db: Database, vault: Vault, *, ttl_s: float = 60.0) -> None:
        self._db = db
        self._vault = vault
        self._cache: TtlCache[str, tuple[Channel, dict[str, str]]] = TtlCache(ttl_s)

    async def get(self, account_id: str) -> tuple[Channel, dict[str, str]]:
        """The adapter and the decrypted credentials of one channel account."""
        return await self._cache.get(account_id, lambda: self._load(account_id))

    async def _load(self, account_id: str) -> tuple[Channel, dict[str, str]]:
        account = await load_channel_account(self._db, self._vault, account_id)
        return build_channel(account.channel, account.credentials), account.credentials
