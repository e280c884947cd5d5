"""The Spectra PMS adapter end to end: the emulated hotel, the poller, the service, the Inlet
sandbox, and the codes written back to Spectra."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from inlet_bridge.adapters.spectra.client import SpectraError
from inlet_bridge.store.cursors import Cursor, CursorStore, Leadership

from ..support import START
from .spectra_support import CONNECTION, SpectraHotel, spectra_hotel

OSLO = ZoneInfo("Europe/Oslo")
GUID = "6f1c2a4e-1111-4a2b-9c3d-000000000001"
OTHER = "6f1c2a4e-2222-4a2b-9c3d-000000000002"
MINUTE = timedelta(minutes=1)
ROOM_101 = ["L-101", "MAIN-ENTRANCE", "NIGHT-ENTRANCE"]


def local(text: str) -> datetime:
    """A hotel wall-clock time as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=OSLO)


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
async def hotel(database_url: str, tmp_path: Path) -> AsyncIterator[SpectraHotel]:
    async with spectra_hotel(database_url, tmp_path) as running:
        yield running


async def cursor(hotel: SpectraHotel) -> Cursor | None:
    return await CursorStore(hotel.h.db).get(CONNECTION)


async def started(hotel: SpectraHotel) -> None:
    """The poller's first start on an empty hotel (a backfill), then a minute later."""
    report = await hotel.poll()
    assert (report.mode, report.fetched, report.appended) == ("backfill", 0, 0)
    hotel.h.clock.advance(MINUTE)


async def granted(hotel: SpectraHotel, **overrides: Any) -> str:
    """R-1001 in room 101 created in Spectra and polled; its keypad code at Inlet."""
    await started(hotel)
    await hotel.put_reservation(GUID, **overrides)
    report = await hotel.poll()
    assert (report.mode, report.appended) == ("feed", 1)
    code = (await hotel.inlet_grant("R-1001", GUID))["codeFormatted"]
    assert isinstance(code, str)
    return code


class Calls:
    """How often something finished, with a way to wait (real time, for the real loops)."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = asyncio.Event()

    def tick(self) -> None:
        self.count += 1
        self._changed.set()

    async def reached(self, count: int, seconds: float = 5.0) -> None:
        async with asyncio.timeout(seconds):
            while self.count < count:
                self._changed.clear()
                await self._changed.wait()


def count_calls(monkeypatch: pytest.MonkeyPatch, obj: object, name: str) -> Calls:
    """Count the calls of a coroutine method of `obj` as they finish, however they end."""
    calls = Calls()
    real: Callable[..., Awaitable[Any]] = getattr(obj, name)

    async def counted(*args: Any, **kwargs: Any) -> Any:
        try:
            return await real(*args, **kwargs)
        finally:
            calls.tick()

    monkeypatch.setattr(obj, name, counted)
    return calls


def logged(caplog: pytest.LogCaptureFixture, action: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "action", None) == action]


def errors_counted(hotel: SpectraHotel, kind: str) -> float:
    value = hotel.h.metrics.registry.get_sample_value(
        "inlet_bridge_poller_errors_total", {"connection": CONNECTION, "kind": kind}
    )
    return value or 0.0


# --- 1. a new reservation ---


async def test_a_new_reservation_gets_access_within_one_poll_and_its_code_is_written_back(
    hotel: SpectraHotel,
) -> None:
    code = await granted(hotel)

    (grant_call,) = await hotel.inlet_calls("GrantAccess")
    assert grant_call["body"]["locks"] == ROOM_101
    grant = await hotel.inlet_grant("R-1001", GUID)
    assert grant["state"] == "active"
    assert grant["locks"] == ROOM_101
    # 15:00 and 11:00 in Oslo (UTC+1 in November).
    assert instant(grant["start"]) == datetime(2026, 11, 23, 14, tzinfo=UTC)
    assert instant(grant["end"]) == datetime(2026, 11, 25, 10, tzinfo=UTC)
    assert instant(grant["start"]) == local("2026-11-23T15:00:00")

    stored = await hotel.stored_grant("R-1001", GUID)
    assert stored is not None
    assert (stored["state"], stored["code_formatted"]) == ("active", code)
    assert stored["access_points"] == ROOM_101

    during = local("2026-11-23T16:00:00")
    assert await hotel.h.opens(code, "L-101", during)
    assert await hotel.h.opens(code, "MAIN-ENTRANCE", during)
    assert not await hotel.h.opens(code, "L-102", during)
    assert not await hotel.h.opens(code, "L-101", local("2026-11-23T14:59:00"))

    assert await hotel.codes(GUID) == {"posted": [code], "disabled": []}
    assert [d["state"] for d in await hotel.deliveries()] == ["delivered"]
    (logged,) = await hotel.events(GUID)
    assert logged["booking_id"] == "R-1001"

    # Polling again with nothing new changes nothing, here or there.
    hotel.h.clock.advance(MINUTE)
    report = await hotel.poll()
    assert report.appended == 0
    assert len(await hotel.events(GUID)) == 1
    assert len(await hotel.inlet_requests_all()) == 1
    assert await hotel.codes(GUID) == {"posted": [code], "disabled": []}


# --- 2. a room change ---


async def test_a_room_change_moves_the_code_to_the_new_room(hotel: SpectraHotel) -> None:
    code = await granted(hotel)
    hotel.h.clock.advance(MINUTE)
    await hotel.put_reservation(GUID, roomNumber="201")
    report = await hotel.poll()
    assert report.appended == 1

    assert len(await hotel.inlet_calls("GrantAccess")) == 1
    (update,) = await hotel.inlet_calls("UpdateAccess")
    assert update["body"]["locks"] == ["L-201", "MAIN-ENTRANCE", "NIGHT-ENTRANCE", "FLOOR-2"]
    grant = await hotel.inlet_grant("R-1001", GUID)
    assert grant["codeFormatted"] == code  # same grant, same code

    during = local("2026-11-23T16:00:00")
    assert not await hotel.h.opens(code, "L-101", during)
    assert await hotel.h.opens(code, "L-201", during)
    assert await hotel.h.opens(code, "FLOOR-2", during)
    stored = await hotel.stored_grant("R-1001", GUID)
    assert stored is not None
    assert stored["access_points"] == ["L-201", "MAIN-ENTRANCE", "NIGHT-ENTRANCE", "FLOOR-2"]
    # The code did not change: nothing to post again, nothing to disable.
    assert await hotel.codes(GUID) == {"posted": [code], "disabled": []}
    assert [d["state"] for d in await hotel.deliveries()] == ["delivered", "delivered"]


async def test_a_room_change_that_brings_a_new_code_disables_the_old_one_in_spectra(
    hotel: SpectraHotel,
) -> None:
    old = await granted(hotel)
    # Room 201's lock was replaced since the code was issued: Inlet issues a new code.
    response = await hotel.h.sandbox.post("/_sandbox/locks/L-201/replace")
    assert response.status in (200, 204)
    hotel.h.clock.advance(MINUTE)
    await hotel.put_reservation(GUID, roomNumber="201")
    await hotel.poll()

    new = (await hotel.inlet_grant("R-1001", GUID))["codeFormatted"]
    assert new != old
    during = local("2026-11-23T16:00:00")
    assert await hotel.h.opens(new, "L-201", during)
    assert not await hotel.h.opens(new, "L-101", during)
    assert not await hotel.h.opens(old, "L-101", during)
    assert not await hotel.h.opens(old, "L-201", during)
    assert await hotel.codes(GUID) == {"posted": [old, new], "disabled": [old]}
    stored = await hotel.stored_grant("R-1001", GUID)
    assert stored is not None
    assert stored["code_formatted"] == new


# --- 3. a cancellation ---


async def test_a_cancellation_revokes_the_code_at_inlet_and_disables_it_in_spectra(
    hotel: SpectraHotel,
) -> None:
    code = await granted(hotel)
    hotel.h.clock.advance(MINUTE)
    await hotel.set_status(GUID, "Cancelled")
    report = await hotel.poll()
    assert report.appended == 1

    (revoke,) = await hotel.inlet_calls("RevokeAccess")
    grant = await hotel.inlet_grant("R-1001", GUID)
    assert grant["state"] == "revoked"
    assert revoke["body"]["ReferenceId"] == grant["ReferenceId"]
    assert not await hotel.h.opens(code, "L-101", local("2026-11-23T16:00:00"))
    stored = await hotel.stored_grant("R-1001", GUID)
    assert stored is not None
    assert stored["state"] == "revoked"
    assert await hotel.codes(GUID) == {"posted": [code], "disabled": [code]}
    assert [d["state"] for d in await hotel.deliveries()] == ["delivered", "delivered"]


async def test_a_reservation_deleted_in_spectra_is_revoked(hotel: SpectraHotel) -> None:
    code = await granted(hotel)
    hotel.h.clock.advance(MINUTE)
    await hotel.delete_reservation(GUID)
    report = await hotel.poll()
    assert report.appended == 1
    assert len(await hotel.inlet_calls("RevokeAccess")) == 1
    assert not await hotel.h.opens(code, "L-101", local("2026-11-23T16:00:00"))
    # The reservation is gone from Spectra, so there is no code left there to disable.
    assert [d["state"] for d in await hotel.deliveries()] == ["delivered", "delivered"]


# --- 4. a conference ---


async def test_a_conference_opens_the_meeting_room_only_for_its_hours(
    hotel: SpectraHotel,
) -> None:
    await hotel.put_conference(
        "conf-1",
        {
            "roomName": "Fjord",
            "start": "2026-11-24T09:00:00",
            "end": "2026-11-24T16:00:00",
            "status": "Confirmed",
            "contact": {
                "firstName": "Nora",
                "lastName": "Dahl",
                "email": "nora@example.no",
                "mobile": "+4791234568",
            },
        },
    )
    await hotel.poll()

    (grant_call,) = await hotel.inlet_calls("GrantAccess")
    assert grant_call["body"]["locks"] == ["L-FJORD", "MAIN-ENTRANCE"]
    grant = await hotel.inlet_grant("conf-1", "conf-1")
    assert instant(grant["start"]) == local("2026-11-24T09:00:00")
    assert instant(grant["end"]) == local("2026-11-24T16:00:00")
    code = grant["codeFormatted"]
    assert await hotel.h.opens(code, "L-FJORD", local("2026-11-24T09:00:00"))
    assert await hotel.h.opens(code, "L-FJORD", local("2026-11-24T15:59:00"))
    assert not await hotel.h.opens(code, "L-FJORD", local("2026-11-24T08:59:00"))
    assert not await hotel.h.opens(code, "L-FJORD", local("2026-11-24T16:00:00"))
    assert not await hotel.h.opens(code, "L-101", local("2026-11-24T10:00:00"))
    assert not await hotel.h.opens(code, "NIGHT-ENTRANCE", local("2026-11-24T10:00:00"))

    # Conferences are read on every poll; one that did not change is not logged again.
    hotel.h.clock.advance(MINUTE)
    assert (await hotel.poll()).appended == 0
    assert len(await hotel.events("conf-1")) == 1
    # A conference is no reservation: no code is written to Spectra's reservations for it.
    assert await hotel.codes("conf-1") == {"posted": [], "disabled": []}
    assert all(d["state"] == "delivered" for d in await hotel.deliveries())

    # When it ends, access ends.
    hotel.h.clock.set(local("2026-11-24T16:00:00"))
    await hotel.h.settle()
    assert (await hotel.inlet_grant("conf-1", "conf-1"))["state"] == "revoked"


# --- 5. backfill ---


async def test_first_start_and_a_long_gap_fill_from_the_reservation_list(
    hotel: SpectraHotel,
) -> None:
    await hotel.put_reservation(GUID)  # before the poller ever ran: no feed read yet
    assert await cursor(hotel) is None
    report = await hotel.poll()
    assert (report.mode, report.appended) == ("backfill", 1)
    assert len(await hotel.inlet_calls("GrantAccess")) == 1
    first = await cursor(hotel)
    assert first is not None
    assert first.sync_time == START

    # While the poller is down for more than the feed keeps, a reservation is made.
    hotel.h.clock.advance(timedelta(hours=1))
    await hotel.put_reservation(
        OTHER,
        reservationNumber="R-2002",
        arrival="2026-11-24T15:00:00",
        departure="2026-11-26T11:00:00",
        roomNumber="102",
    )
    hotel.h.clock.advance(timedelta(hours=24))
    assert (await cursor(hotel)) == first
    report = await hotel.poll()
    assert (report.mode, report.appended, report.unchanged) == ("backfill", 1, 1)
    later = await hotel.inlet_grant("R-2002", OTHER)
    assert later["locks"] == ["L-102", "MAIN-ENTRANCE", "NIGHT-ENTRANCE"]
    assert instant(later["start"]) == local("2026-11-24T15:00:00")
    assert await hotel.codes(OTHER) == {"posted": [later["codeFormatted"]], "disabled": []}
    assert len(await hotel.events(GUID)) == 1
    assert len(await hotel.events(OTHER)) == 1
    now = await cursor(hotel)
    assert now is not None
    assert now.sync_time == hotel.h.clock.now()


async def test_first_start_reads_reservations_arriving_beyond_the_send_window(
    hotel: SpectraHotel,
) -> None:
    # Made before the poller's first start, arriving in five days, never touched again.
    await hotel.put_reservation(
        GUID, arrival="2026-11-28T15:00:00", departure="2026-11-30T11:00:00"
    )
    hotel.h.clock.advance(timedelta(minutes=10))  # older than the feed overlap
    report = await hotel.poll()
    assert report.mode == "backfill"
    assert await hotel.inlet_calls("GrantAccess") == []
    # Polling on through the days before arrival: the feed tells only of another booking.
    for day in range(5):
        await hotel.h.advance(timedelta(hours=23))
        await hotel.put_reservation(
            OTHER, reservationNumber="R-2002", roomNumber=f"20{day % 2 + 1}"
        )
        report = await hotel.poll()
        assert report.mode == "feed"
    assert len(await hotel.events(GUID)) == 1
    grant = await hotel.inlet_grant("R-1001", GUID)
    assert instant(grant["start"]) == local("2026-11-28T15:00:00")


LONG_STAY = {"arrival": "2026-11-23T15:00:00", "departure": "2026-11-30T11:00:00"}


async def down_for_days(hotel: SpectraHotel, change: Callable[[], Awaitable[None]]) -> None:
    """The poller stops for four days; a day in, Spectra changes; its feed item ages out."""
    hotel.h.clock.advance(timedelta(days=1))
    await change()
    hotel.h.clock.advance(timedelta(days=3))
    stopped = await cursor(hotel)
    assert stopped is not None
    assert stopped.sync_time is not None
    assert hotel.state.feed_since(stopped.sync_time - timedelta(hours=1)) == []
    # Nor does the reservation list of a backfill reach back to its arrival.
    local_now = hotel.h.clock.now().astimezone(OSLO)
    assert (local_now - timedelta(hours=72)).date().isoformat() > LONG_STAY["arrival"][:10]


async def test_a_cancellation_during_a_long_gap_is_seen_by_the_backfill(
    hotel: SpectraHotel, caplog: pytest.LogCaptureFixture
) -> None:
    code = await granted(hotel, **LONG_STAY)
    await hotel.put_conference(
        "conf-1",
        {
            "roomName": "Fjord",
            "start": "2026-11-23T09:00:00",
            "end": "2026-11-30T16:00:00",
            "status": "Confirmed",
        },
    )
    await hotel.poll()
    assert await hotel.h.opens(code, "L-101", local("2026-11-28T12:00:00"))

    await down_for_days(hotel, lambda: hotel.set_status(GUID, "Cancelled"))
    report = await hotel.poll()
    assert (report.mode, report.rechecked, report.appended) == ("backfill", 1, 1)

    (revoke,) = await hotel.inlet_calls("RevokeAccess")
    grant = await hotel.inlet_grant("R-1001", GUID)
    assert grant["state"] == "revoked"
    assert revoke["body"]["ReferenceId"] == grant["ReferenceId"]
    assert not await hotel.h.opens(code, "L-101", local("2026-11-28T12:00:00"))
    assert await hotel.codes(GUID) == {"posted": [code], "disabled": [code]}
    # The conference's access is read from the conference list, never as a reservation.
    assert (await hotel.inlet_grant("conf-1", "conf-1"))["state"] == "active"
    assert logged(caplog, "spectra.not_found") == []


async def test_a_room_change_during_a_long_gap_is_seen_by_the_backfill(
    hotel: SpectraHotel,
) -> None:
    code = await granted(hotel, **LONG_STAY)
    await down_for_days(hotel, lambda: hotel.put_reservation(GUID, **LONG_STAY, roomNumber="201"))
    report = await hotel.poll()
    assert (report.mode, report.rechecked, report.appended) == ("backfill", 1, 1)
    (update,) = await hotel.inlet_calls("UpdateAccess")
    assert update["body"]["locks"][0] == "L-201"
    during = local("2026-11-28T12:00:00")
    assert await hotel.h.opens(code, "L-201", during)
    assert not await hotel.h.opens(code, "L-101", during)


async def test_a_reservation_gone_during_a_long_gap_keeps_its_access_and_is_logged(
    hotel: SpectraHotel, caplog: pytest.LogCaptureFixture
) -> None:
    code = await granted(hotel, **LONG_STAY)
    await down_for_days(hotel, lambda: hotel.delete_reservation(GUID))
    report = await hotel.poll()
    assert (report.mode, report.rechecked, report.appended, report.failed) == (
        "backfill",
        1,
        0,
        0,
    )
    # A 404 is no cancellation (only an explicit status or deletion revokes): access stays,
    # and the line says which booking to look at.
    assert await hotel.inlet_calls("RevokeAccess") == []
    assert await hotel.h.opens(code, "L-101", local("2026-11-28T12:00:00"))
    (line,) = logged(caplog, "spectra.not_found")
    assert (line.booking_id, line.stay_id) == ("R-1001", GUID)  # type: ignore[attr-defined]
    assert len(await hotel.events(GUID)) == 1


# --- 6. stopped mid-way ---


async def test_a_reservation_that_fails_to_read_is_kept_and_the_next_poll_stores_each_change_once(
    hotel: SpectraHotel,
) -> None:
    await started(hotel)
    before = await cursor(hotel)
    await hotel.put_reservation(GUID)
    await hotel.put_reservation(OTHER, reservationNumber="R-2002", roomNumber="102")
    hotel.h.clock.advance(MINUTE)
    await hotel.put_reservation(GUID, roomNumber="202")  # a second change to the first
    # The feed reads fine, the first reservation fetches fine, the second fails.
    await hotel.fault(kind="status", status=500, count=1, paths=[f"/api/v5/reservations/{OTHER}"])
    report = await hotel.poll()
    assert (report.appended, report.failed) == (1, 1)
    assert len(await hotel.events(GUID)) == 1
    assert await hotel.events(OTHER) == []
    # The cursor moved on, with the unreadable reservation kept beside it.
    moved = await cursor(hotel)
    assert moved is not None
    assert before is not None
    assert moved.sync_time is not None
    assert before.sync_time is not None
    assert moved.sync_time > before.sync_time
    assert moved.held == (OTHER,)
    assert errors_counted(hotel, "reservation") == 1

    hotel.h.clock.advance(MINUTE)
    report = await hotel.poll()
    assert (report.appended, report.failed) == (1, 0)
    for _ in range(2):  # and again: the overlap re-reads the same feed items
        hotel.h.clock.advance(timedelta(seconds=30))
        assert (await hotel.poll()).appended == 0
    (first,) = await hotel.events(GUID)
    assert len(await hotel.events(OTHER)) == 1
    assert '"resource_id":"202"' in first["body"].replace(" ", "")
    assert len(await hotel.inlet_calls("GrantAccess")) == 2
    assert (await hotel.inlet_grant("R-1001", GUID))["locks"][0] == "L-202"
    after = await cursor(hotel)
    assert after is not None
    assert after.held == ()


async def test_a_poll_cancelled_mid_way_resumes_from_its_cursor(hotel: SpectraHotel) -> None:
    await started(hotel)
    before = await cursor(hotel)
    await hotel.put_reservation(GUID)
    await hotel.put_reservation(OTHER, reservationNumber="R-2002", roomNumber="102")
    # The second fetch hangs until the replica is stopped.
    await hotel.fault(kind="timeout", seconds=30, paths=[f"/api/v5/reservations/{OTHER}"])
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(hotel.poller.poll_once(), 0.3)
    await hotel.clear_faults()
    assert await cursor(hotel) == before
    assert await hotel.events(GUID) == []

    assert (await hotel.poll()).appended == 2
    assert (await hotel.poll()).appended == 0
    assert len(await hotel.events(GUID)) == 1
    assert len(await hotel.events(OTHER)) == 1
    assert len(await hotel.inlet_calls("GrantAccess")) == 2


# --- 7. one poller per connection ---


async def test_only_one_poller_holds_a_connection_and_the_other_takes_over(
    hotel: SpectraHotel,
) -> None:
    one, two = CursorStore(hotel.h.db), CursorStore(hotel.h.db)
    async with one.leadership(CONNECTION) as first:
        assert first.leader
        assert await first.still_held()
        async with two.leadership(CONNECTION) as second:
            assert not second.leader
            assert not await second.still_held()
        async with two.leadership("another-connection") as elsewhere:
            assert elsewhere.leader  # locks are per connection
    async with two.leadership(CONNECTION) as second:
        assert second.leader


async def test_the_poll_loop_waits_while_another_replica_polls(
    hotel: SpectraHotel, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = hotel.h.runtime
    leader = runtime.spectra_leader(CONNECTION)
    store = leader.cursors
    attempts = Calls()
    real_leadership = store.leadership

    @contextlib.asynccontextmanager
    async def counted(connection: str) -> AsyncIterator[Leadership]:
        async with real_leadership(connection) as lock:
            attempts.tick()
            yield lock

    monkeypatch.setattr(store, "leadership", counted)
    polls = count_calls(monkeypatch, hotel.poller, "poll_once")
    await hotel.put_reservation(GUID)

    other_replica = CursorStore(hotel.h.db)
    task: asyncio.Task[None] | None = None
    try:
        async with other_replica.leadership(CONNECTION) as held:
            assert held
            task = asyncio.create_task(leader.run(0.01, runtime.stopping))
            await attempts.reached(3)
            assert polls.count == 0  # not the leader: never polled
            assert await cursor(hotel) is None
        await polls.reached(1)  # the other replica stepped down: this one polls
    finally:
        runtime.stopping.set()
        if task is not None:
            await asyncio.wait_for(task, 5)
    await hotel.h.settle()
    assert len(await hotel.inlet_calls("GrantAccess")) == 1


async def lock_holder(hotel: SpectraHotel) -> int | None:
    """The database backend holding the connection's poller lock, if any."""
    rows = await hotel.h.rows(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND objid = (hashtext($1)::bigint & 4294967295)::oid",
        f"poller:{CONNECTION}",
    )
    return int(rows[0]["pid"]) if rows else None


async def test_a_poller_whose_lock_session_dies_stops_polling_and_another_can_lead(
    hotel: SpectraHotel, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = hotel.h.runtime
    leader = runtime.spectra_leader(CONNECTION)
    store = leader.cursors
    real_leadership = store.leadership
    attempts = Calls()
    retry = asyncio.Event()

    @contextlib.asynccontextmanager
    async def gated(connection: str) -> AsyncIterator[Leadership]:
        # Every try after the first waits until the test lets it: the contender goes first.
        attempts.tick()
        if attempts.count > 1:
            await retry.wait()
        async with real_leadership(connection) as lock:
            yield lock

    monkeypatch.setattr(store, "leadership", gated)
    polls = count_calls(monkeypatch, hotel.poller, "poll_once")
    task = asyncio.create_task(leader.run(0.01, runtime.stopping))
    try:
        await polls.reached(2)
        holder = await lock_holder(hotel)
        assert holder is not None
        await hotel.h.rows("SELECT pg_terminate_backend($1)", holder)

        await attempts.reached(2)  # it noticed, stepped down and wants the lock back
        polled = polls.count
        assert len(logged(caplog, "spectra.leadership_lost")) == 1
        async with CursorStore(hotel.h.db).leadership(CONNECTION) as contender:
            assert contender.leader
            assert await lock_holder(hotel) not in (None, holder)
            retry.set()
            await attempts.reached(4)  # it keeps trying, and keeps losing
            assert polls.count == polled
            await hotel.put_reservation(GUID)
            assert await contender.still_held()
        await polls.reached(polled + 1)  # the contender stepped down: it leads again
    finally:
        runtime.stopping.set()
        await asyncio.wait_for(task, 5)
    await hotel.h.settle()
    assert len(await hotel.inlet_calls("GrantAccess")) == 1


# --- 8. faults ---


@pytest.mark.parametrize(
    ("fault", "kind", "status"),
    [
        ({"kind": "status", "status": 500}, "http", 500),
        ({"kind": "status", "status": 503, "paths": ["/api/events/"]}, "http", 503),
        ({"kind": "bad_json", "paths": ["/api/events/"]}, "decode", 200),
        ({"kind": "timeout", "seconds": 30, "paths": ["/api/events/"]}, "timeout", None),
        ({"kind": "timeout", "seconds": 30, "paths": ["/api/v2/"]}, "timeout", None),
        ({"kind": "status", "status": 401, "paths": ["/api/events/"]}, "http", 401),
    ],
)
async def test_spectra_faults_fail_the_poll_with_their_kind_and_nothing_is_lost(
    database_url: str,
    tmp_path: Path,
    fault: dict[str, Any],
    kind: str,
    status: int | None,
) -> None:
    async with spectra_hotel(
        database_url, tmp_path, timeout_seconds=0.2, hold_unpaid=True
    ) as hotel:
        await started(hotel)
        before = await cursor(hotel)
        await hotel.put_reservation(GUID)
        await hotel.fault(**fault, count=1)
        with pytest.raises(SpectraError) as caught:
            await hotel.poller.poll_once()
        assert (caught.value.kind, caught.value.status) == (kind, status)
        await hotel.clear_faults()  # wakes a stalled request
        assert await cursor(hotel) == before
        assert await hotel.events(GUID) == []

        assert (await hotel.poll()).appended == 1
        assert len(await hotel.inlet_calls("GrantAccess")) == 1
        assert len(await hotel.events(GUID)) == 1


@pytest.mark.parametrize(
    ("fault", "path"),
    [
        ({"kind": "status", "status": 500}, "/api/v5/reservations/{guid}"),
        ({"kind": "bad_json"}, "/api/v5/reservations/{guid}"),
        ({"kind": "timeout", "seconds": 30}, "/api/v5/reservations/{guid}"),
        ({"kind": "status", "status": 503}, "/api/guestjourney/v5/balance/{guid}"),
    ],
)
async def test_one_reservation_that_keeps_failing_holds_up_no_other_and_is_read_once_it_can_be(
    database_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    fault: dict[str, Any],
    path: str,
) -> None:
    async with spectra_hotel(
        database_url, tmp_path, timeout_seconds=0.2, hold_unpaid=True
    ) as hotel:
        await started(hotel)
        await hotel.put_reservation(GUID)
        await hotel.fault(**fault, count=None, paths=[path.format(guid=GUID)])
        others = ["6f1c2a4e-3333-4a2b-9c3d-00000000000" + str(n) for n in range(3)]
        for n, guid in enumerate(others):
            # Every poll a new booking comes in, while the bad one keeps failing.
            room = ("102", "201", "202")[n]
            await hotel.put_reservation(guid, reservationNumber=f"R-20{n}", roomNumber=room)
            report = await hotel.poll()
            assert (report.appended, report.failed) == (1, 1)
            assert (await hotel.inlet_grant(f"R-20{n}", guid))["state"] == "active"
            saved = await cursor(hotel)
            assert saved is not None
            assert saved.held == (GUID,)
            hotel.h.clock.advance(timedelta(minutes=5))  # past the feed's overlap
        assert errors_counted(hotel, "reservation") == 3
        (escalated,) = logged(caplog, "spectra.reservation_failing")
        assert escalated.levelno == logging.ERROR
        assert (escalated.stay_id, escalated.failures) == (GUID, 3)  # type: ignore[attr-defined]
        assert await hotel.events(GUID) == []

        await hotel.clear_faults()
        report = await hotel.poll()
        assert (report.appended, report.failed) == (1, 0)
        code = (await hotel.inlet_grant("R-1001", GUID))["codeFormatted"]
        assert await hotel.h.opens(code, "L-101", local("2026-11-23T16:00:00"))
        assert await hotel.codes(GUID) == {"posted": [code], "disabled": []}
        recovered = await cursor(hotel)
        assert recovered is not None
        assert recovered.held == ()
        hotel.h.clock.advance(MINUTE)
        assert (await hotel.poll()).appended == 0
        assert len(await hotel.events(GUID)) == 1
        assert len(await hotel.inlet_calls("GrantAccess")) == 4


async def test_the_poll_loop_counts_failures_and_records_them_on_the_cursor(
    hotel: SpectraHotel, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = hotel.h.runtime
    leader = runtime.spectra_leader(CONNECTION)
    recorded = count_calls(monkeypatch, leader.cursors, "failed")
    pauses: list[float] = []
    pause = leader._pause

    async def recording_pause(seconds: float) -> None:
        pauses.append(seconds)
        await pause(seconds)

    monkeypatch.setattr(leader, "_pause", recording_pause)
    await hotel.fault(kind="status", status=500, count=None)

    task = asyncio.create_task(leader.run(0.01, runtime.stopping))
    try:
        await recorded.reached(3)  # three failed polls, each after a longer back-off
    finally:
        runtime.stopping.set()
        await asyncio.wait_for(task, 5)
    assert pauses[:2] == [0.02, 0.04]  # the interval doubled per failure in a row
    assert errors_counted(hotel, "http") >= 2
    assert errors_counted(hotel, "internal") == 0
    stored = await cursor(hotel)
    assert stored is not None
    assert stored.last_error is not None
    assert "HTTP 500" in stored.last_error
    assert stored.sync_time is None  # it never read anything
    assert stored.last_success_at is None

    # Once Spectra answers again the next poll clears the error.
    await hotel.clear_faults()
    await hotel.poll()
    recovered = await cursor(hotel)
    assert recovered is not None
    assert (recovered.last_error, recovered.last_success_at) == (None, hotel.h.clock.now())


# --- 9. what changes nothing ---


async def test_an_unknown_status_changes_nothing(hotel: SpectraHotel) -> None:
    code = await granted(hotel)
    hotel.h.clock.advance(MINUTE)
    await hotel.set_status(GUID, "Tentative")
    report = await hotel.poll()
    assert (report.appended, report.skipped) == (0, 1)
    assert len(await hotel.events(GUID)) == 1
    assert [r["path"] for r in await hotel.inlet_requests_all()] == ["/GrantAccess"]
    assert await hotel.h.opens(code, "L-101", local("2026-11-23T16:00:00"))
    assert await hotel.codes(GUID) == {"posted": [code], "disabled": []}


async def test_a_reservation_that_disappears_is_not_a_cancellation(hotel: SpectraHotel) -> None:
    code = await granted(hotel)
    hotel.h.clock.advance(MINUTE)
    await hotel.put_reservation(GUID, roomNumber="102")
    await hotel.fault(kind="status", status=404, count=1, paths=[f"/api/v5/reservations/{GUID}"])
    report = await hotel.poll()
    assert (report.fetched, report.appended) == (0, 0)
    assert len(await hotel.events(GUID)) == 1
    assert [r["path"] for r in await hotel.inlet_requests_all()] == ["/GrantAccess"]
    assert await hotel.h.opens(code, "L-101", local("2026-11-23T16:00:00"))
    assert await hotel.codes(GUID) == {"posted": [code], "disabled": []}


# --- 10. unpaid reservations ---


async def test_an_unpaid_reservation_gets_access_once_its_balance_is_paid(
    database_url: str, tmp_path: Path
) -> None:
    async with spectra_hotel(database_url, tmp_path, hold_unpaid=True) as hotel:
        await started(hotel)
        await hotel.put_reservation(GUID)
        await hotel.put_balance(GUID, 1250.0)
        report = await hotel.poll()
        assert (report.appended, report.held) == (0, 1)
        held = await cursor(hotel)
        assert held is not None
        assert held.held == (GUID,)
        assert await hotel.events(GUID) == []
        assert await hotel.inlet_calls("GrantAccess") == []

        # Still unpaid, long after its feed item: still held, still no access.
        hotel.h.clock.advance(timedelta(minutes=5))
        assert (await hotel.poll()).held == 1
        assert await hotel.inlet_calls("GrantAccess") == []

        # Paid: no feed item says so, the held reservation is looked at again.
        await hotel.put_balance(GUID, 0)
        hotel.h.clock.advance(timedelta(minutes=5))
        report = await hotel.poll()
        assert (report.appended, report.held) == (1, 0)
        code = (await hotel.inlet_grant("R-1001", GUID))["codeFormatted"]
        assert await hotel.h.opens(code, "L-101", local("2026-11-23T16:00:00"))
        assert await hotel.codes(GUID) == {"posted": [code], "disabled": []}
        released = await cursor(hotel)
        assert released is not None
        assert released.held == ()
        assert len(await hotel.events(GUID)) == 1
