"""Builders shared by the tables of cases for the pure core: bookings, events, properties, grants.

Everything is a plain value: times are fixed and tz-aware, properties are parsed from dicts by
`parse_properties` (as the service does with the TOML file), states come from `fold`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from inlet_bridge.domain.booking import Booking, BookingEvent, Contact, Stay
from inlet_bridge.domain.config import HotelsConfig, Property
from inlet_bridge.domain.fold import BookingState, LoggedEvent, fold
from inlet_bridge.properties import parse_properties

OSLO = timezone(timedelta(hours=1))  # Europe/Oslo in November, as a PMS sends it
SOURCE = "acme-pms"
PROPERTY_ID = "oslo-1"
BOOKING_ID = "R-1001"

ARRIVAL = datetime(2026, 11, 23, 15, 0, tzinfo=OSLO)
DEPARTURE = datetime(2026, 11, 25, 11, 0, tzinfo=OSLO)
# Six hours before arrival: inside the default 24 h send window, before access starts.
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=OSLO)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)

ENVIRON: dict[str, str] = {"INLET_KEY": "inlet-key", "PMS_TOKEN": "pms-token"}

OLA = Contact(name="Ola Nordmann", email="ola@example.no", phone="+4791234567")
KARI = Contact(name="Kari Nordmann", email="kari@example.no", phone="+4791234568")
SILENT = Contact(name="Per Uten")  # a guest without any contact details


def base_config() -> dict[str, Any]:
    """A small, valid properties file as parsed TOML: one hotel with a few rooms."""
    return {
        "inlet": {"partner": "Test Partner", "base_url": "https://inlet.example"},
        "sources": {SOURCE: {"properties": [PROPERTY_ID], "token": {"env": "PMS_TOKEN"}}},
        "properties": {
            PROPERTY_ID: {
                "name": "Test Hotel Oslo",
                "timezone": "Europe/Oslo",
                "inlet_api_key": {"env": "INLET_KEY"},
                "common_doors": ["MAIN", "NIGHT"],
                "resources": {
                    "101": {"access_points": ["L-101"]},
                    "101-twin": {"access_points": ["L-101"]},
                    "102": {"access_points": ["L-102"]},
                    "201": {"access_points": ["L-201"], "common_doors": ["MAIN", "FLOOR-2"]},
                    "SUITE": {"access_points": ["L-SUITE", "MAIN", "L-SUITE"]},
                    "GARAGE": {"access_points": ["L-GARAGE"], "common_doors": []},
                },
            }
        },
    }


def merge(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of `base` with `changes` merged in (nested dicts merge, other values replace)."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def hotels(**property_changes: Any) -> HotelsConfig:
    raw = base_config()
    raw["properties"][PROPERTY_ID] = merge(raw["properties"][PROPERTY_ID], property_changes)
    return parse_properties(raw, ENVIRON)


def prop(**property_changes: Any) -> Property:
    """The test hotel, with some of its keys changed."""
    return hotels(**property_changes).properties[PROPERTY_ID]


def stay(
    stay_id: str = "S1",
    *,
    resource_id: str | None = "101",
    arrival: datetime = ARRIVAL,
    departure: datetime = DEPARTURE,
    status: str = "confirmed",
    guests: Sequence[Contact] = (OLA,),
) -> Stay:
    return Stay(
        stay_id=stay_id,
        resource_id=resource_id,
        arrival=arrival,
        departure=departure,
        status=status,  # type: ignore[arg-type]
        guests=tuple(guests),
    )


def booking(
    *stays: Stay,
    booking_type: str = "private",
    communication: str | None = None,
    organizer: Contact | None = None,
    company: str | None = None,
    deleted: bool = False,
    booking_id: str = BOOKING_ID,
) -> Booking:
    return Booking(
        booking_id=booking_id,
        property_id=PROPERTY_ID,
        booking_type=booking_type,  # type: ignore[arg-type]
        communication=communication,  # type: ignore[arg-type]
        organizer=organizer,
        company=company,
        stays=stays if stays else (stay(),),
        deleted=deleted,
    )


def logged(
    position: int,
    occurred_at: datetime,
    value: Booking,
    *,
    event_id: str | None = None,
    source: str = SOURCE,
) -> LoggedEvent:
    return LoggedEvent(
        position=position,
        received_at=occurred_at + MINUTE,
        event=BookingEvent(
            event_id=event_id or f"evt-{position}",
            source=source,
            occurred_at=occurred_at,
            booking=value,
        ),
    )


def state_of(*bookings: Booking, first_at: datetime = NOW - 48 * HOUR) -> BookingState:
    """The folded state of a booking seen as these successive versions, one hour apart."""
    events = [logged(i + 1, first_at + i * HOUR, b) for i, b in enumerate(bookings)]
    result = fold(events)
    assert result is not None
    return result


def history(*versions: tuple[datetime, Booking]) -> BookingState:
    """The folded state of a booking whose versions occurred at the given times."""
    result = fold([logged(i + 1, at, b) for i, (at, b) in enumerate(versions)])
    assert result is not None
    return result
