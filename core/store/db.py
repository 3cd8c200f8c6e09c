"""Engines for the database of record: SQLite (WAL) by default, PostgreSQL in production."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

T = TypeVar("T")


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _sqlite_engine(url: str, *, immediate: bool, pool_size: int) -> AsyncEngine:
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=0, pool_pre_ping=False)
    _configure_sqlite(engine.sync_engine, immediate=immediate)
    return engine


def _configure_sqlite(engine: sa.Engine, *, immediate: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A write transaction takes the write lock up front: a deferred one that upgrades
        # later can fail with SQLITE_BUSY without waiting for busy_timeout.
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """The store's connections: ``begin()`` for a write transaction, ``read()`` for reads."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        if self.is_sqlite:
            path = _sqlite_file(url)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            # One writer connection per process: SQLite takes one writer at a time anyway,
            # and queueing in the pool is cheaper than contending on the file lock.
            self.write_engine = _sqlite_engine(url, immediate=True, pool_size=1)
            self.read_engine = _sqlite_engine(url, immediate=False, pool_size=4)
            # The token path's transaction runs whole in one thread on plain sqlite3: one
            # hand-off instead of one per statement (aiosqlite's per-call thread hop, not
            # the disk, is what limits SQLite writes from asyncio).
            sync_url = make_url(url).set(drivername="sqlite+pysqlite")
            self.sync_write_engine: sa.Engine | None = sa.create_engine(
                sync_url,
                pool_size=1,
                max_overflow=0,
                connect_args={"check_same_thread": False},
            )
            _configure_sqlite(self.sync_write_engine, immediate=True)
        else:
            # A database that does not answer must fail a request in seconds, not hang it.
            self.write_engine = create_async_engine(
                url,
                pool_size=20,
                max_overflow=10,
                pool_timeout=5,
                pool_pre_ping=True,
                connect_args={"timeout": 3, "command_timeout": 10},
            )
            self.read_engine = self.write_engine
            self.sync_write_engine = None

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        async with self.write_engine.begin() as conn:
            yield conn

    async def run_write(self, work: Callable[..., T], *args: Any) -> T:
        """Run ``work(connection, *args)`` — plain synchronous SQLAlchemy — as one write
        transaction: on SQLite in one thread hop, on PostgreSQL through the async driver."""
        if self.sync_write_engine is not None:
            return await asyncio.to_thread(self._sync_write, work, *args)
        async with self.write_engine.begin() as conn:
            return await conn.run_sync(work, *args)

    def _sync_write(self, work: Callable[..., T], *args: Any) -> T:
        assert self.sync_write_engine is not None
        with self.sync_write_engine.begin() as conn:
            return work(conn, *args)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.read_engine.connect() as conn:
            yield conn

    async def ping(self) -> None:
        async with self.read() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def dispose(self) -> None:
        if self.sync_write_engine is not None:
            self.sync_write_engine.dispose()
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()
