"""The real Spectra client against the emulator: feed, codes, faults and auth end to end."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from inlet_bridge.adapters.spectra import mapping
from inlet_bridge.adapters.spectra.client import SpectraClient, SpectraError
from inlet_bridge.doubles.spectra.emulator import STATE, create_spectra_emulator

OSLO = ZoneInfo("Europe/Oslo")
GUID = "6f1c2a4e-1111-4a2b-9c3d-000000000001"

ServerFactory = Callable[..., Awaitable[TestServer]]


class FakeClock:
    """The emulator's clock, moved by the test instead of by waiting."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


class Hotel:
    """One emulator, a client for it and a plain session for the control endpoints."""

    def __init__(self, server: TestServer, session: aiohttp.ClientSession, clock: FakeClock):
        self.server = server
        self.session = session
        self.clock = clock
        self.base = str(server.make_url("/")).rstrip("/")

    def client(self, *, password: str = "pw", timeout_seconds: float = 5) -> SpectraClient:
        return SpectraClient(
            self.session,
            base_url=self.base,
            username="inlet",
            password=password,
            hotel_code="OSL",
            timeout_seconds=timeout_seconds,
        )

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(method, self.base + path, json=body) as response:
            assert response.status < 300, await response.text()
            if response.content_type == "application/json":
                return await response.json()
            return None


@pytest.fixture
async def hotel(aiohttp_server: ServerFactory) -> AsyncIterator[Hotel]:
    clock = FakeClock(datetime(2026, 11, 22, 9, 0, tzinfo=UTC))
    app = create_spectra_emulator(
        username="inlet", password="pw", hotel_code="OSL", clock=clock, seed=7
    )
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        yield Hotel(server, session, clock)


def reservation(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "reservationNumber": "R-1001",
        "status": "Confirmed",
        "arrival": "2026-11-23T15:00:00",
        "departure": "2026-11-25T11:00:00",
        "roomNumber": "101",
        "guests": [{"firstName": "Ola", "lastName": "Nordmann", "mobile": "+4791234567"}],
    }
    raw.update(overrides)
    return raw


async def test_a_wrong_password_is_refused(hotel: Hotel) -> None:
    with pytest.raises(SpectraError) as caught:
        await hotel.client(password="wrong").rooms()
    assert (caught.value.kind, caught.value.status) == ("http", 401)
    async with hotel.session.get(hotel.base + "/api/v1/rooms") as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic")


async def test_rooms_and_hotel_settings(hotel: Hotel) -> None:
    client = hotel.client()
    rooms = await client.rooms()
    assert [r.room_number for r in rooms] == ["101", "102", "201", "202", "Fjord"]
    (settings,) = await client.hotel_settings()
    assert settings.hotel_code == "OSL"
    assert mapping.hotel_zone(settings) == OSLO


async def test_a_put_reservation_appears_in_the_feed_and_maps(hotel: Hotel) -> None:
    client = hotel.client()
    start = hotel.clock.now
    await hotel.control("PUT", f"/_emulator/reservations/{GUID}", reservation())
    (item,) = await client.events_since(start)
    assert item.reservation_guid == GUID
    assert mapping.feed_event_time(item) == start
    assert item.event_type == mapping.EVENT_CREATED

    fetched = await client.reservation(GUID)
    result = mapping.reservation_to_event(
        fetched,
        source="spectra-osl",
        property_id="oslo-1",
        tz=OSLO,
        observed_at=hotel.clock.now,
        event_time=mapping.feed_event_time(item),
    )
    assert result.event is not None
    (stay,) = result.event.booking.stays
    assert (result.event.booking.booking_id, stay.stay_id, stay.resource_id) == (
        "R-1001",
        GUID,
        "101",
    )
    assert stay.arrival == datetime(2026, 11, 23, 15, tzinfo=OSLO)
    assert result.event.occurred_at == start


async def test_the_feed_returns_only_changes_since_the_sync_time(hotel: Hotel) -> None:
    client = hotel.client()
    await hotel.control("PUT", f"/_emulator/reservations/{GUID}", reservation())
    later = hotel.clock.advance(minutes=10)
    await hotel.control("POST", f"/_emulator/reservations/{GUID}/status", {"status": "CheckedIn"})
    hotel.clock.advance(minutes=10)
    # Re-putting the same content is no change and adds nothing to the feed.
    await hotel.control("PUT", f"/_emulator/reservations/{GUID}", reservation(status="CheckedIn"))
    items = await client.events_since(later)
    assert [(i.reservation_guid, i.event_type) for i in items] == [
        (GUID, mapping.EVENT_STATUS_CHANGED)
    ]
    assert (await client.reservation(GUID)).status == "CheckedIn"


async def test_the_feed_forgets_items_older_than_a_day(hotel: Hotel) -> None:
    client = hotel.client()
    start = hotel.clock.now
    await hotel.control("PUT", f"/_emulator/reservations/{GUID}", reservation())
    hotel.clock.advance(hours=23)
    await hotel.control("POST", f"/_emulator/reservations/{GUID}/status", {"status": "Cancelled"})
    assert len(await client.events_since(start)) == 2
    hotel.clock.advance(hours=2)  # the creation is 25 h old, the cancellation 2 h
    assert [i.event_type for i in await client.events_since(start)] == [
        mapping.EVENT_STATUS_CHANGED
    ]
    hotel.clock.advance(hours=23)
    assert await client.events_since(start) == []
    # The reservation itself is still there: only the feed forgot.
    assert (await client.reservation(GUID)).status == "Cancelled"


async def test_keys_in_any_case_survive_the_round_trip(hotel: Hotel) -> None:
    raw = {k.upper(): v for k, v in reservation(roomNumber=None).items()}
    await hotel.control("PUT", f"/_emulator/reservations/{GUID}", raw)
    fetched = await hotel.client().reservation(GUID)
    assert (fetched.reservation_guid, fetched.reservation_number) == (GUID, "R-1001")
    assert fetched.room_number is None


async def test_a_deleted_reservation_is_a_feed_deletion_and_a_404(hotel: Hotel) -> None:
    client = hotel.client()
    await hotel.control("PUT", f"/_emulator/reservations/{GUID}", reservation())
    since = hotel.clock.advance(minutes=1)
    await hotel.control("DELETE", f"/_emulator/reservations/{GUID}")
    (item,) = await client.events_since(since)
    assert mapping.is_deletion(item)
    with pytest.raises(SpectraError) as caught:
        await client.reservation(GUID)
    assert (caught.value.kind, caught.value.status) == ("http", 404)


async def test_reservation_codes_are_recorded_when_posted_and_disabled(hotel: Hotel) -> None:
    client = hotel.client()
    await hotel.control("PUT", f"/_emulator/reservations/{GUID}", reservation())
    await client.post_reservation_code(GUID, "#1234*")
    await client.post_reservation_code(GUID, "#5678*")
    await client.disable_reservation_code(GUID, "#1234*")
    await client.disable_reservation_code(GUID, "#1234*")  # again: harmless
    codes = await hotel.control("GET", "/_emulator/codes")
    assert codes == {GUID: {"posted": ["#1234*", "#5678*"], "disabled": ["#1234*"]}}
    with pytest.raises(SpectraError) as caught:
        await client.disable_reservation_code(GUID, "#0000*")
    assert caught.value.status == 404


async def test_a_code_for_an_unknown_reservation_is_a_404(hotel: Hotel) -> None:
    with pytest.raises(SpectraError) as caught:
        await hotel.client().post_reservation_code("no-such-guid", "#1234*")
    assert (caught.value.kind, caught.value.status) == ("http", 404)


async def test_reservations_filter_by_arrival_and_page(hotel: Hotel) -> None:
    for day in range(23, 28):
        await hotel.control(
            "PUT",
            f"/_emulator/reservations/g-{day}",
            reservation(reservationNumber=f"R-{day}", arrival=f"2026-11-{day}T15:00:00"),
        )
    client = hotel.client()
    first = await client.reservations(date(2026, 11, 24), date(2026, 11, 26), page_size=2)
    second = await client.reservations(date(2026, 11, 24), date(2026, 11, 26), page=2, page_size=2)
    assert [r.reservation_number for r in first] == ["R-24", "R-25"]
    assert [r.reservation_number for r in second] == ["R-26"]
    every = await client.all_reservations(date(2026, 11, 1), date(2026, 11, 30), page_size=2)
    assert len(every) == 5


async def test_a_status_fault_fails_once_then_recovers(hotel: Hotel) -> None:
    client = hotel.client()
    await hotel.control("POST", "/_emulator/faults", {"kind": "status", "status": 503})
    with pytest.raises(SpectraError) as caught:
        await client.rooms()
    assert (caught.value.kind, caught.value.status, caught.value.temporary) == ("http", 503, True)
    assert len(await client.rooms()) == 5


async def test_bad_json_fault_is_a_decode_error_on_the_chosen_paths_only(hotel: Hotel) -> None:
    client = hotel.client()
    await hotel.control(
        "POST", "/_emulator/faults", {"kind": "bad_json", "count": None, "paths": ["/api/v1/rooms"]}
    )
    for _ in range(2):
        with pytest.raises(SpectraError) as caught:
            await client.rooms()
        assert caught.value.kind == "decode"
    assert len(await client.hotel_settings()) == 1  # another path is unaffected
    await hotel.control("DELETE", "/_emulator/faults")
    assert len(await client.rooms()) == 5


async def test_a_timeout_fault_times_out_until_cleared(hotel: Hotel) -> None:
    # The stall lasts until the faults are cleared; only the client's own short timeout waits.
    client = hotel.client(timeout_seconds=0.05)
    await hotel.control(
        "POST", "/_emulator/faults", {"kind": "timeout", "seconds": 60, "count": None}
    )
    with pytest.raises(SpectraError) as caught:
        await client.rooms()
    assert (caught.value.kind, caught.value.status) == ("timeout", None)
    await hotel.control("DELETE", "/_emulator/faults")
    assert len(await hotel.client().rooms()) == 5


async def test_a_bad_fault_request_is_refused(hotel: Hotel) -> None:
    async with hotel.session.post(
        hotel.base + "/_emulator/faults", json={"kind": "explode"}
    ) as response:
        assert response.status == 400


async def test_conferences_and_balance(hotel: Hotel) -> None:
    client = hotel.client()
    await hotel.control(
        "PUT",
        "/_emulator/conferences/conf-1",
        {
            "roomName": "Fjord",
            "start": "2026-11-23T09:00:00",
            "end": "2026-11-23T16:00:00",
            "status": "Confirmed",
            "contact": {"firstName": "Nora", "lastName": "Dahl", "email": "nora@example.no"},
        },
    )
    (conference,) = await client.conferences()
    result = mapping.conference_to_event(
        conference, source="spectra-osl", property_id="oslo-1", tz=OSLO, observed_at=hotel.clock.now
    )
    assert result.event is not None
    assert result.event.booking.stays[0].resource_id == "Fjord"
    assert result.event.booking.communication == "organizer"

    await hotel.control("PUT", f"/_emulator/reservations/{GUID}", reservation())
    assert (await client.balance(GUID)).balance == 0
    await hotel.control("PUT", f"/_emulator/balance/{GUID}", {"balance": 123.45, "currency": "NOK"})
    balance = await client.balance(GUID)
    assert (str(balance.balance), balance.currency) == ("123.45", "NOK")


async def test_seed_demo_is_reproducible_and_every_reservation_maps(
    aiohttp_server: ServerFactory,
) -> None:
    clock = FakeClock(datetime(2026, 11, 22, 9, 0, tzinfo=UTC))
    seeded = []
    for _ in range(2):
        app = create_spectra_emulator(
            username="inlet", password="pw", hotel_code="OSL", clock=clock, seed=42
        )
        server = await aiohttp_server(app)
        async with aiohttp.ClientSession() as session:
            hotel = Hotel(server, session, clock)
            created = await hotel.control("POST", "/_emulator/seed-demo")
            client = hotel.client()
            fetched = [await client.reservation(g) for g in created["reservations"]]
            conferences = await client.conferences()
        seeded.append((created, fetched, app[STATE].feed))
    assert seeded[0] == seeded[1]
    created, fetched, _ = seeded[0]
    assert len(created["reservations"]) == 4
    events = [
        mapping.reservation_to_event(
            r, source="spectra-osl", property_id="oslo-1", tz=OSLO, observed_at=clock.now
        ).event
        for r in fetched
    ]
    assert all(e is not None for e in events)
    present = [e for e in events if e is not None]
    assert sorted(e.booking.booking_type for e in present) == [
        "agency",
        "company",
        "group",
        "private",
    ]
    # Demo arrivals are relative to the clock: yesterday, today, tomorrow, the day after.
    arrivals = sorted(e.booking.stays[0].arrival.date() for e in present)
    assert arrivals == [date(2026, 11, d) for d in (21, 22, 23, 24)]
    assert len(conferences) == 1
