"""What every job needs, built once per worker process."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from arq.connections import ArqRedis

from channels.transport import ModeGuard, new_http_client
from core.settings import Settings
from core.store.db import Database
from core.vault import Vault
from workers.directory import ChannelDirectory
from workers.queue import Queues


@dataclass
class WorkerContext:
    settings: Settings
    db: Database
    vault: Vault
    # The ledger's tables: ``db`` itself unless the ledger has a database of its own.
    ledger_db: Database
    redis: ArqRedis
    # Channel calls only: every request and answer passes this mode's guard (test mode to
    # the sandbox only, live mode never; channels.transport.ModeGuard).
    http: httpx.AsyncClient
    # Merchant webhooks: the merchant's own URLs, whatever the mode.
    webhook_http: httpx.AsyncClient
    channels: ChannelDirectory

    @classmethod
    def build(cls, settings: Settings, redis: ArqRedis) -> WorkerContext:
        """The context of one mode's pool: ``settings`` as ``Settings.for_mode`` gives them."""
        db = Database(settings.database_url)
        vault = Vault(settings.master_key)
        guard = ModeGuard(
            test_mode=settings.mode == "test", sandbox_origins=settings.sandbox_origins
        )
        return cls(
            settings=settings,
            db=db,
            ledger_db=db
            if settings.ledger_url == settings.database_url
            else Database(settings.ledger_url),
            vault=vault,
            redis=redis,
            http=new_http_client(
                timeout_s=settings.channel_timeout_s,
                connect_timeout_s=settings.channel_connect_timeout_s,
                max_connections=settings.channel_max_connections,
                guard=guard,
            ),
            webhook_http=new_http_client(
                timeout_s=settings.webhook_timeout_s,
                connect_timeout_s=settings.channel_connect_timeout_s,
                max_connections=settings.channel_max_connections,
            ),
            channels=ChannelDirectory(db, vault),
        )

    @property
    def queues(self) -> Queues:
        return Queues.of(self.settings)

    def notify_url(self, channel: str, account_id: str) -> str:
        base = self.settings.public_base_url.rstrip("/") + self.settings.callback_path_prefix
        return f"{base}/callbacks/{channel}/{account_id}"

    async def close(self) -> None:
        await self.http.aclose()
        await self.webhook_http.aclose()
        await self.db.dispose()
        if self.ledger_db is not self.db:
            await self.ledger_db.dispose()
