"""What is a booking? The domain's model of one, as the fold and the access rules read it.

These Structs are what the event log holds and what every PMS adapter produces: plain values,
read leniently (an unknown field is ignored, no length is enforced), because a stored event can
never be rewritten and must stay readable whatever the API accepts today. What a PMS may send
is the stricter wire format of `wire.py` (subclasses of these, with unknown fields refused and
lengths bounded); semantic rules (emails, phones, arrival before departure, ...) live in
`validation.py`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

BookingType = Literal["private", "company", "agency", "group"]
Communication = Literal["guest", "organizer", "none"]
StayStatus = Literal["confirmed", "checked_in", "checked_out", "cancelled", "no_show"]


class Contact(msgspec.Struct, frozen=True, kw_only=True):
    """A person who may receive access messages: a guest or a group's organizer."""

    name: str
    email: str | None = None
    phone: str | None = None


class Stay(msgspec.Struct, frozen=True, kw_only=True):
    """One room line (or other resource) of a booking; a room change keeps the stay_id."""

    stay_id: str
    resource_id: str | None = None
    arrival: datetime
    departure: datetime
    status: StayStatus = "confirmed"
    guests: tuple[Contact, ...] = ()


class Booking(msgspec.Struct, frozen=True, kw_only=True):
    """The whole current state of one booking (state transfer, not a diff)."""

    booking_id: str
    property_id: str
    booking_type: BookingType = "private"
    communication: Communication | None = None
    organizer: Contact | None = None
    company: str | None = None
    stays: tuple[Stay, ...] = ()
    deleted: bool = False


class BookingEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One event from one source: the booking as the PMS saw it at `occurred_at`."""

    event_id: str
    source: str
    occurred_at: datetime
    booking: Booking


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
