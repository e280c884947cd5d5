"""Who waits for a property's door lock? Only what counts a capped door's places.

A plan that wants a door with a capacity counts its places under the property's lock, alone.
Cancellations want no door: they take the lock shared, as a revocation being recorded does, so
a wave of them never waits for another batch freeing places (docs/performance.md)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from inlet_bridge.store.reconcile import ReconcileStore

from ..support import START, Harness, event, harness, send, stay

HOUR = timedelta(hours=1)
SCENARIOS = str(Path(__file__).with_name("properties_scenarios.toml"))
KARI = {"name": "Kari Hansen", "email": "kari@example.no", "phone": "+4741234567"}
LOCK = "SELECT pg_advisory_xact_lock_shared(hashtext('doors:' || $1))"
WAITING = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"


@asynccontextmanager
async def doors_held_shared(h: Harness, property_id: str) -> AsyncIterator[None]:
    """The property's door lock held shared by another transaction, as while revocations of the
    property are recorded."""
    async with h.db.pool.acquire() as conn, conn.transaction():
        await conn.execute(LOCK, property_id)
        yield


async def post_room_102(h: Harness, event_id: str, arrival: datetime) -> None:
    """B-1, a new booking of room 102, whose access wants the capped door (not yet planned)."""
    body = event(
        event_id,
        booking_id="B-1",
        property_id="oslo-small",
        occurred_at=h.clock.now(),
        stays=[stay(resource_id="102", arrival=arrival, guests=[KARI])],
    )
    assert (await h.post(body)).status == 202


async def active(h: Harness) -> dict[str, dict[str, Any]]:
    return {g["bookingId"]: g for g in await h.grants() if g["state"] == "active"}


async def until_waiting(h: Harness, task: asyncio.Task[Any]) -> None:
    """Until a backend waits for an advisory lock (the task must not finish before)."""
    for _ in range(500):
        assert not task.done(), "the plan did not wait for the door lock"
        if await h.db.pool.fetchval(WAITING):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no plan waited for the door lock")


async def test_a_cancellation_is_planned_while_revocations_hold_the_door_lock(
    database_url: str,
) -> None:
    async with harness(database_url, PROPERTIES_FILE=SCENARIOS) as h:
        arrival = START + 2 * HOUR
        await send(h, "A-1", [stay(arrival=arrival)], property_id="oslo-small")
        assert (await active(h))["A-1"]["locks"] == ["L-101", "MAIN-ENTRANCE"]

        async with doors_held_shared(h, "oslo-small"):
            # Planned and revoked (the revocation's record takes the lock shared too).
            await asyncio.wait_for(
                send(
                    h, "A-1", [stay(arrival=arrival, status="cancelled")], property_id="oslo-small"
                ),
                timeout=10,
            )
            assert "A-1" not in await active(h)

            # A plan that wants the capped door counts its places alone: it waits.
            await post_room_102(h, "evt-door-lock-b1", arrival)
            planning = asyncio.create_task(h.runtime.reconciler.run_once())
            await until_waiting(h, planning)
        assert await asyncio.wait_for(planning, timeout=30) == 1
        await h.settle()
        assert (await active(h))["B-1"]["locks"] == ["L-102", "MAIN-ENTRANCE"]


async def test_a_booking_planned_on_its_own_keeps_within_a_full_door(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A booking whose row was locked when its batch ran is planned on its own afterwards; it
    counts the door's places as a batch does: the full door is left out and escalated."""
    async with harness(database_url, PROPERTIES_FILE=SCENARIOS) as h:
        arrival = START + 2 * HOUR
        await send(h, "A-1", [stay(arrival=arrival)], property_id="oslo-small")
        await post_room_102(h, "evt-door-lock-b2", arrival)
        async with h.db.pool.acquire() as conn, conn.transaction():
            claim = ReconcileStore.claim

            async def claim_then_lock(self: ReconcileStore, **kwargs: Any) -> Any:
                claimed = await claim(self, **kwargs)
                if claimed:  # as an outcome being recorded would: the batch must skip it
                    await conn.execute("SELECT 1 FROM bookings WHERE booking_id = 'B-1' FOR UPDATE")
                return claimed

            monkeypatch.setattr(ReconcileStore, "claim", claim_then_lock)
            planning = asyncio.create_task(h.runtime.reconciler.run_once())
            for _ in range(500):  # until the booking, skipped by its batch, waits for its row
                assert not planning.done()
                waiting = await h.db.pool.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted"
                )
                if waiting:
                    break
                await asyncio.sleep(0.01)
            else:
                raise AssertionError("the skipped booking never waited for its row")
        monkeypatch.undo()
        assert await asyncio.wait_for(planning, timeout=30) == 1
        await h.settle()
        assert (await active(h))["B-1"]["locks"] == ["L-102"]
        reasons = await h.rows("SELECT booking_id, reason FROM escalations")
        assert reasons == [{"booking_id": "B-1", "reason": "door_capacity"}]
