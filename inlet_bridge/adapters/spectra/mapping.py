"""What does Spectra call things, and how does a Spectra reservation become a BookingEvent?

The one module that knows Spectra's paths, query parameters, field names and status values
(docs/contract.md section 3). Most of it is *assumed*: nothing here is published by Spectra, so
every name sits in one place and a correction is one edit. Keys are matched without regard
to case; unknown fields are ignored because PMS payloads grow. Pure functions only: time is
a parameter and nothing is logged here (the caller logs the `skipped_reason`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, time
from decimal import Decimal
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

import msgspec

from inlet_bridge.adapters.spectra import payload
from inlet_bridge.adapters.spectra.localtime import local_to_aware as local_to_aware
from inlet_bridge.adapters.spectra.localtime import zone_named
from inlet_bridge.adapters.spectra.payload import SpectraPayloadError as SpectraPayloadError
from inlet_bridge.domain.booking import (
    Booking,
    BookingEvent,
    BookingType,
    Communication,
    Contact,
    Stay,
    StayStatus,
)

T = TypeVar("T")


# --- endpoints (known from Spectra's setup guide) and query parameters (assumed) ---


class Endpoint(NamedTuple):
    """One Spectra endpoint; `name` is what logs and errors show (never the concrete URL,
    which can carry a door code)."""

    name: str
    method: str
    path: str


ROOMS = Endpoint("rooms", "GET", "/api/v1/rooms")
HOTEL_SETTINGS = Endpoint("hotel_settings", "GET", "/api/v3/settings/hotels")
RESERVATIONS = Endpoint("reservations", "GET", "/api/v5/reservations")
RESERVATION = Endpoint("reservation", "GET", "/api/v5/reservations/{guid}")
POST_CODE = Endpoint("post_reservation_code", "POST", "/api/v1/reservations/{guid}/reservationCode")
DISABLE_CODE = Endpoint(
    "disable_reservation_code",
    "PATCH",
    "/api/v1/reservations/{guid}/reservationCode/{code}/disable",
)
EVENTS = Endpoint("events", "GET", "/api/events/v1/events/{sync_time}/reservations")
CONFERENCES = Endpoint("conferences", "GET", "/api/v2/reservations/{hotel_code}/conferences")
BALANCE = Endpoint("balance", "GET", "/api/guestjourney/v5/balance/{guid}")

PARAM_ARRIVAL_FROM = "arrivalFrom"
PARAM_ARRIVAL_TO = "arrivalTo"
PARAM_PAGE = "page"
PARAM_PAGE_SIZE = "pageSize"

# A list endpoint may answer with a bare list or wrap it; these wrappers are accepted.
LIST_WRAPPER_KEYS = ("items", "data", "results", "reservations", "conferences", "rooms", "hotels")

# Feed event types the emulator writes; a deletion is an explicit revocation (docs/contract.md section 1).
EVENT_CREATED = "Created"
EVENT_MODIFIED = "Modified"
EVENT_STATUS_CHANGED = "StatusChanged"
EVENT_DELETED = "Deleted"
_DELETION_TYPES = frozenset({"deleted", "reservationdeleted", "delete"})

# When Spectra sends a date without a time, these hotel-local times are assumed.
DEFAULT_ARRIVAL_TIME = time(15, 0)
DEFAULT_DEPARTURE_TIME = time(11, 0)

# .NET systems write an empty Guid instead of null.
_EMPTY_GUID = "00000000-0000-0000-0000-000000000000"

STATUS_MAP: Mapping[str, StayStatus] = MappingProxyType(
    {
        "confirmed": "confirmed",
        "checkedin": "checked_in",
        "checkedout": "checked_out",
        "cancelled": "cancelled",
        "noshow": "no_show",
    }
)


# --- payloads (assumed field names; Python names are the camelCase names in snake_case) ---


class _Payload(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Base of every Spectra payload: camelCase on the wire, extra fields ignored."""


class SpectraGuest(_Payload, frozen=True, kw_only=True):
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    mobile: str | None = None


class SpectraParty(_Payload, frozen=True, kw_only=True):
    """A company or travel agent when Spectra sends an object rather than a name."""

    name: str | None = None


class SpectraReservation(_Payload, frozen=True, kw_only=True):
    reservation_guid: str
    reservation_number: str | int | None = None
    status: str | None = None
    arrival: str | None = None  # hotel local time, no offset
    departure: str | None = None
    room_number: str | int | None = None
    guests: tuple[SpectraGuest, ...] | None = None
    company: str | SpectraParty | None = None
    travel_agent: str | SpectraParty | None = None
    group_guid: str | None = None


class SpectraContact(_Payload, frozen=True, kw_only=True):
    name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    mobile: str | None = None
    phone: str | None = None


class SpectraConference(_Payload, frozen=True, kw_only=True):
    conference_guid: str
    room_name: str | None = None
    start: str | None = None  # hotel local time
    end: str | None = None
    contact: SpectraContact | None = None
    status: str | None = None


class SpectraFeedItem(_Payload, frozen=True, kw_only=True):
    reservation_guid: str
    event_time: datetime | None = None  # UTC when it has no offset
    event_type: str | None = None


class SpectraHotel(_Payload, frozen=True, kw_only=True):
    hotel_code: str | None = None
    name: str | None = None
    time_zone: str | None = None


class SpectraRoom(_Payload, frozen=True, kw_only=True):
    room_number: str | int | None = None
    name: str | None = None
    room_type: str | None = None
    status: str | None = None  # housekeeping state (Clean, Dirty, ...) for gating access


class SpectraBalance(_Payload, frozen=True, kw_only=True):
    balance: Decimal | None = None
    currency: str | None = None


class SpectraCodeBody(_Payload, frozen=True, kw_only=True):
    """The body of the reservation code POST: the keypad form, e.g. `#1234*`."""

    code: str


_PAYLOADS: tuple[type[_Payload], ...] = (
    SpectraGuest,
    SpectraParty,
    SpectraReservation,
    SpectraContact,
    SpectraConference,
    SpectraFeedItem,
    SpectraHotel,
    SpectraRoom,
    SpectraBalance,
    SpectraCodeBody,
)

# Lower-case key -> the spelling the Structs expect; built from the Structs so it cannot drift.
_KEY_SPELLING: Mapping[str, str] = MappingProxyType(payload.spellings(_PAYLOADS))


def field_name(struct: type[msgspec.Struct], attribute: str) -> str:
    """The wire name of a Struct attribute, e.g. `reservationGuid` (for code that writes JSON)."""
    for info in msgspec.structs.fields(struct):
        if info.name == attribute:
            return info.encode_name
    raise KeyError(attribute)


def canonical_keys(obj: Any) -> Any:
    """Respell every known Spectra key the way the Structs expect, whatever its case."""
    return payload.canonical_keys(obj, _KEY_SPELLING)


def decode(obj: Any, type_: type[T]) -> T:
    """One decoded JSON value as a payload Struct; raises SpectraPayloadError naming the path."""
    return payload.convert(obj, type_, _KEY_SPELLING)


def decode_list(obj: Any, type_: type[T]) -> tuple[list[T], list[str]]:
    """A list answer as Structs, plus one problem line per item that did not fit."""
    return payload.convert_list(obj, type_, _KEY_SPELLING, LIST_WRAPPER_KEYS)


# --- small interpretations ---


def map_status(value: str | None) -> StayStatus | None:
    """Spectra's status as ours, case-insensitive (`CheckedIn`, `checked_in`); None if unknown."""
    if value is None:
        return None
    key = value.strip().lower().replace("_", "").replace(" ", "").replace("-", "")
    return STATUS_MAP.get(key)


def is_deletion(item: SpectraFeedItem) -> bool:
    """Whether a feed item says the reservation was deleted (an explicit revocation)."""
    return (item.event_type or "").strip().lower() in _DELETION_TYPES


def is_conference_booking(booking_id: str, stay_id: str) -> bool:
    """Whether a stored booking is a conference: `conference_to_event` keys both by its GUID."""
    return booking_id == stay_id


def feed_event_time(item: SpectraFeedItem) -> datetime | None:
    """The feed item's time, aware; the feed speaks UTC (like its SyncTime) when no offset."""
    if item.event_time is None:
        return None
    if item.event_time.tzinfo is None:
        return item.event_time.replace(tzinfo=UTC)
    return item.event_time


def hotel_zone(hotel: SpectraHotel) -> ZoneInfo | None:
    """The hotel's zone from settings/hotels (IANA or a known Windows ID); None if unknown."""
    return zone_named(hotel.time_zone)


def _text(value: str | int | None) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _party_name(value: str | SpectraParty | None) -> str | None:
    if isinstance(value, SpectraParty):
        return _text(value.name)
    return _text(value)


def _full_name(first: str | None, last: str | None) -> str | None:
    return _text(" ".join(part.strip() for part in (first, last) if part and part.strip()))


def room_key(room: SpectraRoom) -> str | None:
    """The room as reservations name it (`roomNumber`), else its name; None if it has neither."""
    return _text(room.room_number) or _text(room.name)


def booking_type_of(reservation: SpectraReservation) -> BookingType:
    """Who booked: travel agent first, then group, then company, else a private guest."""
    if _party_name(reservation.travel_agent):
        return "agency"
    group = _text(reservation.group_guid)
    if group and group != _EMPTY_GUID:
        return "group"
    if _party_name(reservation.company):
        return "company"
    return "private"


# --- mapping to the normalized event ---


class MappingResult(msgspec.Struct, frozen=True, kw_only=True):
    """A BookingEvent, or why there is none (log it and change nothing)."""

    event: BookingEvent | None = None
    skipped_reason: str = ""
    notes: tuple[str, ...] = ()  # things dropped on the way that did not stop the event


def _skip(reason: str) -> MappingResult:
    return MappingResult(event=None, skipped_reason=reason)


def _check_aware(observed_at: datetime) -> None:
    if observed_at.tzinfo is None:
        raise ValueError("observed_at must be timezone-aware")


def _event_id(guid: str, booking: Booking, event_time: datetime | None) -> str:
    """Same content (and same feed time) gives the same ID, so a re-fetch is a repeat.

    The feed time is part of it when known, so a reservation that changes and changes back
    (room 101 -> 102 -> 101) still yields a new event for the last change.
    """
    canonical = msgspec.json.encode(
        {
            "booking": booking,
            "event_time": event_time.astimezone(UTC) if event_time is not None else None,
        },
        order="sorted",
    )
    # "." separates the parts: ":" is reserved for our grant keys, and ingest refuses it in IDs.
    return f"spectra.{guid}.{hashlib.sha256(canonical).hexdigest()[:16]}"


def _times(
    start: str | None, end: str | None, tz: ZoneInfo, names: tuple[str, str]
) -> tuple[datetime, datetime] | str:
    result: list[datetime] = []
    pairs = ((start, names[0], DEFAULT_ARRIVAL_TIME), (end, names[1], DEFAULT_DEPARTURE_TIME))
    for value, name, default in pairs:
        if not _text(value):
            return f"missing {name}"
        try:
            result.append(local_to_aware(str(value), tz, default))
        except ValueError:
            return f"{name} is not an ISO date-time"
    return result[0], result[1]


def _guests(guests: Iterable[SpectraGuest]) -> tuple[tuple[Contact, ...], tuple[str, ...]]:
    contacts: list[Contact] = []
    notes: list[str] = []
    for index, guest in enumerate(guests):
        name = _full_name(guest.first_name, guest.last_name)
        if name is None:
            notes.append(f"guests[{index}] has no name and was left out")
            continue
        # Phones are passed through as Spectra has them; validation flags a missing "+".
        contacts.append(Contact(name=name, email=_text(guest.email), phone=_text(guest.mobile)))
    return tuple(contacts), tuple(notes)


def reservation_to_event(
    reservation: SpectraReservation,
    *,
    source: str,
    property_id: str,
    tz: ZoneInfo,
    observed_at: datetime,
    event_time: datetime | None = None,
) -> MappingResult:
    """One Spectra reservation as the whole current state of one booking.

    `event_time` is the feed item's eventTime when the fetch came from the feed; it becomes
    `occurred_at` (else `observed_at`, the poll time).
    """
    _check_aware(observed_at)
    status = map_status(reservation.status)
    if status is None:
        return _skip(f"unknown status {reservation.status!r}")
    booking_id = _text(reservation.reservation_number)
    if booking_id is None:
        return _skip("missing reservationNumber")
    times = _times(reservation.arrival, reservation.departure, tz, ("arrival", "departure"))
    if isinstance(times, str):
        return _skip(times)
    guests, notes = _guests(reservation.guests or ())
    stay = Stay(
        stay_id=reservation.reservation_guid,
        resource_id=_text(reservation.room_number),
        arrival=times[0],
        departure=times[1],
        status=status,
        guests=guests,
    )
    booking = Booking(
        booking_id=booking_id,
        property_id=property_id,
        booking_type=booking_type_of(reservation),
        company=_party_name(reservation.company),
        stays=(stay,),
    )
    return _event(reservation.reservation_guid, booking, source, observed_at, event_time, notes)


def conference_to_event(
    conference: SpectraConference,
    *,
    source: str,
    property_id: str,
    tz: ZoneInfo,
    observed_at: datetime,
    event_time: datetime | None = None,
) -> MappingResult:
    """One conference booking: a company booking of a meeting room, told to its organizer."""
    _check_aware(observed_at)
    status = map_status(conference.status)
    if status is None:
        return _skip(f"unknown status {conference.status!r}")
    times = _times(conference.start, conference.end, tz, ("start", "end"))
    if isinstance(times, str):
        return _skip(times)
    organizer: Contact | None = None
    communication: Communication | None = None
    notes: tuple[str, ...] = ()
    contact = conference.contact
    if contact is not None:
        email = _text(contact.email)
        phone = _text(contact.mobile) or _text(contact.phone)
        name = _text(contact.name) or _full_name(contact.first_name, contact.last_name)
        if (email or phone) and name:
            organizer = Contact(name=name, email=email, phone=phone)
            communication = "organizer"
        elif email or phone:
            notes = ("contact has no name and was left out",)
    stay = Stay(
        stay_id=conference.conference_guid,
        resource_id=_text(conference.room_name),
        arrival=times[0],
        departure=times[1],
        status=status,
    )
    booking = Booking(
        booking_id=conference.conference_guid,
        property_id=property_id,
        booking_type="company",
        communication=communication,
        organizer=organizer,
        stays=(stay,),
    )
    return _event(conference.conference_guid, booking, source, observed_at, event_time, notes)


def _event(
    guid: str,
    booking: Booking,
    source: str,
    observed_at: datetime,
    event_time: datetime | None,
    notes: tuple[str, ...],
) -> MappingResult:
    if event_time is not None and event_time.tzinfo is None:
        event_time = event_time.replace(tzinfo=UTC)
    event = BookingEvent(
        event_id=_event_id(guid, booking, event_time),
        source=source,
        occurred_at=event_time or observed_at,
        booking=booking,
    )
    return MappingResult(event=event, notes=notes)
