"""Call slots: a few calls claimed ahead so a freed slot starts its next call at once, within
every lease rule (a call claimed ahead is called only while its lease is fresh, and given back
on shutdown), and the outcomes waiting to be recorded stay bounded. Time is the harness's
clock; the production loop test polls for what it waits for."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from inlet_bridge.store.calls import CallStore
from inlet_bridge.workers.calls import READY_SECONDS, CallWorker

from ..support import SOURCE, START, Harness, event, held_recording
from .process_support import wait_until

HOUR = timedelta(hours=1)


async def planned_grants(h: Harness, n: int) -> None:
    for i in range(n):
        await h.post(event(f"e{i}", booking_id=f"S-{i}", arrival=START + HOUR))
    assert await h.runtime.reconciler.run_once() == n


def one_slot(worker: CallWorker, monkeypatch: pytest.MonkeyPatch, *, ahead: int = 1) -> None:
    monkeypatch.setattr(worker, "_concurrency", 1)
    monkeypatch.setattr(worker, "_ahead", ahead)
    monkeypatch.setattr(worker, "_recording", asyncio.Semaphore(1))


async def leases(h: Harness) -> dict[int, tuple[str | None, int, str]]:
    rows = await h.rows("SELECT id, lease_owner, attempts, state FROM inlet_calls ORDER BY id")
    return {r["id"]: (r["lease_owner"], r["attempts"], r["state"]) for r in rows}


async def test_a_freed_slot_starts_the_call_claimed_ahead_before_the_outcome_is_recorded(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await planned_grants(h, 3)
    worker = h.runtime.calls
    one_slot(worker, monkeypatch)
    recording, release = held_recording(monkeypatch)
    (first,) = await worker.claim_free(ahead=True)
    assert worker.claimed_ahead
    (second_id,) = worker.ready
    # Never more than the slots and the bound: the third call is not leased.
    held = await leases(h)
    assert sorted(i for i, (owner, _, _) in held.items() if owner) == sorted([first.id, second_id])
    assert await worker.claim_free(ahead=True) == []  # slot taken, the bound reached: no claim

    started: list[int] = []

    def slot_free() -> None:  # what the runtime's call loop does when a slot frees
        call = worker.next_ready()
        if call is not None:
            started.append(call.id)

    worker.on_slot_free = slot_free
    task = asyncio.create_task(worker.execute(first))
    await asyncio.wait_for(recording.wait(), 10)
    assert started == [second_id]  # the next call left ...
    assert (await leases(h))[first.id][2] == "pending"  # ... before the outcome was recorded
    assert worker.ready == []
    release.set()
    await task
    assert (await leases(h))[first.id][2] == "succeeded"


async def test_a_call_claimed_ahead_that_waited_too_long_is_given_back_uncalled(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await planned_grants(h, 2)
    worker = h.runtime.calls
    one_slot(worker, monkeypatch)
    (first,) = await worker.claim_free(ahead=True)
    (second_id,) = worker.ready
    assert (await leases(h))[second_id][:2] == (worker._owner, 1)

    await worker.execute(first)  # the slot frees ...
    h.clock.advance(timedelta(seconds=READY_SECONDS + 1))  # ... after the lease ran too long
    assert worker.next_ready() is None  # not called on a lease that may run out mid-call
    (again,) = await worker.claim_free()  # given back (attempt not counted), claimed afresh
    assert again.id == second_id
    assert again.attempts == 1
    assert [r["path"] for r in await h.inlet_requests()] == ["/GrantAccess"]


async def test_shutdown_gives_back_the_calls_claimed_ahead(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await planned_grants(h, 3)
    worker = h.runtime.calls
    one_slot(worker, monkeypatch, ahead=2)
    assert len(await worker.claim_free(ahead=True)) == 1  # the slot's call, never sent here
    assert len(worker.ready) == 2
    await worker.release_all()
    assert worker.ready == []
    assert set((await leases(h)).values()) == {(None, 0, "pending")}
    assert await CallStore(h.db).next_due() is not None


async def test_outcomes_waiting_to_be_recorded_never_exceed_the_slots(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With recording held up, the production loop keeps calling only while outcomes have
    room: at most CALL_CONCURRENCY outcomes wait (here 1), and every call is made once."""
    await planned_grants(h, 4)
    worker = h.runtime.calls
    one_slot(worker, monkeypatch)
    release = asyncio.Event()
    recording = 0
    most = 0
    original_record = CallWorker._record

    async def counted(self: CallWorker, *args: Any) -> None:
        nonlocal recording, most
        recording += 1
        most = max(most, recording)
        try:
            await release.wait()
            await original_record(self, *args)
        finally:
            recording -= 1

    monkeypatch.setattr(CallWorker, "_record", counted)
    answers = 0
    original_call = CallWorker._call_inlet

    async def answered(self: CallWorker, *args: Any) -> Any:
        nonlocal answers
        result = await original_call(self, *args)
        answers += 1
        return result

    monkeypatch.setattr(CallWorker, "_call_inlet", answered)
    runtime = h.runtime
    loop = asyncio.create_task(runtime.call_loop(CallStore(h.db).next_due))

    async def grants_sent() -> list[dict[str, Any]]:
        return [r for r in await h.inlet_requests() if r["path"] == "/GrantAccess"]

    try:
        # The first outcome waits; the call claimed ahead went at once and its answer holds
        # its slot (no room to record it), so no third call leaves.
        await wait_until(lambda: _at_least(grants_sent, 2), "the second GrantAccess")
        await wait_until(lambda: _true(answers >= 2), "the second answer")
        await asyncio.sleep(0)  # the answer's task reaches the wait for room to record
        assert len(await grants_sent()) == 2
        assert most == 1
        release.set()

        async def all_recorded() -> bool:
            rows = await h.rows("SELECT 1 FROM inlet_calls WHERE state = 'succeeded'")
            return len(rows) == 4

        await wait_until(all_recorded, "every outcome recorded")
    finally:
        runtime.stopping.set()
        runtime.wake_calls()
        await asyncio.wait_for(loop, 10)
    assert most == 1
    assert sorted(r["body"]["externalId"] for r in await grants_sent()) == sorted(
        f"{SOURCE}:S-{i}:S1" for i in range(4)
    )
    await worker.release_all()


async def _at_least(check: Any, n: int) -> bool:
    return len(await check()) >= n


async def _true(value: bool) -> bool:
    return value
