"""What may a PMS send? The wire format of `POST /v1/events` (docs/contract.md section 1).

Subclasses of the domain's booking Structs, decoded straight from bytes: unknown fields refused,
timestamps only with an offset, lengths bounded so one event cannot be megabytes of name. A
decoded event is a domain event as it is; only the API is this strict, so tightening it never
makes a stored event unreadable.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from inlet_bridge.domain.booking import (
    Booking,
    BookingEvent,
    BookingType,
    Communication,
    Contact,
    Stay,
    StayStatus,
)

# Lengths are generous for real PMS data but bounded.
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Email = Annotated[str, msgspec.Meta(max_length=254)]
Phone = Annotated[str, msgspec.Meta(max_length=32)]
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
MAX_GUESTS = 50
MAX_STAYS = 200
MAX_BATCH = 500


class ContactIn(Contact, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name
    email: Email | None = None
    phone: Phone | None = None


class StayIn(Stay, frozen=True, kw_only=True, forbid_unknown_fields=True):
    stay_id: Id
    resource_id: Id | None = None
    arrival: AwareDatetime
    departure: AwareDatetime
    status: StayStatus = "confirmed"
    guests: Annotated[tuple[ContactIn, ...], msgspec.Meta(max_length=MAX_GUESTS)] = ()


class BookingIn(Booking, frozen=True, kw_only=True, forbid_unknown_fields=True):
    booking_id: Id
    property_id: Id
    booking_type: BookingType = "private"
    communication: Communication | None = None
    organizer: ContactIn | None = None
    company: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    stays: Annotated[tuple[StayIn, ...], msgspec.Meta(max_length=MAX_STAYS)] = ()
    deleted: bool = False


class BookingEventIn(BookingEvent, frozen=True, kw_only=True, forbid_unknown_fields=True):
    event_id: Id
    source: Id
    occurred_at: AwareDatetime
    booking: BookingIn


class EventBatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The body of `POST /v1/events:batch`."""

    events: Annotated[tuple[BookingEventIn, ...], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]
