"""Spectra payloads become the right normalized BookingEvents, whatever the keys' case."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from inlet_bridge.adapters.spectra import mapping
from inlet_bridge.adapters.spectra.mapping import (
    MappingResult,
    SpectraBalance,
    SpectraConference,
    SpectraFeedItem,
    SpectraHotel,
    SpectraPayloadError,
    SpectraReservation,
    conference_to_event,
    reservation_to_event,
)
from inlet_bridge.domain.booking import BookingEvent

OSLO = ZoneInfo("Europe/Oslo")
OBSERVED = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
GUID = "6f1c2a4e-1111-4a2b-9c3d-000000000001"


def raw_reservation(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "reservationGuid": GUID,
        "reservationNumber": "R-1001",
        "status": "Confirmed",
        "arrival": "2026-11-23T15:00:00",
        "departure": "2026-11-25T11:00:00",
        "roomNumber": "101",
        "guests": [
            {
                "firstName": "Ola",
                "lastName": "Nordmann",
                "email": "ola@example.no",
                "mobile": "+4791234567",
            }
        ],
        "company": None,
        "travelAgent": None,
        "groupGuid": None,
    }
    raw.update(overrides)
    return raw


def to_event(raw: dict[str, Any], **kwargs: Any) -> MappingResult:
    reservation = mapping.decode(raw, SpectraReservation)
    return reservation_to_event(
        reservation,
        source="spectra-oslo",
        property_id="oslo-1",
        tz=OSLO,
        observed_at=kwargs.pop("observed_at", OBSERVED),
        **kwargs,
    )


def event_of(raw: dict[str, Any], **kwargs: Any) -> BookingEvent:
    result = to_event(raw, **kwargs)
    assert result.event is not None, result.skipped_reason
    return result.event


def test_a_reservation_becomes_one_booking_with_one_stay() -> None:
    event = event_of(raw_reservation())
    booking = event.booking
    assert event.source == "spectra-oslo"
    assert event.occurred_at == OBSERVED
    assert event.event_id.startswith(f"spectra.{GUID}.")
    assert ":" not in event.event_id  # ingest refuses ":" in IDs
    assert len(event.event_id.rsplit(".", 1)[1]) == 16
    assert booking.booking_id == "R-1001"
    assert booking.property_id == "oslo-1"
    assert booking.booking_type == "private"
    assert booking.company is None
    (stay,) = booking.stays
    assert stay.stay_id == GUID
    assert stay.resource_id == "101"
    assert stay.status == "confirmed"
    assert stay.arrival == datetime(2026, 11, 23, 15, tzinfo=OSLO)
    assert stay.arrival.utcoffset() is not None
    assert stay.departure == datetime(2026, 11, 25, 11, tzinfo=OSLO)
    assert [(g.name, g.email, g.phone) for g in stay.guests] == [
        ("Ola Nordmann", "ola@example.no", "+4791234567")
    ]


def test_the_event_is_valid_ingest_wire_format() -> None:
    event = event_of(raw_reservation())
    # Strict decoding (unknown fields refused, offsets required) accepts what we produce.
    again = msgspec.json.decode(msgspec.json.encode(event), type=BookingEvent)
    assert again == event


@pytest.mark.parametrize(
    ("spectra", "ours"),
    [
        ("Confirmed", "confirmed"),
        ("CheckedIn", "checked_in"),
        ("CheckedOut", "checked_out"),
        ("Cancelled", "cancelled"),
        ("NoShow", "no_show"),
        ("CONFIRMED", "confirmed"),
        ("checkedin", "checked_in"),
        ("checkedOUT", "checked_out"),
        ("cancelled", "cancelled"),
        ("noshow", "no_show"),
        ("Checked_In", "checked_in"),
        (" NoShow ", "no_show"),
    ],
)
def test_every_status_maps_case_insensitively(spectra: str, ours: str) -> None:
    (stay,) = event_of(raw_reservation(status=spectra)).booking.stays
    assert stay.status == ours


@pytest.mark.parametrize("status", ["Tentative", "Waitlisted", "", "Canceled?"])
def test_an_unknown_status_produces_no_event(status: str) -> None:
    result = to_event(raw_reservation(status=status))
    assert result.event is None
    assert result.skipped_reason == f"unknown status {status!r}"


def test_a_missing_status_produces_no_event() -> None:
    result = to_event(raw_reservation(status=None))
    assert result.event is None
    assert "unknown status" in result.skipped_reason


def test_keys_are_matched_without_regard_to_case() -> None:
    shouting = {
        "RESERVATIONGUID": GUID,
        "reservationnumber": "R-1001",
        "Status": "CheckedIn",
        "ARRIVAL": "2026-11-23T15:00:00",
        "Departure": "2026-11-25T11:00:00",
        "ROOMNUMBER": "101",
        "Guests": [{"FIRSTNAME": "Ola", "lastname": "Nordmann", "EMail": "ola@example.no"}],
        "COMPANY": {"NAME": "Nordlys AS"},
    }
    event = event_of(shouting)
    (stay,) = event.booking.stays
    assert (stay.stay_id, stay.resource_id, stay.status) == (GUID, "101", "checked_in")
    assert stay.guests[0].name == "Ola Nordmann"
    assert stay.guests[0].email == "ola@example.no"
    assert event.booking.company == "Nordlys AS"
    assert event.booking.booking_type == "company"


def test_unknown_extra_fields_are_ignored() -> None:
    raw = raw_reservation(loyaltyLevel="gold", rateCode={"code": "BAR", "amount": 1200})
    assert event_of(raw) == event_of(raw_reservation())


def test_a_payload_without_a_guid_is_a_payload_error_naming_the_field() -> None:
    raw = raw_reservation()
    del raw["reservationGuid"]
    with pytest.raises(SpectraPayloadError, match="reservationGuid"):
        mapping.decode(raw, SpectraReservation)


def test_a_list_keeps_the_good_items_and_names_the_bad_ones() -> None:
    items, problems = mapping.decode_list(
        [raw_reservation(), {"reservationNumber": "R-2"}, raw_reservation(reservationGuid="g3")],
        SpectraReservation,
    )
    assert [r.reservation_guid for r in items] == [GUID, "g3"]
    assert len(problems) == 1
    assert "$[1]" in problems[0]
    assert "R-2" not in problems[0]


def test_a_wrapped_list_and_a_single_object_are_accepted() -> None:
    items, _ = mapping.decode_list({"Items": [raw_reservation()]}, SpectraReservation)
    assert [r.reservation_guid for r in items] == [GUID]
    hotels, _ = mapping.decode_list({"hotelCode": "OSL", "timeZone": "Europe/Oslo"}, SpectraHotel)
    assert [h.hotel_code for h in hotels] == ["OSL"]
    with pytest.raises(SpectraPayloadError):
        mapping.decode_list("nope", SpectraReservation)


@pytest.mark.parametrize(
    ("local", "expected_offset_hours"),
    [
        ("2026-03-28T15:00:00", 1),  # the day before spring forward: CET
        ("2026-03-30T11:00:00", 2),  # after it: CEST
        ("2026-10-24T15:00:00", 2),  # the day before fall back: CEST
        ("2026-10-26T11:00:00", 1),  # after it: CET
    ],
)
def test_local_times_get_the_offset_of_their_date(local: str, expected_offset_hours: int) -> None:
    aware = mapping.local_to_aware(local, OSLO, time(15))
    assert aware.utcoffset() is not None
    assert aware.utcoffset().total_seconds() == expected_offset_hours * 3600  # type: ignore[union-attr]


def test_a_stay_across_the_dst_change_keeps_both_offsets() -> None:
    raw = raw_reservation(arrival="2026-03-28T15:00:00", departure="2026-03-30T11:00:00")
    (stay,) = event_of(raw).booking.stays
    assert stay.arrival.isoformat() == "2026-03-28T15:00:00+01:00"
    assert stay.departure.isoformat() == "2026-03-30T11:00:00+02:00"
    # Python subtracts wall times within one zone; the real length is an hour shorter.
    elapsed = stay.departure.astimezone(UTC) - stay.arrival.astimezone(UTC)
    assert elapsed.total_seconds() == (44 - 1) * 3600


def test_a_wall_time_in_the_spring_gap_moves_forward() -> None:
    aware = mapping.local_to_aware("2026-03-29T02:30:00", OSLO, time(15))
    assert aware.isoformat() == "2026-03-29T03:30:00+02:00"


def test_an_ambiguous_autumn_time_takes_its_first_occurrence() -> None:
    aware = mapping.local_to_aware("2026-10-25T02:30:00", OSLO, time(15))
    assert aware.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_a_date_without_time_gets_default_check_in_and_out_times() -> None:
    (stay,) = event_of(raw_reservation(arrival="2026-11-23", departure="2026-11-25")).booking.stays
    assert stay.arrival == datetime(2026, 11, 23, 15, tzinfo=OSLO)
    assert stay.departure == datetime(2026, 11, 25, 11, tzinfo=OSLO)


def test_a_time_with_an_offset_keeps_its_instant() -> None:
    (stay,) = event_of(raw_reservation(arrival="2026-11-23T14:00:00Z")).booking.stays
    assert stay.arrival == datetime(2026, 11, 23, 15, tzinfo=OSLO)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"arrival": None}, "missing arrival"),
        ({"departure": ""}, "missing departure"),
        ({"arrival": "next tuesday"}, "arrival is not an ISO date-time"),
        ({"reservationNumber": None}, "missing reservationNumber"),
    ],
)
def test_incomplete_reservations_are_skipped_with_a_reason(
    overrides: dict[str, Any], reason: str
) -> None:
    result = to_event(raw_reservation(**overrides))
    assert (result.event, result.skipped_reason) == (None, reason)


@pytest.mark.parametrize(
    ("overrides", "booking_type", "company"),
    [
        ({}, "private", None),
        ({"company": "Nordlys AS"}, "company", "Nordlys AS"),
        ({"company": {"name": "Nordlys AS", "orgNo": "999"}}, "company", "Nordlys AS"),
        ({"company": ""}, "private", None),
        ({"groupGuid": "c0ffee00-0000-4000-8000-000000000001"}, "group", None),
        ({"groupGuid": "00000000-0000-0000-0000-000000000000"}, "private", None),
        ({"travelAgent": "Fjord Travel"}, "agency", None),
        ({"travelAgent": {"name": "Fjord Travel"}}, "agency", None),
        ({"travelAgent": {"name": None}}, "private", None),
        (
            {"travelAgent": "Fjord Travel", "groupGuid": "g-1", "company": "Nordlys AS"},
            "agency",
            "Nordlys AS",
        ),
        ({"groupGuid": "g-1", "company": "Nordlys AS"}, "group", "Nordlys AS"),
    ],
)
def test_booking_type_detection(
    overrides: dict[str, Any], booking_type: str, company: str | None
) -> None:
    booking = event_of(raw_reservation(**overrides)).booking
    assert (booking.booking_type, booking.company) == (booking_type, company)


@pytest.mark.parametrize("room", [None, "", "  "])
def test_an_unassigned_room_is_none(room: str | None) -> None:
    (stay,) = event_of(raw_reservation(roomNumber=room)).booking.stays
    assert stay.resource_id is None


def test_numeric_ids_become_strings() -> None:
    event = event_of(raw_reservation(reservationNumber=1001, roomNumber=101))
    assert event.booking.booking_id == "1001"
    assert event.booking.stays[0].resource_id == "101"


def test_guests_phones_pass_through_and_nameless_guests_are_noted() -> None:
    guests = [
        {"firstName": "Kari", "lastName": "", "email": "", "mobile": "91234567"},
        {"firstName": None, "lastName": None, "email": "someone@example.no"},
        {"firstName": " Lars ", "lastName": "Berg", "mobile": " +4790000000 "},
    ]
    result = to_event(raw_reservation(guests=guests))
    assert result.event is not None
    (stay,) = result.event.booking.stays
    assert [(g.name, g.email, g.phone) for g in stay.guests] == [
        ("Kari", None, "91234567"),
        ("Lars Berg", None, "+4790000000"),
    ]
    assert result.notes == ("guests[1] has no name and was left out",)
    assert "someone" not in " ".join(result.notes)


def test_no_guests_at_all_is_fine() -> None:
    (stay,) = event_of(raw_reservation(guests=None)).booking.stays
    assert stay.guests == ()


def test_event_id_is_the_same_for_the_same_content() -> None:
    first = event_of(raw_reservation())
    later = event_of(raw_reservation(), observed_at=datetime(2026, 11, 22, 9, 40, tzinfo=UTC))
    assert first.event_id == later.event_id
    assert later.occurred_at == datetime(2026, 11, 22, 9, 40, tzinfo=UTC)


@pytest.mark.parametrize(
    "change",
    [
        {"roomNumber": "102"},
        {"status": "CheckedIn"},
        {"departure": "2026-11-26T11:00:00"},
        {"guests": []},
        {"company": "Nordlys AS"},
    ],
)
def test_event_id_changes_when_content_changes(change: dict[str, Any]) -> None:
    assert event_of(raw_reservation(**change)).event_id != event_of(raw_reservation()).event_id


def test_event_time_becomes_occurred_at_and_tells_repeated_content_apart() -> None:
    t1 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
    t3 = datetime(2026, 11, 22, 8, 20, tzinfo=UTC)
    first = event_of(raw_reservation(), event_time=t1)
    again = event_of(raw_reservation(), event_time=t1, observed_at=t3)
    back_again = event_of(raw_reservation(), event_time=t3)
    assert first.occurred_at == t1
    assert first.event_id == again.event_id  # the same feed item read twice
    assert back_again.event_id != first.event_id  # 101 -> 102 -> 101 is a new change


def test_observed_at_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        to_event(raw_reservation(), observed_at=datetime(2026, 11, 22, 9, 30))


# --- conferences ---


def raw_conference(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "conferenceGuid": "conf-1",
        "roomName": "Fjord",
        "start": "2026-11-23T09:00:00",
        "end": "2026-11-23T16:00:00",
        "status": "Confirmed",
        "contact": {
            "firstName": "Nora",
            "lastName": "Dahl",
            "email": "nora@example.no",
            "mobile": "+4795555555",
        },
    }
    raw.update(overrides)
    return raw


def conference_event(raw: dict[str, Any]) -> MappingResult:
    return conference_to_event(
        mapping.decode(raw, SpectraConference),
        source="spectra-oslo",
        property_id="oslo-1",
        tz=OSLO,
        observed_at=OBSERVED,
    )


def test_a_conference_is_a_company_booking_told_to_its_organizer() -> None:
    event = conference_event(raw_conference()).event
    assert event is not None
    booking = event.booking
    assert (booking.booking_type, booking.communication) == ("company", "organizer")
    assert booking.organizer is not None
    assert (booking.organizer.name, booking.organizer.email, booking.organizer.phone) == (
        "Nora Dahl",
        "nora@example.no",
        "+4795555555",
    )
    (stay,) = booking.stays
    assert (stay.stay_id, stay.resource_id, stay.status) == ("conf-1", "Fjord", "confirmed")
    assert stay.arrival == datetime(2026, 11, 23, 9, tzinfo=OSLO)
    assert stay.departure == datetime(2026, 11, 23, 16, tzinfo=OSLO)
    assert stay.guests == ()
    assert event.event_id.startswith("spectra.conf-1.")


@pytest.mark.parametrize(
    "contact",
    [None, {"firstName": "Nora", "lastName": "Dahl"}, {"name": "Reception", "email": ""}],
)
def test_a_conference_contact_without_details_is_no_organizer(
    contact: dict[str, Any] | None,
) -> None:
    event = conference_event(raw_conference(contact=contact)).event
    assert event is not None
    assert (event.booking.organizer, event.booking.communication) == (None, None)


def test_a_conference_contact_may_use_name_and_phone() -> None:
    contact = {"NAME": "Front office", "Phone": "+4722000000"}
    event = conference_event(raw_conference(contact=contact)).event
    assert event is not None
    assert event.booking.organizer is not None
    assert (event.booking.organizer.name, event.booking.organizer.phone) == (
        "Front office",
        "+4722000000",
    )


def test_a_conference_with_an_unknown_status_is_skipped() -> None:
    result = conference_event(raw_conference(status="Option"))
    assert (result.event, result.skipped_reason) == (None, "unknown status 'Option'")


def test_a_conference_without_end_is_skipped() -> None:
    assert conference_event(raw_conference(end=None)).skipped_reason == "missing end"


@pytest.mark.parametrize(
    ("make", "conference"),
    [
        (lambda: conference_event(raw_conference()).event, True),
        (lambda: event_of(raw_reservation()), False),
    ],
)
def test_a_stored_conference_is_told_from_a_reservation(make: Any, conference: bool) -> None:
    event = make()
    assert event is not None
    (stay,) = event.booking.stays
    assert mapping.is_conference_booking(event.booking.booking_id, stay.stay_id) is conference


# --- feed, hotel settings, balance ---


def test_feed_items_speak_utc_and_know_deletions() -> None:
    items, problems = mapping.decode_list(
        [
            {"ReservationGuid": "g1", "EventTime": "2026-11-22T10:00:00", "EventType": "Modified"},
            {
                "reservationGuid": "g2",
                "eventTime": "2026-11-22T11:00:00+01:00",
                "eventType": "deleted",
            },
            {"reservationGuid": "g3"},
        ],
        SpectraFeedItem,
    )
    assert problems == []
    times = [mapping.feed_event_time(i) for i in items]
    assert times == [
        datetime(2026, 11, 22, 10, tzinfo=UTC),
        datetime(2026, 11, 22, 10, tzinfo=UTC),
        None,
    ]
    assert [mapping.is_deletion(i) for i in items] == [False, True, False]


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("Europe/Oslo", "Europe/Oslo"),
        ("W. Europe Standard Time", "Europe/Berlin"),
        ("Mars/Olympus", None),
        ("", None),
        (None, None),
    ],
)
def test_hotel_zone(zone: str | None, expected: str | None) -> None:
    result = mapping.hotel_zone(SpectraHotel(hotel_code="OSL", time_zone=zone))
    assert (str(result) if result else None) == expected


def test_balance_is_a_decimal() -> None:
    balance = mapping.decode({"Balance": 123.45, "CURRENCY": "NOK"}, SpectraBalance)
    assert str(balance.balance) == "123.45"
    assert balance.currency == "NOK"
