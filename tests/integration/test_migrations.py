"""Migrations apply in order to an empty database, once, and leave the log append-only."""

from __future__ import annotations

import asyncpg
import pytest

from service.store.db import Database
from service.store.migrations import discover

from ..conftest import _with_database


async def test_all_migrations_apply_to_an_empty_database_once(pg_server: str) -> None:
    admin = await asyncpg.connect(pg_server)
    await admin.execute("DROP DATABASE IF EXISTS migrations_empty")
    await admin.execute("CREATE DATABASE migrations_empty")
    await admin.close()
    db = await Database.connect(_with_database(pg_server, "migrations_empty"), min_size=1)
    try:
        assert await db.pending_migrations() == [m.version for m in discover()]
        applied = await db.migrate()
        assert applied == [m.version for m in discover()]
        assert await db.migrate() == []
        assert await db.pending_migrations() == []
    finally:
        await db.close()


async def test_event_log_refuses_update_and_delete(db: Database) -> None:
    async with db.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO events (source, event_id, booking_id, property_id, occurred_at,"
            " body_sha256, event) VALUES ('s', 'e1', 'b', 'p', now(), '\\x00', '{}')"
        )
        with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
            await conn.execute("UPDATE events SET booking_id = 'x'")
        with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
            await conn.execute("DELETE FROM events")
        with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
            await conn.execute("TRUNCATE events")
        assert await conn.fetchval("SELECT count(*) FROM events") == 1


async def test_retention_purges_only_old_quiet_bookings(db: Database) -> None:
    async with db.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO events (source, event_id, booking_id, property_id, occurred_at,"
            " received_at, body_sha256, event) VALUES"
            " ('s', 'old', 'b-old', 'p', now(), now() - interval '400 days', '\\x00', '{}'),"
            " ('s', 'mixed-1', 'b-mixed', 'p', now(), now() - interval '400 days', '\\x00', '{}'),"
            " ('s', 'mixed-2', 'b-mixed', 'p', now(), now(), '\\x00', '{}')"
        )
        with pytest.raises(asyncpg.InvalidParameterValueError):
            await conn.fetchval("SELECT purge_events_before(now())")
        removed = await conn.fetchval("SELECT purge_events_before(now() - interval '365 days')")
        assert removed == 1
        left = await conn.fetch("SELECT event_id FROM events ORDER BY event_id")
        assert [r["event_id"] for r in left] == ["mixed-1", "mixed-2"]
        with pytest.raises(asyncpg.RestrictViolationError):
            await conn.execute("DELETE FROM events")
