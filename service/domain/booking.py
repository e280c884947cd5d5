"""What is a booking, as every PMS adapter must hand it to us (docs/contract.md section 1)?

These Structs are the wire format of `POST /v1/events`: decoded straight from bytes,
unknown fields refused, timestamps only with an offset. Semantic rules (emails, phones,
arrival before departure, ...) live in `validation.py`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

BookingType = Literal["private", "company", "agency", "group"]
Communication = Literal["guest", "organizer", "none"]
StayStatus = Literal["confirmed", "checked_in", "checked_out", "cancelled", "no_show"]

# Lengths are generous for real PMS data but bounded, so one event cannot be megabytes of name.
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Email = Annotated[str, msgspec.Meta(max_length=254)]
Phone = Annotated[str, msgspec.Meta(max_length=32)]
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]


class Contact(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A person who may receive access messages: a guest or a group's organizer."""

    name: Name
    email: Email | None = None
    phone: Phone | None = None


class Stay(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One room line (or other resource) of a booking; a room change keeps the stay_id."""

    stay_id: Id
    resource_id: Id | None = None
    arrival: AwareDatetime
    departure: AwareDatetime
    status: StayStatus = "confirmed"
    guests: Annotated[tuple[Contact, ...], msgspec.Meta(max_length=50)] = ()


class Booking(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The whole current state of one booking (state transfer, not a diff)."""

    booking_id: Id
    property_id: Id
    booking_type: BookingType = "private"
    communication: Communication | None = None
    organizer: Contact | None = None
    company: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    stays: Annotated[tuple[Stay, ...], msgspec.Meta(max_length=200)] = ()
    deleted: bool = False


class BookingEvent(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One event from one source: the booking as the PMS saw it at `occurred_at`."""

    event_id: Id
    source: Id
    occurred_at: AwareDatetime
    booking: Booking


class EventBatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The body of `POST /v1/events:batch`."""

    events: Annotated[tuple[BookingEvent, ...], msgspec.Meta(min_length=1, max_length=500)]


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """One reason an input was refused, located by a JSON path such as `booking.stays[0].arrival`."""

    path: str
    message: str


def booking_key(source: str, booking_id: str) -> str:
    """The key of a booking across sources: a booking ID is only unique within its source."""
    return f"{source}:{booking_id}"


def grant_key(source: str, booking_id: str, stay_id: str) -> str:
    """The key of one access grant (one per stay); sent to Inlet as `externalId`."""
    return f"{source}:{booking_id}:{stay_id}"
