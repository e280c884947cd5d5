"""Migrations apply in order to an empty database, once, and leave the log append-only."""

from __future__ import annotations

import asyncpg
import pytest

from inlet_bridge.store.db import Database
from inlet_bridge.store.migrations import discover


async def test_all_migrations_apply_to_an_empty_database_once(empty_database: str) -> None:
    db = await Database.connect(empty_database, min_size=1)
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


INSERT_OLD_AND_NEW = (
    "INSERT INTO events (source, event_id, booking_id, property_id, occurred_at,"
    " received_at, body_sha256, event) VALUES"
    " ('s', 'old', 'b-old', 'p', now(), now() - interval '400 days', '\\x00', '{}'),"
    " ('s', 'new', 'b-new', 'p', now(), now(), '\\x00', '{}')"
)


async def test_the_retention_setting_no_longer_opens_the_log(db: Database) -> None:
    async with db.pool.acquire() as conn:
        await conn.execute(INSERT_OLD_AND_NEW)
        for scope in (
            "SET inlet_bridge.retention = 'on'",
            "SET LOCAL inlet_bridge.retention = 'on'",
        ):
            async with conn.transaction():
                await conn.execute(scope)
                for statement in (
                    "DELETE FROM events",
                    "DELETE FROM events WHERE event_id = 'old'",
                    "UPDATE events SET booking_id = 'x'",
                    "TRUNCATE events",
                ):
                    with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
                        async with conn.transaction():
                            await conn.execute(statement)
        assert await conn.fetchval("SELECT count(*) FROM events") == 2


@pytest.mark.parametrize(
    ("statement", "target"),
    [
        pytest.param(
            "DO $$ BEGIN DELETE FROM events WHERE event_id = 'old'; END $$", "old", id="do-block"
        ),
        pytest.param(
            "DO $$ BEGIN PERFORM purge_events_before(now() - interval '365 days');"
            " DELETE FROM events WHERE event_id = 'new'; END $$",
            "new",
            id="do-block-after-a-purge",
        ),
        # Not on the search path, the look-alike shows on the call stack by its schema.
        pytest.param("SELECT other.purge_events_before(now())", "old", id="look-alike"),
        # First on the path it shows as purge_events_before; the row's age still refuses.
        pytest.param(
            "SELECT other.purge_events_before(now()) FROM set_config('search_path',"
            " 'other, public', false)",
            "new",
            id="look-alike-first-on-the-path",
        ),
    ],
)
async def test_only_purge_events_before_deletes_and_only_old_rows(
    db: Database, statement: str, target: str
) -> None:
    async with db.pool.acquire() as conn:
        await conn.execute(INSERT_OLD_AND_NEW)
        await conn.execute(
            "CREATE SCHEMA other;"
            " CREATE FUNCTION other.purge_events_before(cutoff timestamptz) RETURNS bigint"
            " LANGUAGE plpgsql AS $$ BEGIN"
            " DELETE FROM public.events e WHERE e.event_id = current_setting('test.target');"
            " RETURN 0; END $$"
        )
        await conn.execute("SELECT set_config('test.target', $1, false)", target)
        with pytest.raises(asyncpg.RestrictViolationError, match="append-only: DELETE refused"):
            await conn.execute(statement)
        await conn.execute("RESET search_path")
        left = await conn.fetch("SELECT event_id FROM events ORDER BY event_id")
        assert [r["event_id"] for r in left] == ["new", "old"]
        # The purge itself still removes old, quiet bookings.
        assert await conn.fetchval("SELECT purge_events_before(now() - interval '30 days')") == 1
        left = await conn.fetch("SELECT event_id FROM events ORDER BY event_id")
        assert [r["event_id"] for r in left] == ["new"]
