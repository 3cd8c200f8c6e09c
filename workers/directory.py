"""Channel adapters per channel account, built from the store and kept loaded."""

from __future__ import annotations

import time

from channels.base import Channel
from channels.registry import build_channel
from core.merchants import load_channel_account
from core.store.db import Database
from core.vault import Vault


class ChannelDirectory:
    """Builds each account's adapter once (keys parsed once) and refreshes it now and then."""

    def __init__(self, db: Database, vault: Vault, *, ttl_s: float = 60.0) -> None:
        self._db = db
        self._vault = vault
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[float, Channel, dict[str, str]]] = {}

    async def get(self, account_id: str) -> tuple[Channel, dict[str, str]]:
        """The adapter and the decrypted credentials of one channel account."""
        cached = self._cache.get(account_id)
        if cached is not None and time.monotonic() - cached[0] < self._ttl_s:
            return cached[1], cached[2]
        account = await load_channel_account(self._db, self._vault, account_id)
        channel = build_channel(account.channel, account.credentials)
        self._cache[account_id] = (time.monotonic(), channel, account.credentials)
        return channel, account.credentials
