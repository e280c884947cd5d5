"""apaleo reservations as booking events, the comment the code is written to, the notification
payload, the receiver's logins, and the `[apaleo.NAME]` configuration: pure functions."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from inlet_bridge.adapters.apaleo import mapping
from inlet_bridge.api.apaleo import ApaleoLogins
from inlet_bridge.properties import ConfigError, parse_properties

FETCHED = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
MODIFIED = "2026-11-22T14:00:43.4854081+01:00"  # apaleo writes seven fractional digits


def reservation(**overrides: Any) -> mapping.ApaleoReservation:
    raw: dict[str, Any] = {
        "id": "XPGMSXGF-1",
        "bookingId": "XPGMSXGF",
        "status": "Confirmed",
        "property": {"id": "OSL", "name": "Demo"},
        "unit": {"id": "OSL-MTA", "name": "101"},
        "arrival": "2026-11-23T15:00:00+01:00",
        "departure": "2026-11-25T11:00:00+01:00",
        "modified": MODIFIED,
        "primaryGuest": {"firstName": "Ola", "lastName": "Nordmann", "email": "ola@example.no"},
        "additionalGuests": [{"lastName": "Hansen", "phone": "+4791234567"}],
        "somethingNew": {"ignored": True},
    }
    raw.update(overrides)
    raw = {k: v for k, v in raw.items() if v is not None}
    return mapping.decode(msgspec.json.encode(raw), mapping.ApaleoReservation)  # type: ignore[no-any-return]


def to_event(r: mapping.ApaleoReservation, **options: Any) -> mapping.MappingResult:
    args: dict[str, Any] = {
        "source": "apaleo-osl",
        "property_id": "oslo-1",
        "apaleo_property_id": "OSL",
        "unit_key": "name",
        "fetched_at": FETCHED,
    }
    args.update(options)
    return mapping.reservation_to_event(r, **args)


def test_a_reservation_becomes_one_booking_with_one_stay() -> None:
    result = to_event(reservation())
    event = result.event
    assert event is not None
    assert (event.source, event.booking.booking_id, event.booking.property_id) == (
        "apaleo-osl",
        "XPGMSXGF-1",
        "oslo-1",
    )
    (stay,) = event.booking.stays
    assert (stay.stay_id, stay.resource_id, stay.status) == ("XPGMSXGF-1", "101", "confirmed")
    assert stay.arrival == datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    assert [g.name for g in stay.guests] == ["Ola Nordmann", "Hansen"]
    assert stay.guests[1].phone == "+4791234567"
    assert event.occurred_at == datetime(2026, 11, 22, 13, 0, 43, 485408, tzinfo=UTC)
    assert event.event_id.startswith("apaleo.XPGMSXGF-1.")
    assert event.booking.booking_type == "private"


@pytest.mark.parametrize(
    ("status", "ours"),
    [
        ("Confirmed", "confirmed"),
        ("InHouse", "checked_in"),
        ("CheckedOut", "checked_out"),
        ("Canceled", "cancelled"),
        ("NoShow", "no_show"),
    ],
)
def test_statuses(status: str, ours: str) -> None:
    event = to_event(reservation(status=status)).event
    assert event is not None
    assert event.booking.stays[0].status == ours


@pytest.mark.parametrize(
    ("overrides", "kind"),
    [
        ({}, "private"),
        ({"company": {"id": "C1", "name": "Nordlys AS"}}, "company"),
        ({"blockId": "BLK-1"}, "group"),
        ({"groupName": "Choir"}, "group"),
        ({"commission": {"commissionAmount": {"amount": 10, "currency": "EUR"}}}, "agency"),
        ({"commission": {"commissionAmount": {"amount": 1}}, "blockId": "B"}, "agency"),
    ],
)
def test_who_booked(overrides: dict[str, Any], kind: str) -> None:
    event = to_event(reservation(**overrides)).event
    assert event is not None
    assert event.booking.booking_type == kind
    if "company" in overrides:
        assert event.booking.company == "Nordlys AS"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"status": "Waitlisted"}, "unknown status 'Waitlisted'"),
        ({"property": {"id": "MUC"}}, "property is not this connection's"),
        ({"arrival": None}, "missing arrival"),
        ({"departure": None}, "missing departure"),
        ({"arrival": "2026-11-23T15:00:00"}, "arrival or departure has no UTC offset"),
    ],
)
def test_what_is_skipped_and_why(overrides: dict[str, Any], reason: str) -> None:
    result = to_event(reservation(**overrides))
    assert (result.event, result.skipped_reason) == (None, reason)


def test_no_unit_is_no_room_and_the_unit_id_can_name_the_room() -> None:
    unassigned = to_event(reservation(unit=None)).event
    assert unassigned is not None
    assert unassigned.booking.stays[0].resource_id is None
    by_id = to_event(reservation(), unit_key="id").event
    assert by_id is not None
    assert by_id.booking.stays[0].resource_id == "OSL-MTA"


def test_a_guest_without_a_name_is_left_out_and_said_so() -> None:
    result = to_event(reservation(additionalGuests=[{"lastName": " "}]))
    assert result.event is not None
    assert len(result.event.booking.stays[0].guests) == 1
    assert result.notes == ("guests[1] has no name and was left out",)


def test_event_ids_repeat_for_the_same_state_and_differ_for_another_time_or_content() -> None:
    first = to_event(reservation()).event
    again = to_event(reservation(), fetched_at=FETCHED + timedelta(hours=1)).event
    later = to_event(reservation(modified="2026-11-22T15:00:00+01:00")).event
    moved = to_event(reservation(unit={"id": "X", "name": "102"})).event
    assert first is not None
    assert again is not None
    assert later is not None
    assert moved is not None
    assert first.event_id == again.event_id  # a re-fetch of the same state is a repeat
    assert len({first.event_id, later.event_id, moved.event_id}) == 3
    # Without `modified`, the fetch time orders the state (and is part of its id).
    unstamped = to_event(reservation(modified=None)).event
    assert unstamped is not None
    assert unstamped.occurred_at == FETCHED


def test_fetched_at_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        to_event(reservation(), fetched_at=datetime(2026, 11, 23))


@pytest.mark.parametrize(
    ("comment", "code", "wanted"),
    [
        (None, "#1234*", "Inlet access code: #1234*"),
        ("VIP", "#1234*", "VIP\nInlet access code: #1234*"),
        ("VIP\nInlet access code: #1111*", "#1234*", "VIP\nInlet access code: #1234*"),
        ("Inlet access code: #1111*\nVIP", None, "VIP"),
        ("Inlet access code: #1111*", None, None),
        (None, None, None),
    ],
)
def test_the_code_line_of_the_comment(
    comment: str | None, code: str | None, wanted: str | None
) -> None:
    assert mapping.comment_with_code(comment, code) == wanted


def test_the_comment_patch() -> None:
    assert mapping.comment_patch("a", "a") == []
    assert mapping.comment_patch(None, "x") == [
        mapping.PatchOperation(op="add", path="/comment", value="x")
    ]
    assert mapping.comment_patch("a", "x") == [
        mapping.PatchOperation(op="replace", path="/comment", value="x")
    ]
    assert mapping.comment_patch("a", None) == [
        mapping.PatchOperation(op="remove", path="/comment")
    ]


def test_the_notification_payload_of_apaleos_docs_and_its_time() -> None:
    raw = (
        b'{"topic": "Reservation", "type": "created", "id": "ec5a1fe4-331c-450a-915c-5caa231cc825",'
        b' "accountId": "HFTF", "propertyId": "HFTF-AADS", "timestamp": 1692268510605,'
        b' "clientId": "ABCD-SP-APPDOINGSOMETHING", "subjectId": "6f1c719d",'
        b' "data": {"entityId": "XPGMSXGF-1"}}'
    )
    notification = mapping.decode(raw, mapping.Notification)
    assert mapping.is_reservation(notification)
    assert notification.data is not None
    assert notification.data.entity_id == "XPGMSXGF-1"
    assert mapping.notification_time(notification) == datetime(
        2023, 8, 17, 10, 35, 10, 605000, tzinfo=UTC
    )
    seconds = msgspec.structs.replace(notification, timestamp=1530741026)
    assert mapping.notification_time(seconds) == datetime(2018, 7, 4, 21, 50, 26, tzinfo=UTC)
    health = mapping.decode(
        b'{"id": "1", "topic": "system", "type": "healthcheck", "propertyIds": ["MUC"]}',
        mapping.Notification,
    )
    assert mapping.is_health_check(health)
    assert not mapping.is_reservation(health)
    with pytest.raises(msgspec.ValidationError):
        mapping.decode(
            b'{"topic": "Reservation", "type": "created", "id": ""}', mapping.Notification
        )


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


ENVIRON = {"INLET": "key", "CID": "client", "CSECRET": "secret", "HOOK": "hooks", "PW": "pw"}
CONNECTION = {
    "property_id": "oslo-1",
    "apaleo_property_id": "OSL",
    "client_id": {"env": "CID"},
    "client_secret": {"env": "CSECRET"},
    "webhook_username": {"env": "HOOK"},
    "webhook_password": {"env": "PW"},
}


def config(connection: dict[str, Any], **extra: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "inlet": {"partner": "P", "base_url": "https://inlet.example"},
        "properties": {
            "oslo-1": {"name": "Oslo", "timezone": "Europe/Oslo", "inlet_api_key": {"env": "INLET"}}
        },
        "apaleo": {"osl": connection},
    }
    raw.update(extra)
    return raw


def test_the_receivers_logins_are_checked_per_connection() -> None:
    logins = ApaleoLogins(parse_properties(config(CONNECTION), ENVIRON))
    assert logins.admits("osl", basic("hooks", "pw"))
    assert not logins.admits("osl", basic("hooks", "wrong"))
    assert not logins.admits("osl", basic("other", "pw"))
    assert not logins.admits("elsewhere", basic("hooks", "pw"))
    assert not logins.admits("osl", "Bearer " + base64.b64encode(b"hooks:pw").decode())
    assert not logins.admits("osl", "Basic !!!")
    assert not logins.admits("osl", "")


def test_an_apaleo_connection_is_bound_to_its_property_and_source() -> None:
    hotels = parse_properties(config(CONNECTION), ENVIRON)
    assert hotels.served_properties("apaleo-osl") == frozenset({"oslo-1"})
    assert hotels.apaleo_for_source("apaleo-osl") is not None
    assert hotels.apaleo["osl"].api_url == "https://api.apaleo.com"


@pytest.mark.parametrize(
    ("connection", "message"),
    [
        ({**CONNECTION, "property_id": "bergen-1"}, "apaleo.osl.property_id: no property"),
        (
            {**CONNECTION, "api_url": "http://api.example.com"},
            "apaleo.osl.api_url: must be an https",
        ),
        ({**CONNECTION, "client_secret": "inline"}, "apaleo.osl.client_secret"),
        ({**CONNECTION, "colour": "blue"}, "colour"),
        ({**CONNECTION, "unit_key": "number"}, "apaleo.osl.unit_key"),
    ],
)
def test_a_bad_apaleo_connection_is_refused_naming_the_key(
    connection: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        parse_properties(config(connection), ENVIRON)


def test_the_source_of_an_apaleo_connection_serves_only_its_property() -> None:
    raw = config(
        CONNECTION,
        sources={"apaleo-osl": {"properties": ["oslo-1", "bergen-1"], "token": {"env": "HOOK"}}},
    )
    raw["properties"]["bergen-1"] = raw["properties"]["oslo-1"]
    with pytest.raises(ConfigError, match="serves only its property"):
        parse_properties(raw, ENVIRON)
