"""Where is the database, and how do we talk to it? One manager: the pool and the named queries."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
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
    async def listening(
        self,
        channel: str,
        callback: Callable[[], None],
        *,
        retry_seconds: float = 0.5,
        max_retry_seconds: float = 30.0,
        check_seconds: float = 30.0,
    ) -> AsyncIterator[None]:
        """Call `callback` on every NOTIFY on `channel` while the context is open.

        If the listening connection drops (a database restart, a failover, a terminated
        backend), LISTEN is opened again on a new connection, retried with backoff from
        `retry_seconds` up to `max_retry_seconds`; `callback` is then called once, because
        what was notified meanwhile is lost. A connection that died without a word is found by
        a ping every `check_seconds`.
        """
        listener = _Listener(
            self.pool,
            channel,
            callback,
            retry_seconds=retry_seconds,
            max_retry_seconds=max_retry_seconds,
            check_seconds=check_seconds,
        )
        await listener.start()
        try:
            yield
        finally:
            await listener.stop()

    async def migrate(self) -> list[int]:
        async with self.pool.acquire() as conn:
            return await migrations.migrate(conn, self.queries)

    async def pending_migrations(self) -> list[int]:
        async with self.pool.acquire() as conn:
            return await migrations.pending(conn, self.queries)


class _Listener:
    """One LISTEN kept open on a pooled connection, opened again whenever that connection drops."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        channel: str,
        callback: Callable[[], None],
        *,
        retry_seconds: float,
        max_retry_seconds: float,
        check_seconds: float,
    ) -> None:
        self._pool = pool
        self._channel = channel
        self._callback = callback
        self._retry_seconds = retry_seconds
        self._max_retry_seconds = max_retry_seconds
        self._check_seconds = check_seconds
        self._conn: Connection | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """LISTEN now (a database that is down at start-up is an error), then keep it open."""
        self._conn = await self._listen()
        self._task = asyncio.create_task(self._keep_open())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.remove_termination_listener(self._on_lost)
            await conn.remove_listener(self._channel, self._on_notify)
        except Exception:
            await self._discard(conn)  # it broke (or closed) just now
        else:
            await self._pool.release(conn)

    def _on_notify(self, *_: object) -> None:
        self._callback()

    def _on_lost(self, *_: object) -> None:
        self._lost.set()

    async def _listen(self) -> Connection:
        conn: Connection = await self._pool.acquire(timeout=self._check_seconds)
        try:
            self._lost.clear()
            conn.add_termination_listener(self._on_lost)
            await conn.add_listener(self._channel, self._on_notify)
        except BaseException:
            await self._discard(conn)
            raise
        return conn

    async def _keep_open(self) -> None:
        while True:
            await self._until_lost()
            conn, self._conn = self._conn, None
            if conn is not None:
                await self._discard(conn)
            log.warning(
                "listening connection lost; listening again",
                extra={"action": "db.listen_lost", "channel": self._channel},
            )
            self._conn = await self._listen_again()
            # Notifications sent while nobody listened are gone: look once now instead.
            self._callback()

    async def _until_lost(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._check_seconds):
                    await self._lost.wait()
                return
            conn = self._conn
            if conn is None:
                return
            try:  # a closed connection's proxy refuses the ping too
                async with asyncio.timeout(self._check_seconds):
                    await conn.fetchval("SELECT 1")
            except Exception:
                return

    async def _listen_again(self) -> Connection:
        delay = self._retry_seconds
        failures = 0
        while True:
            try:
                conn = await self._listen()
            except Exception as exc:
                failures += 1
                log.warning(
                    "could not listen again; retrying",
                    extra={
                        "action": "db.listen_retry",
                        "channel": self._channel,
                        "failures": failures,
                        "retry_in_seconds": delay,
                        "error": type(exc).__name__,
                    },
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_retry_seconds)
                continue
            log.info(
                "listening again",
                extra={
                    "action": "db.listen_restored",
                    "channel": self._channel,
                    "failures": failures,
                },
            )
            return conn

    async def _discard(self, conn: Connection) -> None:
        """Close a broken connection and give it back to the pool, which replaces it.

        A connection that closed has already gone back by itself (its proxy then refuses
        every call), hence each step may fail.
        """
        with contextlib.suppress(Exception):
            conn.remove_termination_listener(self._on_lost)
        with contextlib.suppress(Exception):
            if not conn.is_closed():
                conn.terminate()
        with contextlib.suppress(Exception):
            await self._pool.release(conn)


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


EMBEDDED_MISSING = (
    "DATABASE_URL is not set and the embedded PostgreSQL is not installed"
    " (pip install 'inlet-bridge[embedded]'); set DATABASE_URL to a PostgreSQL server"
)


def embedded_available() -> bool:
    """Whether the `embedded` extra (pgserver) is installed, without importing it."""
    try:
        return importlib.util.find_spec("pgserver") is not None
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules
        return False


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
