"""Access truth under change and faults: each grant is called where it was made, a reinstated stay
never gets a dead grant, a PMS clock running ahead cannot outrank a cancellation, a call that
finishes while the reconciler reads is never sent twice, and a crashed reconciler's booking is
taken over within its lease. Checked at the Inlet sandbox: which code opens which door."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from inlet_bridge.domain.validation import ValidEvent
from inlet_bridge.doubles.inlet.sandbox_state import Readings
from inlet_bridge.keys import DATABASE
from inlet_bridge.store.events import EventStore
from inlet_bridge.store.reconcile import ReconcileStore

from ..support import (
    BEARER,
    DEMO_PROPERTIES,
    INLET_KEY,
    SOURCE,
    START,
    Harness,
    event,
    harness,
    send,
    stay,
)
from .conftest import EVERY_READING

HOUR = timedelta(hours=1)
BERGEN_KEY = "inlet-key-bergen-1"
KEY = f"{SOURCE}:R-1:S1"

BERGEN = """
[properties.bergen-1]
name = "Demo Hotel Bergen"
timezone = "Europe/Oslo"
inlet_api_key = { env = "INLET_API_KEY_BERGEN_1" }
common_doors = ["B-MAIN"]

[properties.bergen-1.resources."12"]
access_points = ["B-L12"]
"""


@pytest.fixture
def two_hotels(tmp_path: Path) -> Path:
    """The demo hotel (oslo-1) and a second one (bergen-1) with its own Inlet API key, both
    served by the demo PMS."""
    properties = tmp_path / "properties.toml"
    demo = DEMO_PROPERTIES.read_text()
    served = '\nproperties = ["oslo-1"]\n'
    assert served in demo
    properties.write_text(
        demo.replace(served, '\nproperties = ["oslo-1", "bergen-1"]\n', 1) + BERGEN
    )
    return properties


@pytest.fixture
async def h2(database_url: str, two_hotels: Path) -> AsyncIterator[Harness]:
    async with harness(
        database_url,
        inlet_api_keys=[INLET_KEY, BERGEN_KEY],
        PROPERTIES_FILE=str(two_hotels),
        INLET_API_KEY_BERGEN_1=BERGEN_KEY,
    ) as running:
        yield running


def by_external_id(grants: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {g["externalId"]: g for g in grants}


async def stay_access(h: Harness, booking_id: str = "R-1") -> dict[str, Any]:
    response = await h.service.get(f"/v1/bookings/{SOURCE}/{booking_id}/access", headers=BEARER)
    assert response.status == 200
    (only,) = (await response.json())["stays"]
    return dict(only)


async def test_a_stay_moved_to_another_property_is_revoked_where_it_was_made(h2: Harness) -> None:
    """Each API key is its own Inlet account. The booking moves from oslo-1 to bergen-1: the
    old grant is revoked with oslo-1's key (bergen-1's would get 404 and leave it working),
    and a new generation is granted with bergen-1's key."""
    arrival = START + HOUR
    await send(h2, "R-1", [stay(arrival=arrival)])
    (first,) = await h2.grants()
    assert (first["externalId"], first["state"]) == (KEY, "active")
    assert await h2.opens(first["code"], "L-101", arrival + HOUR)

    await send(h2, "R-1", [stay(arrival=arrival, resource_id="12")], property_id="bergen-1")

    grants = by_external_id(await h2.grants())
    assert grants[KEY]["state"] == "revoked"
    moved = grants[f"{KEY}:#2"]
    assert (moved["state"], moved["locks"]) == ("active", ["B-L12", "B-MAIN"])
    for door in ("L-101", "MAIN-ENTRANCE", "NIGHT-ENTRANCE"):
        assert not await h2.opens(first["code"], door, arrival + HOUR), door
    assert await h2.opens(moved["code"], "B-L12", arrival + HOUR)
    paths = [r["path"] for r in await h2.inlet_requests()]
    assert paths == ["/GrantAccess", "/RevokeAccess", "/GrantAccess"]

    access = await stay_access(h2)
    assert (access["state"], access["property_id"]) == ("active", "bergen-1")
    assert (access["external_id"], access["code"]) == (f"{KEY}:#2", moved["code"])
    open_escalations = await h2.rows("SELECT * FROM escalations WHERE resolved_at IS NULL")
    assert open_escalations == []


async def test_a_revoke_answered_404_by_another_account_is_not_taken_as_gone(
    database_url: str, two_hotels: Path, tmp_path: Path
) -> None:
    """The property's key changed since the grant was made (another Inlet account): a 404 from
    the new account says nothing about the grant, so the revocation is escalated as critical
    and the PMS told the code may still work."""
    async with harness(
        database_url,
        inlet_api_keys=[INLET_KEY, BERGEN_KEY],
        PROPERTIES_FILE=str(two_hotels),
        INLET_API_KEY_BERGEN_1=BERGEN_KEY,
    ) as h:
        await send(h, "R-1", [stay(arrival=START + HOUR)])
        (grant,) = await h.grants()
    # The same database, the hotel's key now another account's.
    async with harness(
        database_url,
        inlet_api_keys=[BERGEN_KEY],
        PROPERTIES_FILE=str(two_hotels),
        INLET_API_KEY_OSLO_1=BERGEN_KEY,
        INLET_API_KEY_BERGEN_1=BERGEN_KEY,
    ) as h:
        await send(h, "R-1", [stay(arrival=START + HOUR, status="cancelled")])
        (escalation,) = await h.rows("SELECT * FROM escalations WHERE resolved_at IS NULL")
        assert (escalation["operation"], escalation["severity"]) == ("revoke", "critical")
        assert "another Inlet account" in escalation["message"]
        access = await stay_access(h)
        assert access["state"] == "revoke_failed"
        assert access["code"] == grant["code"]


@pytest.mark.parametrize("readings", EVERY_READING)
async def test_a_reinstated_stay_gets_a_new_grant_that_opens(
    database_url: str, readings: Readings
) -> None:
    """Confirmed, cancelled, confirmed again. Under either reading of Inlet's idempotency (a
    revoked grant's externalId makes a new grant, or hands the revoked one back), the new
    GrantAccess carries a new externalId generation, and the code the PMS is told opens."""
    async with harness(database_url, readings=readings) as h:
        arrival = START + HOUR
        await send(h, "R-1", [stay(arrival=arrival)])
        await send(h, "R-1", [stay(arrival=arrival, status="cancelled")])
        h.clock.advance(timedelta(minutes=1))
        await send(h, "R-1", [stay(arrival=arrival)])

        grants = by_external_id(await h.grants())
        assert grants[KEY]["state"] == "revoked"
        again = grants[f"{KEY}:#2"]
        assert again["state"] == "active"
        access = await stay_access(h)
        assert (access["state"], access["code"]) == ("active", again["code"])
        assert access["external_id"] == f"{KEY}:#2"
        assert await h.opens(access["code"], "L-101", arrival + HOUR)
        assert not await h.opens(grants[KEY]["code"], "L-101", arrival + HOUR)


async def test_an_event_dated_far_ahead_is_refused_naming_occurred_at(h: Harness) -> None:
    body = event("e1", booking_id="R-1", occurred_at=START + timedelta(days=365))

    response = await h.post(body)

    assert response.status == 422
    problems = (await response.json())["problems"]
    assert [p["path"] for p in problems] == ["occurred_at"]
    assert await h.rows("SELECT * FROM events") == []


async def test_a_row_dated_far_ahead_cannot_outrank_a_later_cancellation(h: Harness) -> None:
    """A confirmation stored a year ahead of its receipt (before ingest refused such events),
    then a cancellation now: the cancellation revokes."""
    ahead = event("e1", booking_id="R-1", occurred_at=START + timedelta(days=365))
    from inlet_bridge.domain.decoding import decode_event
    from inlet_bridge.domain.validation import validate_event

    decoded = decode_event(json.dumps(ahead).encode())
    valid = validate_event(decoded)  # type: ignore[arg-type]
    assert isinstance(valid, ValidEvent)
    await EventStore(h.app[DATABASE]).append_group([[valid]], h.clock.now())
    await h.settle()
    (grant,) = await h.grants()
    assert grant["state"] == "active"

    h.clock.advance(timedelta(minutes=10))
    await send(h, "R-1", [stay(arrival=START, status="cancelled")])

    (grant,) = await h.grants()
    assert grant["state"] == "revoked"


class _ReadHook:
    """A connection whose read of the booking's grants lets a call's outcome be recorded right
    after it, while the reconciler's transaction is still open."""

    def __init__(self, conn: Any, sql: str, between: Any) -> None:
        self._conn = conn
        self._sql = sql
        self._between = between

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def fetch(self, sql: str, *args: Any) -> Any:
        rows = await self._conn.fetch(sql, *args)
        if sql == self._sql and self._between is not None:
            between, self._between = self._between, None
            await between()
        return rows


async def test_a_call_finishing_while_the_reconciler_reads_is_not_sent_again(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The GrantAccess succeeds and is recorded between the reconciler's read of the grants and
    its read of the pending calls. Without one lock over both reads, the plan would see neither
    the grant nor the call, and send the GrantAccess again."""
    await h.post(event("e1", booking_id="R-1", arrival=START + HOUR))
    assert await h.runtime.reconciler.run_once() == 1
    (call,) = await h.runtime.calls.claim_free()  # in flight
    await ReconcileStore(h.db).mark(SOURCE, "R-1", h.clock.now())  # and the booking marked again

    recording: asyncio.Task[None] | None = None

    async def record_outcome() -> None:
        nonlocal recording
        recording = asyncio.create_task(h.runtime.calls.execute(call))
        # Until the outcome is recorded, or its transaction waits for a lock the reconcile holds.
        for _ in range(500):
            if recording.done() or await waiting_for_a_lock(h):
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the call's outcome was neither recorded nor waiting")

    original = ReconcileStore._inputs

    async def inputs(self: ReconcileStore, conn: Any, *args: Any) -> Any:
        hooked = _ReadHook(conn, h.db.sql("bookings_grants"), record_outcome)
        return await original(self, hooked, *args)

    monkeypatch.setattr(ReconcileStore, "_inputs", inputs)
    await h.runtime.reconciler.run_once()
    monkeypatch.undo()
    assert recording is not None
    await recording
    # Nothing was planned beside the call in flight (a second GrantAccess queued here would be
    # sent by any worker free at that moment).
    calls = await h.rows("SELECT operation, state FROM inlet_calls ORDER BY id")
    assert calls == [{"operation": "grant", "state": "succeeded"}]
    await h.settle()

    grants_sent = [r for r in await h.inlet_requests() if r["path"] == "/GrantAccess"]
    assert len(grants_sent) == 1
    assert await h.sandbox_json("/_sandbox/repeats") == []
    (grant,) = await h.grants()
    assert grant["state"] == "active"


async def waiting_for_a_lock(h: Harness) -> bool:
    waiting = await h.db.pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    return bool(waiting)


async def test_a_crashed_reconcilers_booking_is_taken_over_when_its_lease_ends(
    database_url: str,
) -> None:
    """A replica claimed the booking and died: another takes it over once the reconcile lease
    (RECONCILE_LEASE_SECONDS) has passed, not before."""
    async with harness(database_url, RECONCILE_LEASE_SECONDS="20") as h:
        assert h.runtime.reconciler.lease_seconds == 20
        await h.post(event("e1", booking_id="R-1", arrival=START + HOUR))
        crashed = await ReconcileStore(h.db).claim(
            owner="crashed-replica",
            now=h.clock.now(),
            limit=10,
            lease_seconds=h.runtime.reconciler.lease_seconds,
        )
        assert [c.booking_id for c in crashed] == ["R-1"]

        h.clock.advance(timedelta(seconds=19))
        assert await h.runtime.reconciler.run_once() == 0
        h.clock.advance(timedelta(seconds=2))
        assert await h.runtime.reconciler.run_once() == 1
        await h.settle()

        (grant,) = await h.grants()
        assert grant["state"] == "active"


async def test_a_stored_row_the_api_refuses_today_still_folds_into_access(h: Harness) -> None:
    """A row written under an older API (an unknown field, a name longer than allowed now) is
    read by the reconciler all the same: the guest gets access."""
    body = event("e-old", booking_id="R-1", arrival=START + HOUR)
    body["booking"]["legacy_channel"] = "fax"
    body["booking"]["stays"][0]["guests"][0]["name"] = "Ola " + "N" * 300
    await h.db.pool.execute(
        "INSERT INTO events (source, event_id, booking_id, property_id, occurred_at,"
        " body_sha256, event, received_at, schema_version)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1)",
        SOURCE,
        "e-old",
        "R-1",
        "oslo-1",
        START,
        b"old",
        json.dumps(body),
        START,
    )
    await h.db.pool.execute(
        "INSERT INTO bookings (source, booking_id, property_id) VALUES ($1, 'R-1', 'oslo-1')",
        SOURCE,
    )
    await h.settle()

    (grant,) = await h.grants()
    assert (grant["state"], grant["externalId"]) == ("active", KEY)
    assert grant["guestName"].startswith("Ola NNN")


async def test_a_revocation_whose_answer_was_lost_is_finished_before_the_stay_is_granted_again(
    h: Harness,
) -> None:
    """Cancelled: Inlet revokes the grant but the answer is lost (the client gives up first).
    Reinstated before the retry: the revocation is not withdrawn (the grant may be dead), it is
    sent again (404 from the grant's own account: gone), and the stay gets a new generation whose
    code opens; the service never reports the dead code as working."""
    arrival = START + HOUR
    await send(h, "R-1", [stay(arrival=arrival)])
    (first,) = await h.grants()
    # Inlet revokes at once but answers after 2.5 s; the client gives up after 2 s.
    await h.fault(kind="lost_answer", seconds=2.5, count=1, operations=["revoke"])
    await send(h, "R-1", [stay(arrival=arrival, status="cancelled")])
    assert by_external_id(await h.grants())[KEY]["state"] == "revoked"  # Inlet did it
    h.clock.advance(timedelta(minutes=1))
    await send(h, "R-1", [stay(arrival=arrival)])
    # still revoking: a revocation that may have happened is never withdrawn
    assert (await stay_access(h))["state"] == "revoking"
    assert (await stay_access(h))["code"] is not None  # (until Inlet confirms it: it may open)

    await h.advance(timedelta(minutes=5))  # the retry: 404 from its own account, gone

    grants = by_external_id(await h.grants())
    again = grants[f"{KEY}:#2"]
    access = await stay_access(h)
    assert (access["state"], access["code"]) == ("active", again["code"])
    assert await h.opens(access["code"], "L-101", arrival + HOUR)
    assert not await h.opens(first["code"], "L-101", arrival + HOUR)
