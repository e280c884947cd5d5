"""What does apaleo call things, and how does an apaleo reservation become a BookingEvent?

The one module with apaleo's names: endpoints, notification and reservation fields, status
values, the comment the code is written to. Each name is marked beside it, as in
docs/contract.md section 4:

- **known (webhooks)**: apaleo.dev, "Webhooks payload" (guides/webhook/webhooks-payload) and
  "Configure webhooks" (guides/webhook/configuration); the reservation event types as apaleo's
  own n8n node lists them (apaleo/n8n-nodes-apaleo, ApaleoTrigger.node.ts);
- **known (swagger)**: apaleo's Swagger (api.apaleo.com/swagger, "API reference - Swagger" on
  apaleo.dev), read from a public copy of it: paths, field names, enums;
- **known (oauth)**: apaleo.dev, "OAuth 2.0 - Client credentials grant flow"
  (guides/oauth-connection/simple-client), with the request's form as apaleo's own n8n
  credentials send it;
- **assumed**: our reading where nothing is published (marked so below).

Pure functions only: time is a parameter and nothing is logged here (the caller logs the
`skipped_reason`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Annotated, Any, Literal, NamedTuple

import msgspec

from inlet_bridge.domain.booking import (
    Booking,
    BookingEvent,
    BookingType,
    Contact,
    Stay,
    StayStatus,
)

# --- endpoints ---


class Endpoint(NamedTuple):
    """One apaleo endpoint; `name` is what logs and errors show."""

    name: str
    method: str
    path: str


# known (oauth): the token endpoint of the client credentials grant, on the identity host.
TOKEN = Endpoint("token", "POST", "/connect/token")
# known (swagger): a reservation by id (404 when there is none), the list, the JSON Patch.
RESERVATION = Endpoint("reservation", "GET", "/booking/v1/reservations/{id}")
RESERVATIONS = Endpoint("reservations", "GET", "/booking/v1/reservations")
PATCH_RESERVATION = Endpoint("patch_reservation", "PATCH", "/booking/v1/reservations/{id}")

# known (swagger): query parameters of the list. `dateFilter=Stay` returns every reservation
# overlapping [from, to); the list answers 204 when a page is empty.
PARAM_PROPERTY_IDS = "propertyIds"
PARAM_DATE_FILTER = "dateFilter"
PARAM_FROM = "from"
PARAM_TO = "to"
PARAM_PAGE_NUMBER = "pageNumber"
PARAM_PAGE_SIZE = "pageSize"
DATE_FILTER_STAY = "Stay"

# known (webhooks): the topic of reservation notifications and the ones answered without a
# fetch. Every reservation type (created, amended, changed, canceled, checked-in, checked-out,
# check-in-reverted, set-to-no-show, unit-assigned, unit-unassigned, deleted, ...) leads to a
# fetch of the reservation's current state, so the type itself decides nothing.
TOPIC_RESERVATION = "reservation"
TOPIC_SYSTEM = "system"  # the health check ("type": "healthcheck"), every two minutes

# known (swagger): ReservationModel.status.
STATUS_MAP: Mapping[str, StayStatus] = MappingProxyType(
    {
        "Confirmed": "confirmed",
        "InHouse": "checked_in",
        "CheckedOut": "checked_out",
        "Canceled": "cancelled",
        "NoShow": "no_show",
    }
)

# assumed: the line of the reservation's `comment` that carries the keypad code. apaleo has no
# field for a door code; `comment` (known (swagger): "Additional information and comments", one
# of the fields PATCH may add, replace or remove) is what the front desk reads.
CODE_LINE_PREFIX = "Inlet access code: "


# --- payloads (Python names are the camelCase names in snake_case; unknown fields ignored) ---


class _Payload(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Base of every apaleo payload: camelCase on the wire, extra fields ignored."""


_Short = Annotated[str, msgspec.Meta(max_length=100)]
_Key = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class NotificationData(_Payload, frozen=True, kw_only=True):
    entity_id: _Key | None = None  # known (webhooks): the reservation id for reservation topics


class Notification(_Payload, frozen=True, kw_only=True):
    """known (webhooks): `{topic, type, id, accountId, propertyId, timestamp, data: {entityId}}`;
    the topic is written `Reservation` in one example and `reservation` in the table, so it is
    compared without regard to case. `timestamp` is in milliseconds (the health check's
    example), seconds in an older example: both are read (`notification_time`)."""

    topic: _Short
    type: _Short
    id: _Key
    account_id: str | None = None
    property_id: str | None = None
    property_ids: tuple[str, ...] | None = None  # the health check's
    timestamp: int | float | None = None
    client_id: str | None = None
    subject_id: str | None = None
    data: NotificationData | None = None


class TokenAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """known (oauth, RFC 6749 4.4.3): the token endpoint's answer."""

    access_token: str
    expires_in: float = 3600.0
    token_type: str = "Bearer"  # noqa: S105 - a scheme name, not a secret


class ApaleoGuest(_Payload, frozen=True, kw_only=True):
    """known (swagger): GuestModel (lastName required)."""

    first_name: str | None = None
    middle_initial: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None


class ApaleoEmbedded(_Payload, frozen=True, kw_only=True):
    """known (swagger): EmbeddedUnitModel, EmbeddedPropertyModel, EmbeddedCompanyModel: an id
    and a name."""

    id: str
    name: str | None = None
    code: str | None = None


class ApaleoReservation(_Payload, frozen=True, kw_only=True):
    """known (swagger): ReservationModel, the fields we read. Times are ISO 8601 with an offset
    (`2022-02-24T17:00:00+01:00`); one without is refused by the mapping."""

    id: str
    booking_id: str | None = None
    status: str | None = None
    property: ApaleoEmbedded | None = None
    unit: ApaleoEmbedded | None = None  # absent until a unit is assigned
    arrival: datetime | None = None
    departure: datetime | None = None
    modified: datetime | None = None  # "Date of last modification"
    primary_guest: ApaleoGuest | None = None
    additional_guests: tuple[ApaleoGuest, ...] | None = None
    company: ApaleoEmbedded | None = None
    block_id: str | None = None
    group_name: str | None = None
    # assumed: a reservation that owes a commission was booked through an agent (apaleo has no
    # travel-agent field; CommissionModel is known (swagger)). Only its presence is read.
    commission: dict[str, Any] | None = None
    comment: str | None = None


class ReservationList(_Payload, frozen=True, kw_only=True):
    """known (swagger): ReservationListModel."""

    reservations: tuple[ApaleoReservation, ...] = ()
    count: int | None = None


class PatchOperation(msgspec.Struct, frozen=True, kw_only=True):
    """known (swagger): one JSON Patch operation (`op`, `path`, `value`)."""

    op: Literal["add", "replace", "remove"]
    path: str
    value: str | None = None


def decode(raw: bytes, type_: type[Any]) -> Any:
    """Bytes as a payload Struct; raises msgspec.DecodeError/ValidationError naming the path."""
    return msgspec.json.decode(raw, type=type_)


# --- small interpretations ---


def is_reservation(notification: Notification) -> bool:
    return notification.topic.strip().lower() == TOPIC_RESERVATION


def is_health_check(notification: Notification) -> bool:
    return notification.topic.strip().lower() == TOPIC_SYSTEM


def notification_time(notification: Notification) -> datetime | None:
    """The notification's timestamp, aware: milliseconds since 1970 (seconds when it is too
    small to be milliseconds of this century)."""
    value = notification.timestamp
    if value is None or value <= 0:
        return None
    seconds = value / 1000 if value > 10**11 else value
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def map_status(value: str | None) -> StayStatus | None:
    return STATUS_MAP.get((value or "").strip())


def _text(value: str | None) -> str | None:
    text = (value or "").strip()
    return text or None


def _name(guest: ApaleoGuest) -> str | None:
    parts = (guest.first_name, guest.middle_initial, guest.last_name)
    return _text(" ".join(p.strip() for p in parts if p and p.strip()))


def booking_type_of(reservation: ApaleoReservation) -> BookingType:
    """Who booked: an agent (a commission is owed), a group or block, a company, else private."""
    if reservation.commission:
        return "agency"
    if _text(reservation.block_id) or _text(reservation.group_name):
        return "group"
    if reservation.company is not None:
        return "company"
    return "private"


def _guests(guests: Iterable[ApaleoGuest]) -> tuple[tuple[Contact, ...], tuple[str, ...]]:
    contacts: list[Contact] = []
    notes: list[str] = []
    for index, guest in enumerate(guests):
        name = _name(guest)
        if name is None:
            notes.append(f"guests[{index}] has no name and was left out")
            continue
        contacts.append(Contact(name=name, email=_text(guest.email), phone=_text(guest.phone)))
    return tuple(contacts), tuple(notes)


def resource_of(reservation: ApaleoReservation, unit_key: Literal["name", "id"]) -> str | None:
    """The room as the properties file names it: the unit's name (`A.101`) or its id."""
    if reservation.unit is None:
        return None
    return _text(reservation.unit.name if unit_key == "name" else reservation.unit.id)


# --- mapping to the normalized event ---


class MappingResult(msgspec.Struct, frozen=True, kw_only=True):
    """A BookingEvent, or why there is none (log it and change nothing)."""

    event: BookingEvent | None = None
    skipped_reason: str = ""
    notes: tuple[str, ...] = ()


def _skip(reason: str) -> MappingResult:
    return MappingResult(event=None, skipped_reason=reason)


def event_id(reservation_id: str, booking: Booking, at: datetime) -> str:
    """Same content at the same modification time gives the same id, so a repeated or
    out-of-order fetch of an unchanged reservation is a repeat in the log, never a new event;
    the time is part of it, so a reservation that changes and changes back (101 -> 102 -> 101)
    still yields a new event for the last change. `.` separates the parts (ids never hold `:`)."""
    canonical = msgspec.json.encode({"booking": booking, "at": at.astimezone(UTC)}, order="sorted")
    return f"apaleo.{reservation_id}.{hashlib.sha256(canonical).hexdigest()[:16]}"


def reservation_to_event(
    reservation: ApaleoReservation,
    *,
    source: str,
    property_id: str,
    apaleo_property_id: str,
    unit_key: Literal["name", "id"],
    fetched_at: datetime,
) -> MappingResult:
    """One apaleo reservation as the whole current state of one booking (one stay).

    The reservation is the booking and its only stay (both keyed by the reservation id): apaleo
    sends reservations, and an event must hold a booking's every stay, so a multi-room apaleo
    booking is one booking per room here. `occurred_at` is apaleo's `modified` (the state's own
    time, so two fetches finishing out of order still fold in apaleo's order), else the fetch.
    """
    if fetched_at.tzinfo is None:
        raise ValueError("fetched_at must be timezone-aware")
    status = map_status(reservation.status)
    if status is None:
        return _skip(f"unknown status {reservation.status!r}")
    if reservation.property is not None and reservation.property.id != apaleo_property_id:
        return _skip("property is not this connection's")
    arrival, departure = reservation.arrival, reservation.departure
    if arrival is None or departure is None:
        return _skip("missing arrival" if arrival is None else "missing departure")
    if arrival.tzinfo is None or departure.tzinfo is None:
        return _skip("arrival or departure has no UTC offset")
    guests, notes = _guests(
        (
            *((reservation.primary_guest,) if reservation.primary_guest else ()),
            *(reservation.additional_guests or ()),
        )
    )
    stay = Stay(
        stay_id=reservation.id,
        resource_id=resource_of(reservation, unit_key),
        arrival=arrival,
        departure=departure,
        status=status,
        guests=guests,
    )
    company = reservation.company
    booking = Booking(
        booking_id=reservation.id,
        property_id=property_id,
        booking_type=booking_type_of(reservation),
        company=_text(company.name) if company is not None else None,
        stays=(stay,),
    )
    modified = reservation.modified
    at = modified if modified is not None and modified.tzinfo is not None else fetched_at
    event = BookingEvent(
        event_id=event_id(reservation.id, booking, at),
        source=source,
        occurred_at=at,
        booking=booking,
    )
    return MappingResult(event=event, notes=notes)


# --- the code written back ---


def comment_with_code(comment: str | None, code: str | None) -> str | None:
    """The reservation's comment with our code line replaced (or added, or removed when `code`
    is None); every other line the hotel wrote is kept as it was. None: the comment is empty."""
    lines = [line for line in (comment or "").splitlines() if not line.startswith(CODE_LINE_PREFIX)]
    if code is not None:
        lines.append(f"{CODE_LINE_PREFIX}{code}")
    text = "\n".join(lines).strip("\n")
    return text or None


def comment_patch(current: str | None, wanted: str | None) -> list[PatchOperation]:
    """The JSON Patch turning the comment `current` into `wanted` ([] when they are equal)."""
    if current == wanted:
        return []
    if wanted is None:
        return [PatchOperation(op="remove", path="/comment")]
    op: Literal["add", "replace"] = "add" if current is None else "replace"
    return [PatchOperation(op=op, path="/comment", value=wanted)]
