"""Where is the database, and how do we talk to it? One manager: the pool and the named queries."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import re
import warnings
import weakref
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from inlet_bridge.store import migrations
from inlet_bridge.store.queries import Query, load_queries

log = logging.getLogger(__name__)

# How long a connection keeps a prepared statement before preparing it again. PostgreSQL caches
# a generic plan of a prepared statement after five executions and keeps it until the tables'
# statistics change (autovacuum's ANALYZE, a minute or more after they grew): planned while the
# tables were nearly empty (a fresh database, the service's first minutes), it scans tables
# that have grown since. Prepared again, a statement is planned for the tables' current size.
# asyncpg's default is 300 s; preparing a statement again costs one parse a connection.
STATEMENT_LIFETIME_SECONDS = 30

# What store modules are handed inside a transaction: a pooled connection.
Connection = PoolConnectionProxy


class LeaseLost(Exception):
    """Another worker owns this booking, call or delivery now; nothing was written."""


def touched(status: str) -> bool:
    """Whether a statement's status (`UPDATE 1`, `DELETE 0`, ...) says it changed any row."""
    return not status.endswith(" 0")


T = TypeVar("T")


class Queries:
    """Named queries run on one executor (the pool, or a connection inside a transaction).

    Named parameters are bound by keyword (`fetch("booking_grants", source=s, booking_id=b)`);
    a short query written with numbered parameters takes them in order.
    """

    def __init__(self, executor: Any, queries: dict[str, Query]) -> None:
        self._executor = executor
        self._queries = queries

    def _args(self, name: str, args: tuple[Any, ...], params: dict[str, Any]) -> list[Any]:
        query = self._queries[name]
        if query.params:
            if args:
                raise TypeError(f"query {name}: its parameters are named; pass them by name")
            return query.bind(params)
        if params:
            raise TypeError(f"query {name}: its parameters are numbered; pass them in order")
        return list(args)

    async def fetch(self, name: str, *args: Any, **params: Any) -> list[asyncpg.Record]:
        sql = self._queries[name].sql
        return list(await self._executor.fetch(sql, *self._args(name, args, params)))

    async def fetchrow(self, name: str, *args: Any, **params: Any) -> asyncpg.Record | None:
        sql = self._queries[name].sql
        row: asyncpg.Record | None = await self._executor.fetchrow(
            sql, *self._args(name, args, params)
        )
        return row

    async def fetchval(self, name: str, *args: Any, **params: Any) -> Any:
        sql = self._queries[name].sql
        return await self._executor.fetchval(sql, *self._args(name, args, params))

    async def execute(self, name: str, *args: Any, **params: Any) -> str:
        sql = self._queries[name].sql
        return str(await self._executor.execute(sql, *self._args(name, args, params)))

    async def fetch_as(self, type_: type[T], name: str, *args: Any, **params: Any) -> list[T]:
        """The rows as `type_` (a Struct whose fields are the columns)."""
        rows = await self.fetch(name, *args, **params)
        return [msgspec.convert(dict(r), type_) for r in rows]

    async def fetchrow_as(self, type_: type[T], name: str, *args: Any, **params: Any) -> T | None:
        row = await self.fetchrow(name, *args, **params)
        return None if row is None else msgspec.convert(dict(row), type_)


def _json_text(value: Any) -> str:
    """jsonb parameters: a JSON text as it is, anything else (a Struct, a dict) encoded."""
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb is read as its text (decoded by msgspec into the type the caller expects) and
    # written from a Struct, a dict or a ready JSON text.
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=_json_text, decoder=str, format="text"
    )


class _Resets:
    """Which pooled connections come back with no session state, so their release needs no
    `RESET ALL` round trip.

    A connection qualifies only when `Database.transaction()` hands it back: its statements ran
    inside one transaction that ended (committed, or rolled back by the pool), and the named
    queries keep no state past it (no SET, LISTEN, cursor or session advisory lock: a unit test
    checks the queries). Any other use of a pooled connection (LISTEN, the pollers' advisory
    locks, a held connection) is reset as asyncpg always does.
    """

    def __init__(self) -> None:
        self._clean: weakref.WeakSet[asyncpg.Connection] = weakref.WeakSet()

    def mark_clean(self, conn: Connection) -> None:
        raw = getattr(conn, "_con", None)  # the proxy's connection
        if raw is not None and not raw.is_in_transaction():
            self._clean.add(raw)

    async def reset(self, conn: asyncpg.Connection) -> None:
        if conn in self._clean:
            self._clean.discard(conn)
            return
        await conn.execute(conn.get_reset_query())


# What would leave state in a session (a setting, a listener, a cursor, a session lock): a
# connection that ran it is reset as asyncpg always does.
SESSION_STATE = re.compile(
    r"\A\s*(SET\s+(?!LOCAL\b)|RESET\b|LISTEN\b|DECLARE\b|PREPARE\b|CREATE\s+TEMP)"
    r"|pg_advisory_lock\(|pg_try_advisory_lock\(|set_config\(",
    re.IGNORECASE,
)


class _OneStatement:
    """Runs one named query on a pooled connection outside any explicit transaction, and gives
    the connection back without a reset: a single statement keeps no session state (the unit
    test of the queries checks that none does)."""

    def __init__(self, pool: asyncpg.Pool, resets: _Resets) -> None:
        self._pool = pool
        self._resets = resets
        self._stateless: dict[str, bool] = {}

    async def _run(self, method: str, sql: str, *args: Any) -> Any:
        stateless = self._stateless.get(sql)
        if stateless is None:
            stateless = self._stateless[sql] = SESSION_STATE.search(sql) is None
        async with self._pool.acquire() as conn:
            result = await getattr(conn, method)(sql, *args)
            if stateless:
                self._resets.mark_clean(conn)
            return result

    async def fetch(self, sql: str, *args: Any) -> Any:
        return await self._run("fetch", sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        return await self._run("fetchrow", sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._run("fetchval", sql, *args)

    async def execute(self, sql: str, *args: Any) -> Any:
        return await self._run("execute", sql, *args)


class Database(Queries):
    """The pool and the named queries; store modules borrow connections from here."""

    def __init__(
        self, pool: asyncpg.Pool, queries: dict[str, Query], resets: _Resets | None = None
    ) -> None:
        super().__init__(pool if resets is None else _OneStatement(pool, resets), queries)
        self.pool = pool
        self.queries = queries
        self._resets = resets

    def sql(self, name: str) -> str:
        return self.queries[name].sql

    def on(self, conn: Connection) -> Queries:
        """The named queries on `conn` (inside a transaction)."""
        return Queries(conn, self.queries)

    @classmethod
    async def connect(cls, dsn: str, *, min_size: int = 2, max_size: int = 10) -> Database:
        resets = _Resets()
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            command_timeout=60,
            max_cached_statement_lifetime=STATEMENT_LIFETIME_SECONDS,
            init=_init_connection,
            reset=resets.reset,
        )
        return cls(pool, load_queries(), resets)

    async def close(self) -> None:
        await self.pool.close()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """A pooled connection in one transaction; given back without a reset round trip."""
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                yield conn
            if self._resets is not None:
                self._resets.mark_clean(conn)

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


async def create_database(server_dsn: str, name: str) -> str:
    """Create the database `name` on the server of `server_dsn`; the DSN to reach it."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a plain database name: {name!r}")
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, sep, query = server_dsn.partition("?")
    return f"{base.rpartition('/')[0]}/{name}{sep}{query}"


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
