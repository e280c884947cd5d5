"""Several calls' successes recorded in one transaction: each is recorded as it would be alone
(a call whose lease was lost gets nothing written, the others everything), two calls of one
booking are never in one batch, a failed batch is recorded call by call, and the reconciler is
woken only when an outcome marked a booking. Time is the harness's clock, never a sleep."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from inlet_bridge.domain.changes import Access
from inlet_bridge.store.calls import AttemptRecord, CallStore, ClaimedCall
from inlet_bridge.store.successes import Recorded, Success, SuccessStore

from ..support import START, Harness, event, stay

HOUR = timedelta(hours=1)


def answered(h: Harness, call: ClaimedCall) -> Success:
    now = h.clock.now()
    revoke = call.operation == "revoke"
    return Success(
        call=call,
        attempt=AttemptRecord(
            outcome="success", http_status=200, message="ok", started_at=now, finished_at=now
        ),
        access=Access(
            reference_id=None if revoke else f"ref-{call.booking_id}",
            code=None if revoke else "123456",
            code_formatted=None if revoke else "123 456",
            link=None,
        ),
    )


async def by_booking(h: Harness, sql: str) -> dict[str, dict[str, Any]]:
    return {r["booking_id"]: r for r in await h.rows(sql)}


async def test_successes_recorded_together_are_each_right_and_a_lost_lease_writes_nothing(
    h: Harness,
) -> None:
    # R-4 holds a grant and is cancelled: its RevokeAccess is recorded beside three GrantAccess.
    await h.post(event("e4", booking_id="R-4", arrival=START + HOUR))
    await h.settle()
    cancelled = [stay(arrival=START + HOUR, status="cancelled")]
    await h.post(
        event("e4b", booking_id="R-4", stays=cancelled, occurred_at=START + timedelta(seconds=5))
    )
    for n in range(1, 4):
        await h.post(event(f"e{n}", booking_id=f"R-{n}", arrival=START + HOUR))
    assert await h.runtime.reconciler.run_once() == 4
    claimed = await CallStore(h.db).claim(
        owner="this-worker", now=h.clock.now(), limit=10, lease_seconds=60
    )
    calls = {c.booking_id: c for c in claimed}
    assert {b: c.operation for b, c in calls.items()} == {
        "R-1": "grant",
        "R-2": "grant",
        "R-3": "grant",
        "R-4": "revoke",
    }
    # R-2's lease ran out and another worker took the call over meanwhile.
    await h.db.pool.execute(
        "UPDATE inlet_calls SET lease_owner = 'another-worker' WHERE id = $1", calls["R-2"].id
    )
    order = ["R-1", "R-2", "R-4", "R-3"]

    results = await SuccessStore(h.db).record(
        [answered(h, calls[b]) for b in order], owner="this-worker"
    )

    kept = dict(zip(order, (r.kept for r in results), strict=True))
    assert kept == {"R-1": True, "R-2": False, "R-4": True, "R-3": True}
    states = {
        r["booking_id"]: r
        for r in await h.rows(
            "SELECT booking_id, state, lease_owner FROM inlet_calls WHERE id = ANY($1::bigint[])",
            [c.id for c in claimed],
        )
    }
    assert {b: r["state"] for b, r in states.items()} == {
        "R-1": "succeeded",
        "R-2": "pending",
        "R-3": "succeeded",
        "R-4": "succeeded",
    }
    assert states["R-2"]["lease_owner"] == "another-worker"  # untouched
    attempts = await h.rows(
        "SELECT c.booking_id, a.outcome FROM call_attempts a JOIN inlet_calls c ON c.id = a.call_id"
        " WHERE a.call_id = ANY($1::bigint[]) ORDER BY c.booking_id",
        [c.id for c in claimed],
    )
    assert attempts == [{"booking_id": b, "outcome": "success"} for b in ("R-1", "R-3", "R-4")]
    grants = await by_booking(h, "SELECT booking_id, state, reference_id, code FROM grants")
    assert "R-2" not in grants
    for b in ("R-1", "R-3"):
        assert grants[b] == {
            "booking_id": b,
            "state": "active",
            "reference_id": f"ref-{b}",
            "code": "123456",
        }
    assert grants["R-4"]["state"] == "revoked"
    assert grants["R-4"]["code"] is not None  # the revoked grant keeps its code for the timeline
    # Each booking's mark is as its own outcome decided, and as the result says.
    marks = await by_booking(h, "SELECT booking_id, marked_seq > seen_seq AS marked FROM bookings")
    for b, result in zip(order, results, strict=True):
        if b != "R-2":
            assert result.marked == marks[b]["marked"], b
    assert marks["R-1"]["marked"] is False  # succeeded as planned: no second plan


async def test_two_calls_of_one_booking_are_never_recorded_together(h: Harness) -> None:
    two = [stay("S1", arrival=START + HOUR), stay("S2", resource_id="102", arrival=START + HOUR)]
    await h.post(event("e1", booking_id="R-1", stays=two))
    assert await h.runtime.reconciler.run_once() == 1
    claimed = await CallStore(h.db).claim(
        owner="this-worker", now=h.clock.now(), limit=10, lease_seconds=60
    )
    assert len(claimed) == 2
    with pytest.raises(ValueError, match="one call per booking"):
        await SuccessStore(h.db).record([answered(h, c) for c in claimed], owner="this-worker")
    assert await h.rows("SELECT call_id FROM call_attempts") == []


async def test_answers_arriving_together_share_a_transaction_one_call_per_booking(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first success's transaction is held until the other three answers wait: they are
    then recorded together, but the booking with two stays never has both in one batch."""
    two = [stay("S1", arrival=START + HOUR), stay("S2", resource_id="102", arrival=START + HOUR)]
    await h.post(event("e1", booking_id="R-A", stays=two))
    await h.post(event("e2", booking_id="R-B", arrival=START + HOUR))
    await h.post(event("e3", booking_id="R-C", arrival=START + HOUR))
    assert await h.runtime.reconciler.run_once() == 3
    worker = h.runtime.calls
    batches: list[list[str]] = []
    original = SuccessStore.record

    async def watched(self: SuccessStore, successes: Any, **kwargs: Any) -> list[Recorded]:
        batches.append([s.call.booking_id for s in successes])
        if len(batches) == 1:
            for _ in range(1000):  # until the three other answers wait to be recorded
                if len(successes) + len(worker._waiting) == 4:
                    break
                await asyncio.sleep(0.005)
        return await original(self, successes, **kwargs)

    monkeypatch.setattr(SuccessStore, "record", watched)
    assert await worker.run_once() == 4

    assert sorted(b for batch in batches for b in batch) == ["R-A", "R-A", "R-B", "R-C"]
    assert max(len(batch) for batch in batches) >= 2  # recorded together
    assert all(len(set(batch)) == len(batch) for batch in batches)
    assert len(await h.rows("SELECT 1 FROM inlet_calls WHERE state = 'succeeded'")) == 4
    assert len(await h.rows("SELECT 1 FROM grants WHERE state = 'active'")) == 4
    assert await h.sandbox_json("/_sandbox/repeats") == []


async def test_a_batch_that_fails_is_recorded_call_by_call(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One call's failure must not cost the others their outcome (their calls would be sent to
    Inlet again when their leases end)."""
    for n in range(3):
        await h.post(event(f"e{n}", booking_id=f"R-{n}", arrival=START + HOUR))
    assert await h.runtime.reconciler.run_once() == 3
    worker = h.runtime.calls
    original = SuccessStore.record
    sizes: list[int] = []

    async def failing(self: SuccessStore, successes: Any, **kwargs: Any) -> list[Recorded]:
        sizes.append(len(successes))
        if len(sizes) == 1:  # hold the first until the others wait
            for _ in range(1000):
                if len(successes) + len(worker._waiting) == 3:
                    break
                await asyncio.sleep(0.005)
        if len(successes) > 1:
            raise ConnectionError("the batch's transaction failed")
        return await original(self, successes, **kwargs)

    monkeypatch.setattr(SuccessStore, "record", failing)
    assert await worker.run_once() == 3

    # A failed batch of two or three, then each call alone.
    assert max(sizes) >= 2
    assert sizes.count(1) == 3
    assert len(sizes) == 4
    assert len(await h.rows("SELECT 1 FROM inlet_calls WHERE state = 'succeeded'")) == 3
    assert len(await h.rows("SELECT 1 FROM call_attempts WHERE outcome = 'success'")) == 3


async def test_the_reconciler_is_woken_only_when_an_outcome_marked_a_booking(h: Harness) -> None:
    worker = h.runtime.calls
    woken: list[str] = []
    worker.on_marked = lambda: woken.append("reconciler")
    worker.on_changed = lambda: woken.append("deliveries")

    await h.post(event("e1", booking_id="R-1", arrival=START + HOUR))
    assert await h.runtime.reconciler.run_once() == 1
    assert await worker.run_once() == 1
    assert "reconciler" not in woken  # succeeded as planned: nothing to plan

    # A change while the next call is in flight: its success marks the booking.
    await h.post(event("e2", booking_id="R-2", arrival=START + HOUR))
    assert await h.runtime.reconciler.run_once() == 1
    (call,) = await worker.claim_free()
    moved = [stay(arrival=START + HOUR, resource_id="102")]
    await h.post(
        event("e3", booking_id="R-2", stays=moved, occurred_at=START + timedelta(seconds=10))
    )
    assert await h.runtime.reconciler.run_once() == 1
    await worker.execute(call)
    assert woken.count("reconciler") == 1
    (row,) = await h.rows(
        "SELECT marked_seq > seen_seq AS marked FROM bookings WHERE booking_id = 'R-2'"
    )
    assert row["marked"] is True
