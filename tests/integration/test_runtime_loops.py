"""Do the loops production runs do what the tests' steps do? Most tests drive the workers one
step at a time (`run_once`); a replica runs the same steps in `Runtime.reconcile_loop` and
`Runtime.call_loop`, woken by commits and finished calls. Here the loops run on their own
(no `settle`), against the sandbox over HTTP, and must reach the same grants with the same
calls, each made once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from inlet_bridge.store.calls import CallStore
from inlet_bridge.store.reconcile import ReconcileStore

from ..support import Harness, event, stay
from .process_support import wait_until

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


@asynccontextmanager
async def production_loops(h: Harness) -> AsyncIterator[None]:
    runtime = h.runtime
    loops = [
        asyncio.create_task(runtime.reconcile_loop(ReconcileStore(h.db).next_due)),
        asyncio.create_task(runtime.call_loop(CallStore(h.db).next_due)),
    ]
    try:
        yield
    finally:
        runtime.stopping.set()
        runtime.wake_reconciler()
        runtime.wake_calls()
        done, pending = await asyncio.wait(loops, timeout=10)
        assert not pending, "a loop did not stop when asked"
        for loop in done:
            assert loop.exception() is None


async def calls_to(h: Harness, path: str) -> list[dict]:
    return [r for r in await h.inlet_requests() if r["path"] == path]


async def test_the_loops_grant_update_and_revoke_once_each_as_the_steps_do(h: Harness) -> None:
    arrival = h.clock.now() + 2 * HOUR
    async with production_loops(h):
        assert (
            await h.post(event("loop-1", occurred_at=h.clock.now(), arrival=arrival))
        ).status == 202
        h.runtime.wake_reconciler()  # what the group committer's commit does in a replica
        granted = await wait_until(lambda: calls_to(h, "/GrantAccess"), "the GrantAccess")
        reference = (await wait_until(h.grants, "the grant at the sandbox"))[0]["ReferenceId"]

        moved = event("loop-2", occurred_at=h.clock.now() + MINUTE, arrival=arrival + HOUR)
        assert (await h.post(moved)).status == 202
        h.runtime.wake_reconciler()
        updates = await wait_until(lambda: calls_to(h, "/UpdateAccess"), "the UpdateAccess")

        cancelled = event(
            "loop-3",
            occurred_at=h.clock.now() + 2 * MINUTE,
            stays=[stay(arrival=arrival + HOUR, status="cancelled")],
        )
        assert (await h.post(cancelled)).status == 202
        h.runtime.wake_reconciler()
        revokes = await wait_until(lambda: calls_to(h, "/RevokeAccess"), "the RevokeAccess")

        async def revoked() -> bool:
            rows = await h.rows("SELECT state FROM grants")
            return [r["state"] for r in rows] == ["revoked"]

        await wait_until(revoked, "the grant recorded as revoked")

    assert len(granted) == 1
    assert [u["body"]["ReferenceId"] for u in updates] == [reference]
    assert updates[0]["body"]["start"].startswith((arrival + HOUR).strftime("%Y-%m-%dT%H:%M"))
    assert [r["body"]["ReferenceId"] for r in revokes] == [reference]
    # Each call exactly once: nothing repeated once the loops had gone quiet.
    paths = [r["path"] for r in await h.inlet_requests()]
    assert paths == ["/GrantAccess", "/UpdateAccess", "/RevokeAccess"]
    assert await h.sandbox_json("/_sandbox/repeats") == []
    pending = await h.rows("SELECT count(*) AS n FROM inlet_calls WHERE state = 'pending'")
    assert pending[0]["n"] == 0
