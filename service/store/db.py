"""Where is the database, and how do we talk to it? One manager: the pool and the named queries."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from service.store import migrations
from service.store.queries import Query, load_queries

log = logging.getLogger(__name__)

# What store modules are handed inside a transaction: a pooled connection.
Connection = PoolConnectionProxy


class Database:
    """The pool and the named queries; store modules borrow connections from here."""

    def __init__(self, pool: asyncpg.Pool, queries: dict[str, Query]) -> None:
        self.pool = pool
        self.queries = queries

    def sql(self, name: str) -> str:
        return self.queries[name].sql

    @classmethod
    async def connect(cls, dsn: str, *, min_size: int = 2, max_size: int = 10) -> Database:
        pool = await asyncpg.create_pool(
            dsn, min_size=min_size, max_size=max_size, command_timeout=60
        )
        return cls(pool, load_queries())

    async def close(self) -> None:
        await self.pool.close()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    async def fetch(self, name: str, *args: Any) -> list[asyncpg.Record]:
        return list(await self.pool.fetch(self.sql(name), *args))

    async def fetchrow(self, name: str, *args: Any) -> asyncpg.Record | None:
        return await self.pool.fetchrow(self.sql(name), *args)

    async def fetchval(self, name: str, *args: Any) -> Any:
        return await self.pool.fetchval(self.sql(name), *args)

    async def execute(self, name: str, *args: Any) -> str:
        return str(await self.pool.execute(self.sql(name), *args))

    @contextlib.asynccontextmanager
    async def listening(self, channel: str, callback: Callable[[], None]) -> AsyncIterator[None]:
        """Call `callback` on every NOTIFY on `channel` while the context is open."""
        conn = await self.pool.acquire()

        def on_notify(*_: object) -> None:
            callback()

        await conn.add_listener(channel, on_notify)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                await conn.remove_listener(channel, on_notify)
            await self.pool.release(conn)

    async def migrate(self) -> list[int]:
        async with self.pool.acquire() as conn:
            return await migrations.migrate(conn, self.queries)

    async def pending_migrations(self) -> list[int]:
        async with self.pool.acquire() as conn:
            return await migrations.pending(conn, self.queries)


@contextlib.asynccontextmanager
async def open_database(
    database_url: str | None, data_dir: Path, *, max_size: int = 2
) -> AsyncIterator[Database]:
    """A connected Database: at `database_url`, or an embedded server under `data_dir`."""
    embedded = None
    dsn = database_url
    if dsn is None:
        embedded = EmbeddedPostgres(data_dir / "postgres")
        dsn = embedded.start()
    db = await Database.connect(dsn, min_size=1, max_size=max_size)
    try:
        yield db
    finally:
        await db.close()
        if embedded is not None:
            embedded.stop()


class EmbeddedPostgres:
    """A PostgreSQL server under a data folder (pgserver), for a machine with no DATABASE_URL."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: Any = None

    def start(self) -> str:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset, as in most containers
            warnings.simplefilter("ignore")
            import pgserver  # imported here: only the embedded mode needs it

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._server = pgserver.get_server(  # type: ignore[attr-defined]
            str(self.data_dir.resolve()), cleanup_mode="stop"
        )
        uri: str = self._server.get_uri()
        log.info("embedded postgres started", extra={"action": "db.embedded_started"})
        return uri

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
