"""The loop at scale, for correctness: a success as planned costs no second plan (and every other
success still gets one), parallel workers plan each booking once, the sweep marks in chunks
spread over its interval and never goes before fresh work, retention keeps what must stay, and
re-sync candidates are read a page at a time. Time is the harness's clock, never a sleep."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

import pytest

from inlet_bridge.store import resync as resync_store
from inlet_bridge.store.reconcile import ReconcileStore
from inlet_bridge.store.retention import RetentionStore
from inlet_bridge.workers.reconciler import Reconciler

from ..support import SOURCE, START, Harness, event, held_recording, stay

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


async def booking_row(h: Harness, booking_id: str) -> dict[str, Any]:
    (row,) = await h.rows(
        "SELECT marked_seq, seen_seq, plans, swept_at FROM bookings WHERE booking_id = $1",
        booking_id,
    )
    return row


async def test_a_grant_that_succeeds_as_planned_costs_no_second_plan(h: Harness) -> None:
    await h.post(event("e1", booking_id="R-1", arrival=START + HOUR))
    assert await h.runtime.reconciler.run_once() == 1
    assert await h.runtime.calls.run_once() == 1

    row = await booking_row(h, "R-1")
    assert row["marked_seq"] == row["seen_seq"]  # not marked again
    assert row["plans"] == 1
    assert await h.runtime.reconciler.run_once() == 0
    (grant,) = await h.grants()
    assert grant["state"] == "active"


async def test_a_call_in_flight_while_the_booking_changed_is_looked_at_again(h: Harness) -> None:
    """A plan made while the GrantAccess was in flight left that grant alone: its success must
    bring another plan, which sends the newer room."""
    await h.post(event("e1", booking_id="R-1", arrival=START + HOUR))
    assert await h.runtime.reconciler.run_once() == 1
    (call,) = await h.runtime.calls.claim_free()
    moved = [stay(arrival=START + HOUR, resource_id="102")]
    await h.post(
        event("e2", booking_id="R-1", stays=moved, occurred_at=START + timedelta(seconds=10))
    )
    assert await h.runtime.reconciler.run_once() == 1  # plans nothing for the grant in flight
    assert [r["operation"] for r in await h.rows("SELECT operation FROM inlet_calls")] == ["grant"]

    await h.runtime.calls.execute(call)
    row = await booking_row(h, "R-1")
    assert row["marked_seq"] > row["seen_seq"]
    await h.settle()
    calls = await h.rows("SELECT operation, state FROM inlet_calls ORDER BY id")
    assert calls == [
        {"operation": "grant", "state": "succeeded"},
        {"operation": "update", "state": "succeeded"},
    ]


async def test_a_recovery_is_followed_by_its_revocation(h: Harness) -> None:
    """A GrantAccess answered 503 (it may have reached Inlet), then a cancellation: the recovery's success is no
    settled state, so the booking is planned again and the grant revoked."""
    await h.post(event("e1", booking_id="R-1", arrival=START + HOUR))
    assert await h.runtime.reconciler.run_once() == 1
    await h.fault(kind="status", status=503, count=1, operations=["grant"])
    await h.runtime.calls.run_once()
    cancelled = [stay(arrival=START + HOUR, status="cancelled")]
    await h.post(
        event("e2", booking_id="R-1", stays=cancelled, occurred_at=START + timedelta(seconds=10))
    )
    await h.settle()
    for _ in range(3):
        await h.advance(timedelta(minutes=6))
    calls = await h.rows("SELECT operation, reason, state FROM inlet_calls ORDER BY id")
    assert {"operation": "grant", "reason": "recover", "state": "succeeded"} in calls
    assert calls[-1] == {"operation": "revoke", "reason": "booking", "state": "succeeded"}
    (grant,) = await h.grants()
    assert grant["state"] == "revoked"


async def test_parallel_workers_and_replicas_plan_each_booking_once(h: Harness) -> None:
    for n in range(60):
        await h.post(event(f"e{n}", booking_id=f"R-{n}", arrival=START + HOUR))
    other = Reconciler(
        store=ReconcileStore(h.db),
        hotels=h.runtime.reconciler._hotels,
        metrics=h.metrics,
        clock=h.clock,
        owner="another-replica",
        batch=7,
        lease_seconds=15,
        concurrency=3,
    )
    mine = Reconciler(
        store=ReconcileStore(h.db),
        hotels=h.runtime.reconciler._hotels,
        metrics=h.metrics,
        clock=h.clock,
        owner="this-replica",
        batch=5,
        lease_seconds=15,
        concurrency=4,
    )
    counts = await asyncio.gather(mine.run_once(), other.run_once())
    assert sum(counts) == 60
    per_grant = await h.rows(
        "SELECT grant_key, count(*) AS n FROM inlet_calls GROUP BY grant_key HAVING count(*) > 1"
    )
    assert per_grant == []
    assert len(await h.rows("SELECT id FROM inlet_calls WHERE state = 'pending'")) == 60
    plans = await h.rows("SELECT DISTINCT plans FROM bookings")
    assert plans == [{"plans": 1}]


async def active_bookings(h: Harness, n: int) -> None:
    for i in range(n):
        await h.post(event(f"e{i}", booking_id=f"R-{i}", arrival=START + HOUR))
    await h.settle()


async def test_the_sweep_never_goes_before_a_marked_booking(h: Harness) -> None:
    await active_bookings(h, 6)
    reconciler = h.runtime.reconciler
    assert await reconciler.sweep_step() == 6
    await h.post(event("fresh", booking_id="R-new", arrival=START + HOUR))

    store = ReconcileStore(h.db)
    first = await store.claim(owner="w1", now=h.clock.now(), limit=1, lease_seconds=15)
    assert [(b.booking_id, b.kind) for b in first] == [("R-new", "marked")]
    rest = await store.claim(owner="w2", now=h.clock.now(), limit=10, lease_seconds=15)
    assert sorted(b.booking_id for b in rest) == [f"R-{i}" for i in range(6)]
    assert {b.kind for b in rest} == {"swept"}


async def test_a_booking_both_marked_and_swept_is_served_as_marked(h: Harness) -> None:
    await active_bookings(h, 3)
    assert await h.runtime.reconciler.sweep_step() == 3
    await ReconcileStore(h.db).mark(SOURCE, "R-2", h.clock.now())
    store = ReconcileStore(h.db)
    (first,) = await store.claim(owner="w1", now=h.clock.now(), limit=1, lease_seconds=15)
    assert (first.booking_id, first.kind) == ("R-2", "marked")


async def test_the_sweep_marks_its_chunks_spread_over_its_interval(h: Harness) -> None:
    await active_bookings(h, 5)
    reconciler = Reconciler(
        store=ReconcileStore(h.db),
        hotels=h.runtime.reconciler._hotels,
        metrics=h.metrics,
        clock=h.clock,
        owner="sweeper",
        batch=50,
        lease_seconds=15,
        sweep_interval_seconds=100,
        sweep_chunk=2,
    )
    # 5 bookings in chunks of 2: 3 chunks over 90 s of the 100 s interval, 30 s apart.
    assert await reconciler.sweep_step() == 2
    assert await reconciler.sweep_step() == 0  # not yet
    assert reconciler.next_sweep_at == h.clock.now() + timedelta(seconds=30)
    h.clock.advance(timedelta(seconds=30))
    assert await reconciler.sweep_step() == 2
    h.clock.advance(timedelta(seconds=30))
    assert await reconciler.sweep_step() == 1
    assert len(await h.rows("SELECT 1 FROM bookings WHERE swept_at IS NOT NULL")) == 5
    # the next cycle starts one interval after this one did
    assert reconciler.next_sweep_at == START + timedelta(seconds=100)
    assert await reconciler.run_once() == 5
    assert await h.rows("SELECT 1 FROM bookings WHERE swept_at IS NOT NULL") == []
    h.clock.advance(timedelta(seconds=39))
    assert await reconciler.sweep_step() == 0
    h.clock.advance(timedelta(seconds=1))
    assert await reconciler.sweep_step() == 2


async def test_a_sweep_of_converged_bookings_repairs_nothing(h: Harness) -> None:
    await active_bookings(h, 4)
    assert await h.runtime.reconciler.sweep() == 0
    # a lost call is repaired, and counted
    await h.rows("DELETE FROM call_attempts")
    await h.rows("DELETE FROM inlet_calls WHERE booking_id = 'R-1'")
    await h.rows("DELETE FROM grants WHERE booking_id = 'R-1'")
    assert await h.runtime.reconciler.sweep() == 1


# ------------------------------------------------------------------ retention

OLD = START - timedelta(days=200)


async def insert_call(
    h: Harness,
    grant: str,
    operation: str,
    state: str,
    *,
    finished: bool = True,
    status: int | None = 200,
    attempts: int = 1,
) -> int:
    call_id: int = await h.db.pool.fetchval(
        "INSERT INTO inlet_calls (grant_key, source, booking_id, property_id, operation, request,"
        " state, priority, attempts, next_attempt_at, created_at, finished_at, last_http_status)"
        " VALUES ($1, $2, 'R-old', 'oslo-1', $3, '{}', $4, 1, $5, $6, $6, $7, $8) RETURNING id",
        f"{SOURCE}:R-old:{grant}",
        SOURCE,
        operation,
        state,
        attempts,
        OLD,
        OLD if finished else None,
        status,
    )
    for attempt in range(1, attempts + 1):
        await h.db.pool.execute(
            "INSERT INTO call_attempts (call_id, attempt, started_at, finished_at, outcome,"
            " http_status) VALUES ($1, $2, $3, $3, 'success', $4)",
            call_id,
            attempt,
            OLD,
            status,
        )
    return call_id


async def history(h: Harness) -> list[dict[str, Any]]:
    rows = await h.db.fetch("bookings_grant_history", sources=[SOURCE], booking_ids=["R-old"])
    return [dict(r) for r in rows]


async def test_retention_keeps_what_must_stay(h: Harness) -> None:
    revoked_grant = await insert_call(h, "A", "grant", "succeeded", attempts=2)
    older_revoke = await insert_call(h, "A", "revoke", "succeeded")
    last_revoke = await insert_call(h, "A", "revoke", "succeeded")
    escalated = await insert_call(h, "B", "grant", "failed", status=503)
    await h.db.pool.execute(
        "INSERT INTO escalations (grant_key, source, booking_id, property_id, call_id, operation,"
        " severity, reason, created_at, resolved_at) VALUES ($1, $2, 'R-old', 'oslo-1', $3,"
        " 'grant', 'high', 'gave_up', $4, $4)",
        f"{SOURCE}:R-old:B",
        SOURCE,
        escalated,
        OLD,
    )
    live_grant = await insert_call(h, "C", "grant", "succeeded")
    old_update = await insert_call(h, "C", "update", "succeeded")
    unanswered = await insert_call(h, "D", "grant", "superseded", status=None)
    unsent_revoke = await insert_call(h, "D", "revoke", "succeeded", status=None)
    pending = await insert_call(h, "E", "grant", "pending", finished=False)
    before = await history(h)

    purged = await RetentionStore(h.db).purge(cutoff=START - timedelta(days=90))

    kept = {r["id"] for r in await h.rows("SELECT id FROM inlet_calls")}
    assert kept == {last_revoke, escalated, live_grant, unanswered, pending}
    assert {revoked_grant, older_revoke, old_update, unsent_revoke}.isdisjoint(kept)
    assert purged.calls == 4
    attempts = {r["call_id"] for r in await h.rows("SELECT call_id FROM call_attempts")}
    assert attempts == kept
    # The plan reads the same history as before (no grant's recovery history was touched).
    assert await history(h) == before


async def test_retention_keeps_young_calls(h: Harness) -> None:
    await insert_call(h, "A", "update", "succeeded")
    assert (await RetentionStore(h.db).purge(cutoff=OLD - timedelta(days=1))).calls == 0
    assert len(await h.rows("SELECT id FROM inlet_calls")) == 1


async def test_retention_of_deliveries_and_access_changes(h: Harness) -> None:
    async def change(kind: str = "access.granted") -> int:
        value: int = await h.db.pool.fetchval(
            "INSERT INTO access_changes (grant_key, source, booking_id, stay_id, property_id,"
            " kind, payload, created_at) VALUES ('k', $1, 'R-old', 'S1', 'oslo-1', $2, '{}', $3)"
            " RETURNING id",
            SOURCE,
            kind,
            OLD,
        )
        return value

    async def delivery(change_id: int, state: str) -> int:
        value: int = await h.db.pool.fetchval(
            "INSERT INTO deliveries (change_id, sink, grant_key, state, next_attempt_at,"
            " created_at, finished_at, webhook_id) VALUES ($1, 'webhook:demo-pms', 'k', $2, $3,"
            " $3, $4, gen_random_uuid()) RETURNING id",
            change_id,
            state,
            OLD,
            None if state == "pending" else OLD,
        )
        return value

    done, waiting, escalated = await change(), await change(), await change()
    delivered = await delivery(done, "delivered")
    still_pending = await delivery(waiting, "pending")
    failed = await delivery(escalated, "failed")
    await h.db.pool.execute(
        "INSERT INTO escalations (grant_key, source, booking_id, property_id, delivery_id,"
        " operation, severity, reason, created_at) VALUES ('k', $1, 'R-old', 'oslo-1', $2,"
        " 'webhook', 'high', 'gave_up', $3)",
        SOURCE,
        failed,
        OLD,
    )
    purged = await RetentionStore(h.db).purge(cutoff=START - timedelta(days=90))
    assert (purged.deliveries, purged.access_changes) == (1, 1)
    remaining = {r["id"] for r in await h.rows("SELECT id FROM deliveries")}
    assert remaining == {still_pending, failed}
    assert delivered not in remaining
    changes = {r["id"] for r in await h.rows("SELECT id FROM access_changes")}
    assert changes == {waiting, escalated}


# ------------------------------------------------------------------ gauges and re-sync


async def test_grant_counts_follow_every_change_of_state(h: Harness) -> None:
    await active_bookings(h, 3)
    cancelled = [stay(arrival=START + HOUR, status="cancelled")]
    await h.post(event("c1", booking_id="R-1", stays=cancelled, occurred_at=START + MINUTE))
    await h.settle()
    counted = {
        r["state"]: r["n"]
        for r in await h.rows("SELECT state, sum(n)::int AS n FROM grant_counts GROUP BY state")
    }
    stored = {
        r["state"]: r["n"]
        for r in await h.rows("SELECT state, count(*)::int AS n FROM grants GROUP BY state")
    }
    assert counted == {"active": 2, "revoked": 1} == stored


async def test_grant_counts_follow_upserts_in_a_statement_and_deletes(h: Harness) -> None:
    """Kept per statement: an upsert inside a data-modifying CTE (as a success records a grant,
    a new one or a revoked one granted again), a revocation and a purge all count right."""
    upsert = (
        "WITH g AS (INSERT INTO grants AS g"
        " (grant_key, source, booking_id, stay_id, property_id, state, created_at, updated_at)"
        " SELECT k, 'demo-pms', split_part(k, ':', 2), 'S1', $2, 'active', $3, $3"
        " FROM unnest($1::text[]) AS k"
        " ON CONFLICT (grant_key) DO UPDATE SET state = EXCLUDED.state,"
        " property_id = EXCLUDED.property_id RETURNING 1)"
        " SELECT count(*) FROM g"
    )

    async def counted() -> dict[tuple[str, str], int]:
        rows = await h.rows(
            "SELECT property_id, state, sum(n)::int AS n FROM grant_counts"
            " GROUP BY 1, 2 HAVING sum(n) <> 0"
        )
        return {(r["property_id"], r["state"]): r["n"] for r in rows}

    async def stored() -> dict[tuple[str, str], int]:
        rows = await h.rows(
            "SELECT property_id, state, count(*)::int AS n FROM grants GROUP BY 1, 2"
        )
        return {(r["property_id"], r["state"]): r["n"] for r in rows}

    keys = [f"demo-pms:U-{n}:S1" for n in range(6)]
    assert await h.db.pool.fetchval(upsert, keys[:4], "oslo-1", START) == 4
    await h.db.pool.execute(
        "UPDATE grants SET state = 'revoked' WHERE grant_key = ANY ($1::text[])", keys[:3]
    )
    # Two revoked grants granted again (one moved to another property) and two new ones.
    assert await h.db.pool.fetchval(upsert, keys[1:3] + keys[4:], "bergen-1", START) == 4
    assert await counted() == await stored()
    assert await counted() == {
        ("oslo-1", "revoked"): 1,
        ("oslo-1", "active"): 1,
        ("bergen-1", "active"): 4,
    }
    await h.db.pool.execute("DELETE FROM grants WHERE grant_key = ANY ($1::text[])", keys[:2])
    assert await counted() == await stored()


async def test_grant_counts_never_deadlock_two_transactions_changing_many_grants(
    h: Harness,
) -> None:
    """Two transactions revoking grants whose keys' hashes interleave (the counter rows were
    once chosen by that hash, and such a pair deadlocked) both commit, and the counts hold."""
    grants = [f"demo-pms:T-{n}:S1" for n in range(64)]
    await h.db.pool.execute(
        "INSERT INTO grants"
        " (grant_key, source, booking_id, stay_id, property_id, state, created_at, updated_at)"
        " SELECT k, 'demo-pms', split_part(k, ':', 2), 'S1', 'oslo-1', 'active', $2, $2"
        " FROM unnest($1::text[]) AS k",
        grants,
        START,
    )
    shard = {
        r["k"]: r["s"]
        for r in await h.rows(
            "SELECT k, abs(hashtext(k)) % 16 AS s FROM unnest($1::text[]) AS k", grants
        )
    }
    first, second = grants[0], next(k for k in grants if shard[k] != shard[grants[0]])
    # Each transaction's second grant sits in the other's first counter row.
    then_first = next(k for k in grants if shard[k] == shard[second] and k != second)
    then_second = next(k for k in grants if shard[k] == shard[first] and k != first)
    revoke = "UPDATE grants SET state = 'revoked' WHERE grant_key = $1"

    async with contextlib.AsyncExitStack() as stack:
        conns: list[Any] = []
        pids: set[int] = set()
        while len(conns) < 2:  # two connections whose own counter rows differ
            conn = await stack.enter_async_context(h.db.pool.acquire())
            pid = await conn.fetchval("SELECT pg_backend_pid() % 32")
            if pid not in pids:
                pids.add(pid)
                conns.append(conn)
        one, two = conns
        for conn in conns:
            await stack.enter_async_context(conn.transaction())
        await one.execute(revoke, first)
        await two.execute(revoke, second)
        outcomes = await asyncio.gather(
            one.execute(revoke, then_first),
            two.execute(revoke, then_second),
            return_exceptions=True,
        )
        assert outcomes == ["UPDATE 1", "UPDATE 1"]
    counted = {
        r["state"]: r["n"]
        for r in await h.rows("SELECT state, sum(n)::int AS n FROM grant_counts GROUP BY state")
    }
    assert counted == {"active": 60, "revoked": 4}


@pytest.mark.parametrize("page", [1, 2, 1000])
async def test_resync_candidates_are_read_a_page_at_a_time(
    h: Harness, monkeypatch: pytest.MonkeyPatch, page: int
) -> None:
    await active_bookings(h, 5)
    monkeypatch.setattr(resync_store, "CANDIDATES_PAGE", page)
    selector = resync_store.ResyncSelector(property_id="oslo-1")
    assert await resync_store.ResyncStore(h.db).count(selector) == 5


async def test_a_calls_slot_takes_the_next_call_while_its_outcome_is_recorded(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CALL_CONCURRENCY bounds the calls at Inlet: once a call's answer is in, its slot takes
    the next call while the outcome is being recorded (its lease still holds the call)."""
    for n in range(2):
        await h.post(event(f"e{n}", booking_id=f"R-{n}", arrival=START + HOUR))
    assert await h.runtime.reconciler.run_once() == 2
    worker = h.runtime.calls
    monkeypatch.setattr(worker, "_concurrency", 1)
    recording, release = held_recording(monkeypatch)
    (first,) = await worker.claim_free()
    assert await worker.claim_free() == []  # the one slot is taken
    task = asyncio.create_task(worker.execute(first))
    await asyncio.wait_for(recording.wait(), 10)
    (second,) = await worker.claim_free()  # the answer is in: the slot is free
    assert second.id != first.id
    release.set()
    await task
    await worker.execute(second)
    assert len(await h.rows("SELECT 1 FROM inlet_calls WHERE state = 'succeeded'")) == 2
