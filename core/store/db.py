"""Engines for the database of record: SQLite (WAL) by default, PostgreSQL in production."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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


# At most this many units share a transaction: they hold SQLite's one write lock meanwhile.
GROUP_MAX = 32
# Grouped transactions at once on PostgreSQL (SQLite takes one writer at a time).
PG_GROUPS = 8


@dataclass(frozen=True, slots=True)
class _Unit:
    work: Callable[..., Any]
    args: tuple[Any, ...]
    context: contextvars.Context
    done: asyncio.Future[Any]


class _UnitFailed(Exception):
    """A grouped unit raised (its exception is the cause): its group is rolled back."""


def _run_unit(conn: sa.Connection, unit: _Unit) -> Any:
    return unit.context.run(unit.work, conn, *unit.args)


def _run_units(conn: sa.Connection, units: list[_Unit]) -> list[Any]:
    results = []
    for unit in units:
        try:
            results.append(_run_unit(conn, unit))
        except Exception as exc:
            raise _UnitFailed from exc
    return results


def _writer_thread() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")


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
            # Its own thread: writes queue here, one at a time as the one connection allows,
            # instead of in the pool, where threads of the default executor would wait
            # for it (and wake each other) on every write.
            self._writer: ThreadPoolExecutor | None = _writer_thread()
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
            self._writer = None
        # run_write_grouped's units waiting for the writer thread, and the task that feeds it.
        self._grouped: list[_Unit] = []
        self._feeders: set[asyncio.Task[None]] = set()

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        async with self.write_engine.begin() as conn:
            yield conn

    async def run_write(self, work: Callable[..., T], *args: Any) -> T:
        """Run ``work(connection, *args)`` — plain synchronous SQLAlchemy — as one write
        transaction: on SQLite in one thread hop, on PostgreSQL through the async driver."""
        if self._writer is not None:
            call = functools.partial(contextvars.copy_context().run, self._sync_write, work, *args)
            return await asyncio.get_running_loop().run_in_executor(self._writer, call)
        async with self.write_engine.begin() as conn:
            return await conn.run_sync(work, *args)

    def _sync_write(self, work: Callable[..., T], *args: Any) -> T:
        assert self.sync_write_engine is not None
        with self.sync_write_engine.begin() as conn:
            return work(conn, *args)

    async def run_write_grouped(self, work: Callable[..., T], *args: Any) -> T:
        """``run_write`` for a short unit that may share its transaction with others (group
        commit): the units that queue while a transaction is running run together after it,
        in order, in one transaction (on SQLite one thread hop and one BEGIN … COMMIT for all;
        on PostgreSQL one connection checkout, BEGIN and COMMIT, with up to ``PG_GROUPS``
        such transactions at once). When one unit raises, that transaction is rolled back and
        each of its units runs again in one of its own, so that no unit's outcome depends on
        another's failure. A unit may therefore run twice (the first run rolled back): it must
        change nothing but through its connection."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        self._grouped.append(_Unit(work, args, contextvars.copy_context(), done))
        if any(feeder.get_loop() is not loop for feeder in self._feeders):
            # Left by an event loop that was abandoned without cancelling its tasks (a test
            # runner's): they will never run again, so they must not count as feeding.
            self._feeders = {feeder for feeder in self._feeders if feeder.get_loop() is loop}
            self._grouped = [unit for unit in self._grouped if unit.done.get_loop() is loop]
        if len(self._feeders) < (1 if self._writer is not None else PG_GROUPS):
            self._feeders.add(loop.create_task(self._feed_groups()))
        result: T = await done
        return result

    async def _feed_groups(self) -> None:
        units: list[_Unit] = []
        try:
            while self._grouped:
                units, self._grouped = self._grouped[:GROUP_MAX], self._grouped[GROUP_MAX:]
                outcomes = await self._write_group(units)
                for unit, (ok, value) in zip(units, outcomes, strict=True):
                    if unit.done.done():  # its caller was cancelled; the work is done anyway
                        continue
                    if ok:
                        unit.done.set_result(value)
                    else:
                        unit.done.set_exception(value)
                units = []
        except BaseException:
            for unit in units:
                unit.done.cancel()
            if len(self._feeders) == 1:  # the last feeder: nothing would take the rest
                for unit in self._grouped:
                    unit.done.cancel()
                self._grouped = []
            raise
        finally:
            # Now, not in a done callback: a unit queued before that would find no feeder.
            self._feeders.discard(asyncio.current_task())

    async def _write_group(self, units: list[_Unit]) -> list[tuple[bool, Any]]:
        try:
            if self._writer is not None:
                loop = asyncio.get_running_loop()
                results = await loop.run_in_executor(self._writer, self._sync_write_group, units)
            else:
                async with self.write_engine.begin() as conn:
                    results = await conn.run_sync(_run_units, units)
        except _UnitFailed as failed:
            if len(units) == 1:
                return [(False, failed.__cause__)]
            return [await self._write_alone(unit) for unit in units]
        except Exception as exc:
            return [(False, exc)] * len(units)  # BEGIN or COMMIT failed: for all alike
        return [(True, result) for result in results]

    def _sync_write_group(self, units: list[_Unit]) -> list[Any]:
        assert self.sync_write_engine is not None
        with self.sync_write_engine.begin() as conn:
            return _run_units(conn, units)

    async def _write_alone(self, unit: _Unit) -> tuple[bool, Any]:
        try:
            return True, await self.run_write(_run_unit, unit)
        except Exception as exc:
            return False, exc

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.read_engine.connect() as conn:
            yield conn

    async def ping(self) -> None:
        async with self.read() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def dispose(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = _writer_thread()  # used again after dispose(), as the engines can be
        if self.sync_write_engine is not None:
            self.sync_write_engine.dispose()
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()
