"""Room-status gating of a Spectra connection (`hold_until_room_status`): a stay's access waits
for its room to be ready before arrival, and a guest who is in keeps it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from inlet_bridge.adapters.spectra.client import SpectraError
from inlet_bridge.store.cursors import CursorStore

from .spectra_support import CONNECTION, SpectraHotel, spectra_hotel

OSLO = ZoneInfo("Europe/Oslo")
GUID = "6f1c2a4e-1111-4a2b-9c3d-0000000000a1"
# START is 10:00 in Oslo; the reservation arrives at 15:00 the same day.
ARRIVAL = datetime.fromisoformat("2026-11-23T15:00:00").replace(tzinfo=OSLO)


@pytest.fixture
async def hotel(database_url: str, tmp_path: Path) -> AsyncIterator[SpectraHotel]:
    async with spectra_hotel(
        database_url, tmp_path, hold_until_room_status=["Clean", "Inspected"]
    ) as running:
        report = await running.poll()  # the first start, on an empty hotel
        assert report.mode == "backfill"
        running.h.clock.advance(timedelta(minutes=1))
        yield running


async def held_back(hotel: SpectraHotel) -> tuple[str, ...]:
    cursor = await CursorStore(hotel.h.db).get(CONNECTION)
    assert cursor is not None
    return cursor.held


async def test_access_is_held_while_the_room_is_dirty_and_released_when_it_is_clean(
    hotel: SpectraHotel,
) -> None:
    await hotel.set_room_status("101", "Dirty")
    await hotel.put_reservation(GUID)
    report = await hotel.poll()
    assert (report.appended, report.waiting_for_room) == (0, 1)
    assert await held_back(hotel) == (GUID,)
    assert await hotel.events(GUID) == []
    assert await hotel.inlet_calls("GrantAccess") == []

    # Still dirty, polls later (no feed item any more): still held.
    hotel.h.clock.advance(timedelta(minutes=10))
    assert (await hotel.poll()).waiting_for_room == 1
    assert await hotel.inlet_calls("GrantAccess") == []

    # Inspected: no feed item says so; the held reservation is read again and released.
    await hotel.set_room_status("101", "Inspected")
    hotel.h.clock.advance(timedelta(minutes=10))
    report = await hotel.poll()
    assert (report.appended, report.waiting_for_room) == (1, 0)
    assert await held_back(hotel) == ()
    grant = await hotel.inlet_grant("R-1001", GUID)
    assert grant["state"] == "active"
    assert await hotel.h.opens(grant["code"], "L-101", ARRIVAL + timedelta(hours=1))


async def test_the_room_never_holds_access_from_the_booked_arrival_on(
    hotel: SpectraHotel,
) -> None:
    await hotel.set_room_status("101", "Dirty")
    await hotel.put_reservation(GUID)
    assert (await hotel.poll()).waiting_for_room == 1
    hotel.h.clock.set(ARRIVAL)  # housekeeping is late: the guest is at the door
    report = await hotel.poll()
    assert (report.appended, report.waiting_for_room) == (1, 0)
    assert (await hotel.inlet_grant("R-1001", GUID))["state"] == "active"


async def test_a_guest_who_is_in_is_not_revoked_when_the_room_turns_dirty(
    hotel: SpectraHotel,
) -> None:
    await hotel.put_reservation(GUID)  # room 101 is clean: granted
    assert (await hotel.poll()).appended == 1
    grant = await hotel.inlet_grant("R-1001", GUID)
    hotel.h.clock.set(ARRIVAL + timedelta(minutes=30))
    await hotel.set_status(GUID, "CheckedIn")
    await hotel.set_room_status("101", "Dirty")  # occupied rooms are dirty every morning
    hotel.h.clock.advance(timedelta(minutes=1))
    report = await hotel.poll()
    assert (report.appended, report.waiting_for_room) == (1, 0)
    assert await hotel.inlet_calls("RevokeAccess") == []
    assert (await hotel.inlet_grant("R-1001", GUID))["state"] == "active"
    assert await hotel.h.opens(grant["code"], "L-101", ARRIVAL + timedelta(hours=5))


async def test_a_code_already_sent_is_not_taken_back_when_the_room_turns_dirty_before_arrival(
    hotel: SpectraHotel,
) -> None:
    await hotel.put_reservation(GUID)
    assert (await hotel.poll()).appended == 1
    await hotel.set_room_status("101", "Dirty")
    await hotel.put_reservation(GUID, guests=[{"firstName": "Ola", "lastName": "Nordmann"}])
    hotel.h.clock.advance(timedelta(minutes=5))
    report = await hotel.poll()
    # The change waits for the room; the grant made while it was clean stays as it was.
    assert (report.appended, report.waiting_for_room) == (0, 1)
    assert await hotel.inlet_calls("RevokeAccess") == []
    assert await hotel.inlet_calls("UpdateAccess") == []
    assert (await hotel.inlet_grant("R-1001", GUID))["state"] == "active"


async def test_a_cancellation_is_never_held_by_the_room(hotel: SpectraHotel) -> None:
    await hotel.put_reservation(GUID)
    assert (await hotel.poll()).appended == 1
    await hotel.set_room_status("101", "Dirty")
    await hotel.set_status(GUID, "Cancelled")
    hotel.h.clock.advance(timedelta(minutes=5))
    report = await hotel.poll()
    assert (report.appended, report.waiting_for_room) == (1, 0)
    assert len(await hotel.inlet_calls("RevokeAccess")) == 1


async def test_rooms_that_cannot_be_read_fail_the_poll_and_lose_nothing(
    hotel: SpectraHotel,
) -> None:
    await hotel.set_room_status("101", "Dirty")
    await hotel.put_reservation(GUID)
    await hotel.fault(kind="status", status=503, paths=["/api/v1/rooms"], count=1)
    with pytest.raises(SpectraError) as caught:
        await hotel.poller.poll_once()
    assert caught.value.status == 503
    assert await hotel.events(GUID) == []
    await hotel.set_room_status("101", "Clean")
    assert (await hotel.poll()).appended == 1
