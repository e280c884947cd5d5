"""Where has each PMS poller read up to, and who is the poller? Cursors and leadership."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg
import msgspec

from inlet_bridge.domain.booking import BookingEvent
from inlet_bridge.store.db import Connection, Database

log = logging.getLogger(__name__)

# How long the leadership check may take; a session that does not answer in time is not
# trusted to hold the lock (its network may be gone while PostgreSQL has freed the lock).
LOCK_CHECK_SECONDS = 5.0


class Cursor(msgspec.Struct, frozen=True, kw_only=True):
    connection: str
    sync_time: datetime | None
    # Reservations the next poll looks at again: held back (unpaid) or failed to read.
    held: tuple[str, ...] = ()
    last_success_at: datetime | None = None
    last_error: str | None = None


class StayWithAccess(msgspec.Struct, frozen=True, kw_only=True):
    """A stay of a source whose access is active at Inlet or has a call pending."""

    booking_id: str
    stay_id: str


class Leadership:
    """One try at leading a connection's poller, on the database session that holds the lock.

    The lock is a session-level advisory lock: it lasts exactly as long as that session. A
    session can end under us (a restart of PostgreSQL, `pg_terminate_backend`, a network cut),
    and then another replica can take the lock while this one still thinks it leads, so the
    poll loop asks `still_held()` before every poll.
    """

    def __init__(self, conn: Connection, key: str, check_sql: str, *, leader: bool) -> None:
        self._conn = conn
        self._key = key
        self._check_sql = check_sql
        self.leader = leader

    async def still_held(self) -> bool:
        """Whether the lock is still this session's, asked on the session itself."""
        if not self.leader:
            return False
        try:
            held = bool(
                await self._conn.fetchval(self._check_sql, self._key, timeout=LOCK_CHECK_SECONDS)
            )
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            log.warning(
                "poller lock session unusable",
                extra={"action": "poller.lock_check_failed", "error": type(exc).__name__},
            )
            held = False
        if not held:
            self.leader = False
        return held


class CursorStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, connection: str) -> Cursor | None:
        row = await self._db.fetchrow("get_cursor", connection)
        if row is None:
            return None
        return Cursor(
            connection=row["connection"],
            sync_time=row["sync_time"],
            held=tuple(row["held"]),
            last_success_at=row["last_success_at"],
            last_error=row["last_error"],
        )

    async def save(
        self, connection: str, *, sync_time: datetime | None, held: tuple[str, ...], now: datetime
    ) -> None:
        await self._db.execute("save_cursor", connection, sync_time, list(held), now)

    async def failed(self, connection: str, error: str, now: datetime) -> None:
        await self._db.execute("cursor_error", connection, error, now)

    async def last_event_for_stay(self, source: str, stay_id: str) -> BookingEvent | None:
        text = await self._db.fetchval("last_event_for_stay", source, stay_id)
        return msgspec.json.decode(text, type=BookingEvent) if text else None

    async def stays_with_access(self, source: str) -> list[StayWithAccess]:
        """The source's stays with access active or on its way (what a backfill re-reads)."""
        rows = await self._db.fetch("stays_with_access", source)
        return [StayWithAccess(booking_id=r["booking_id"], stay_id=r["stay_id"]) for r in rows]

    @contextlib.asynccontextmanager
    async def leadership(self, connection: str) -> AsyncIterator[Leadership]:
        """Try to become the connection's only poller; the lock lives as long as this session."""
        async with self._db.pool.acquire() as conn:
            key = f"poller:{connection}"
            won = bool(await conn.fetchval(self._db.sql("try_leader_lock"), key))
            lock = Leadership(conn, key, self._db.sql("holds_leader_lock"), leader=won)
            try:
                yield lock
            finally:
                if won:
                    # A session that died took its lock with it: nothing left to give back.
                    with contextlib.suppress(
                        asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError
                    ):
                        await conn.fetchval(
                            self._db.sql("release_leader_lock"), key, timeout=LOCK_CHECK_SECONDS
                        )
