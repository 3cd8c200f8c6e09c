"""What every job needs, built once per worker process."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from arq.connections import ArqRedis

from channels.transport import new_http_client
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
    redis: ArqRedis
    http: httpx.AsyncClient
    channels: ChannelDirectory

    @classmethod
    def build(cls, settings: Settings, redis: ArqRedis) -> WorkerContext:
        db = Database(settings.database_url)
        vault = Vault(settings.master_key)
        return cls(
            settings=settings,
            db=db,
            vault=vault,
            redis=redis,
            http=new_http_client(
                timeout_s=settings.channel_timeout_s,
                connect_timeout_s=settings.channel_connect_timeout_s,
                max_connections=settings.channel_max_connections,
            ),
            channels=ChannelDirectory(db, vault),
        )

    @property
    def queues(self) -> Queues:
        return Queues.of(self.settings)

    def notify_url(self, channel: str, account_id: str) -> str:
        return f"{self.settings.public_base_url.rstrip('/')}/callbacks/{channel}/{account_id}"

    async def close(self) -> None:
        await self.http.aclose()
        await self.db.dispose()
