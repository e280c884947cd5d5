"""Do the reads whose cost must stay flat read by index once the tables are large? PostgreSQL's
own plans, on tables with enough rows (and statistics) for a scan to look cheaper to a careless
query: a batch's attempt history and the sweep's chunk marking never scan a whole table, a
batch's reads and locks touch its own bookings' rows whether or not the tables have statistics,
and no plan cached while the tables were empty outlives the connection's statement lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from inlet_bridge.store import db as db_module
from inlet_bridge.store.db import Connection, Database

from ..support import START, Harness, event

HOUR = timedelta(hours=1)
KEYS = {"sources": ["demo-pms"] * 50, "booking_ids": [f"R-{n}" for n in range(50)]}


@contextlib.asynccontextmanager
async def rolled_back(h: Harness) -> AsyncIterator[Connection]:
    """A connection in a transaction that is rolled back: a locking or writing statement is
    executed for its plan or its reads, and leaves nothing."""
    async with h.db.pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            yield conn
        finally:
            await transaction.rollback()


async def plan(h: Harness, name: str, **values: Any) -> str:
    """The plan PostgreSQL runs `name` with (executed, then rolled back)."""
    query = h.db.queries[name]
    async with rolled_back(h) as conn:
        rows = await conn.fetch("EXPLAIN (ANALYZE) " + query.sql, *query.bind(values))
    return "\n".join(r[0] for r in rows)


@pytest.fixture
async def long_history(h: Harness) -> Harness:
    """One booking's GrantAccess with 20,000 attempts stored: as many rows as a busy year's."""
    await h.post(event("e1", booking_id="R-1", arrival=START + HOUR))
    await h.settle()
    (call,) = await h.rows("SELECT id FROM inlet_calls")
    await h.db.pool.execute(
        "INSERT INTO call_attempts (call_id, attempt, started_at, finished_at, outcome)"
        " SELECT $1, n, $2, $2, 'temporary' FROM generate_series(2, 20001) AS n",
        call["id"],
        START,
    )
    await h.db.pool.execute("ANALYZE call_attempts")
    return h


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("bookings_grant_history", KEYS),
        ("bookings_unsettled_call_attempts", KEYS),
        ("earlier_grant_attempts", {"grant_key": "demo-pms:R-2:S1", "before_call": 10**9}),
    ],
)
async def test_attempts_are_read_by_key_however_many_are_stored(
    long_history: Harness, name: str, values: dict[str, Any]
) -> None:
    found = await plan(long_history, name, **values)
    assert "Seq Scan on call_attempts" not in found, found


async def test_the_sweep_marks_a_chunk_without_reading_the_whole_table(h: Harness) -> None:
    await h.db.pool.execute(
        "INSERT INTO bookings (source, booking_id, property_id, due_at)"
        " SELECT 'demo-pms', 'B-' || lpad(n::text, 6, '0'), 'oslo-1', $1"
        " FROM generate_series(1, 20000) AS n",
        START + HOUR,
    )
    await h.db.pool.execute("ANALYZE bookings")
    found = await plan(
        h,
        "sweep_mark_bookings",
        after_source="",
        after_booking_id="",
        limit=1000,
        now=START,
    )
    assert "Seq Scan on bookings" not in found, found


async def test_a_statement_planned_on_empty_tables_is_prepared_again(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL keeps a prepared statement's generic plan until the tables' statistics
    change; planned on empty tables it scans them once they have grown. A connection prepares
    each statement again after STATEMENT_LIFETIME_SECONDS (asyncpg's timer, made one second
    here: the one real wait of this module), and the new plan reads by index."""
    monkeypatch.setattr(db_module, "STATEMENT_LIFETIME_SECONDS", 1)
    db = await Database.connect(database_url, min_size=1, max_size=1)
    query = db.queries["bookings_grants"]
    args = query.bind({"sources": ["demo-pms"], "booking_ids": ["R-1"]})
    scans = (
        "SELECT coalesce(sum(seq_scan), 0) FROM pg_stat_xact_user_tables WHERE relname = 'grants'"
    )
    try:
        async with db.pool.acquire() as conn:
            await conn.execute("ANALYZE grants")
            for _ in range(6):  # from the sixth execution on, a generic plan may be kept
                await conn.fetch(query.sql, *args)
            await conn.execute(
                "INSERT INTO grants (grant_key, source, booking_id, stay_id, property_id, state,"
                " created_at, updated_at)"
                " SELECT 'demo-pms:G-' || n || ':S1', 'demo-pms', 'G-' || n, 'S1', 'oslo-1',"
                " 'active', $1, $1 FROM generate_series(1, 20000) AS n",
                START,
            )

            async def scanned() -> int:
                async with conn.transaction():  # counts not yet reported: read the change
                    before = int(await conn.fetchval(scans))
                    await conn.fetch(query.sql, *args)
                    return int(await conn.fetchval(scans)) - before

            assert await scanned() == 1  # the plan kept from the empty table scans
            await asyncio.sleep(1.2)
            assert await scanned() == 0  # prepared again: by index
    finally:
        await db.close()


# What one settled booking's rows become in a busy first hour: copied under other booking ids,
# every second copy with its call still pending, and never analyzed (no statistics yet).
COPIES = 5000
_COPY = [
    "INSERT INTO bookings SELECT (jsonb_populate_record(b, jsonb_build_object("
    " 'booking_id', 'X-' || n))).* FROM bookings b, generate_series(1, $1) AS n"
    " WHERE b.booking_id = 'R-1'",
    "INSERT INTO events SELECT (jsonb_populate_record(e, jsonb_build_object("
    " 'position', nextval('events_position_seq'), 'event_id', e.event_id || '-' || n,"
    " 'booking_id', 'X-' || n))).* FROM events e, generate_series(1, $1) AS n"
    " WHERE e.booking_id = 'R-1'",
    "INSERT INTO grants SELECT (jsonb_populate_record(g, jsonb_build_object("
    " 'booking_id', 'X-' || n, 'grant_key', replace(g.grant_key, ':R-1:', ':X-' || n || ':')"
    " ))).* FROM grants g, generate_series(1, $1) AS n WHERE g.booking_id = 'R-1'",
    "INSERT INTO inlet_calls SELECT (jsonb_populate_record(c, jsonb_build_object("
    " 'id', nextval('inlet_calls_id_seq'), 'booking_id', 'X-' || n,"
    " 'grant_key', replace(c.grant_key, ':R-1:', ':X-' || n || ':'),"
    " 'state', CASE WHEN n % 2 = 0 THEN 'pending' ELSE c.state END))).*"
    " FROM inlet_calls c, generate_series(1, $1) AS n WHERE c.booking_id = 'R-1'",
    "INSERT INTO call_attempts SELECT (jsonb_populate_record(a, jsonb_build_object("
    " 'call_id', copy.id))).* FROM call_attempts a JOIN inlet_calls c ON c.id = a.call_id"
    " JOIN inlet_calls copy ON copy.booking_id LIKE 'X-%' AND copy.operation = c.operation"
    " WHERE c.booking_id = 'R-1' AND $1 > 0",
]
BATCH = {
    "sources": ["demo-pms"] * 50,
    "booking_ids": [f"X-{n}" for n in range(1, 51)],
    "owner": "nobody",
}
BATCH_READS = [
    "lock_bookings",
    "bookings_events",
    "bookings_grants",
    "lock_bookings_pending_calls",
    "bookings_escalated_calls",
    "bookings_grant_history",
    "lock_bookings_for_outcomes",
    "bookings_unsettled_call_attempts",
]


def batch_args(name: str, h: Harness) -> tuple[str, list[Any]]:
    """`name`'s SQL and its arguments for the batch of 50 copies."""
    query = h.db.queries[name]
    return query.sql, query.bind({p: BATCH[p] for p in query.params})


async def rows_read(h: Harness, name: str, args: list[Any] | None = None) -> int:
    """The table rows (heap tuples) `name` reads for the batch, or with `args` (executed,
    rolled back)."""
    sql, args = (h.db.queries[name].sql, args) if args is not None else batch_args(name, h)
    read = (
        "SELECT coalesce(sum(coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)), 0)"
        " FROM pg_stat_xact_user_tables"
    )
    async with rolled_back(h) as conn:
        before = int(await conn.fetchval(read))
        await conn.fetch(sql, *args)
        return int(await conn.fetchval(read)) - before


async def pages_read(h: Harness, name: str) -> int:
    """The pages `name` touches for the batch (executed, rolled back), as EXPLAIN counts them:
    index entries not yet vacuumed away cost pages though they yield no row."""
    sql, args = batch_args(name, h)
    async with rolled_back(h) as conn:
        rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, *args)
    top = json.loads(rows[0][0])[0]["Plan"]
    return int(top["Shared Hit Blocks"]) + int(top["Shared Read Blocks"])


@pytest.fixture
async def first_hour(h: Harness) -> Harness:
    await h.post(event("e1", booking_id="R-1", arrival=START + HOUR))
    await h.settle()
    async with h.db.pool.acquire() as conn:
        for statement in _COPY:
            await conn.execute(statement, COPIES)
    return h


@pytest.mark.parametrize("statistics", ["none yet", "current"])
async def test_a_batch_reads_its_own_rows(first_hour: Harness, statistics: str) -> None:
    """Without statistics PostgreSQL guesses how many rows a booking has; with them or not,
    a batch of 50 bookings reads about their rows, not the 5,000 others' (a hash join over a
    scan, or an index walked in the output's order and filtered, read them all)."""
    if statistics == "current":
        await first_hour.db.pool.execute("ANALYZE")
    read = {name: await rows_read(first_hour, name) for name in BATCH_READS}
    assert {name: n for name, n in read.items() if n >= 1000} == {}, read


async def test_a_batch_finds_its_pending_calls_in_a_wave_its_statistics_never_saw(
    first_hour: Harness,
) -> None:
    """Statistics taken while no call was pending (a quiet hour), then 5,000 calls queued at
    once (a re-sync, a wave): the batch's look-up of its pending calls reads its own bookings'
    index entries, not the whole index of pending calls (which the statistics call empty) once
    for each booking of the batch."""
    await first_hour.db.pool.execute("UPDATE inlet_calls SET state = 'succeeded'")
    await first_hour.db.pool.execute("VACUUM ANALYZE inlet_calls")
    await first_hour.db.pool.execute(
        "UPDATE inlet_calls SET state = 'pending' WHERE booking_id LIKE 'X-%'"
    )
    assert await rows_read(first_hour, "lock_bookings_pending_calls") < 1000
    assert await pages_read(first_hour, "lock_bookings_pending_calls") < 1000


async def test_a_batch_finds_its_pending_calls_past_a_wave_not_yet_vacuumed(
    first_hour: Harness,
) -> None:
    """A wave of 5,000 calls queued and answered, analyzed since (no call pending), not yet
    vacuumed: the indexes of pending calls still hold the wave's entries. The batch's look-up
    reads its own bookings' entries, not those of the whole wave for each booking."""
    await first_hour.db.pool.execute(
        "UPDATE inlet_calls SET state = 'pending' WHERE booking_id LIKE 'X-%'"
    )
    await first_hour.db.pool.execute("VACUUM inlet_calls")
    await first_hour.db.pool.execute("UPDATE inlet_calls SET state = 'succeeded'")
    await first_hour.db.pool.execute("ANALYZE inlet_calls")
    assert await pages_read(first_hour, "lock_bookings_pending_calls") < 400


async def test_a_batch_finds_its_pending_calls_by_booking_when_none_is_pending(
    first_hour: Harness,
) -> None:
    """The usual hour (nothing pending, statistics current): each booking's pending calls are
    found in the index of pending calls by booking, not among the booking's past calls."""
    await first_hour.db.pool.execute("UPDATE inlet_calls SET state = 'succeeded'")
    await first_hour.db.pool.execute("VACUUM ANALYZE inlet_calls")
    found = await plan(
        first_hour,
        "lock_bookings_pending_calls",
        sources=BATCH["sources"],
        booking_ids=BATCH["booking_ids"],
    )
    assert "inlet_calls_pending_by_booking_idx" in found, found


async def test_a_claim_of_calls_reads_the_few_it_takes_in_a_wave_its_statistics_never_saw(
    first_hour: Harness,
) -> None:
    """Statistics taken while no call was pending (the hour before a wave), then 5,000 calls
    due at once: a claim of 8 walks the index of due calls in its order and stops after the 8
    it leases; it does not read every due call and sort them for each claim."""
    await first_hour.db.pool.execute("UPDATE inlet_calls SET state = 'succeeded'")
    await first_hour.db.pool.execute("VACUUM ANALYZE inlet_calls")
    await first_hour.db.pool.execute(
        "UPDATE inlet_calls SET state = 'pending', next_attempt_at = $1, lease_until = NULL"
        " WHERE booking_id LIKE 'X-%'",
        START,
    )
    claim = [START + timedelta(minutes=1), "replica-1", 8, 30.0]  # now, owner, limit, lease
    assert await rows_read(first_hour, "claim_calls", claim) < 100
