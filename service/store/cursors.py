"""Where has each PMS poller read up to, and who is the poller? Cursors and leadership."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime

import msgspec

from service.domain.booking import BookingEvent
from service.store.db import Database


class Cursor(msgspec.Struct, frozen=True, kw_only=True):
    connection: str
    sync_time: datetime | None
    held: tuple[str, ...] = ()
    last_success_at: datetime | None = None
    last_error: str | None = None


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

    @contextlib.asynccontextmanager
    async def leadership(self, connection: str) -> AsyncIterator[bool]:
        """Try to become the connection's only poller; the lock lives as long as this session."""
        async with self._db.pool.acquire() as conn:
            key = f"poller:{connection}"
            leader = bool(await conn.fetchval(self._db.sql("try_leader_lock"), key))
            try:
                yield leader
            finally:
                if leader:
                    await conn.fetchval(self._db.sql("release_leader_lock"), key)
