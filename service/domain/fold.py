"""What is a booking's current state? The fold of its events, a pure function.

Events carry the whole booking (state transfer), so the latest by `occurred_at` wins, ties
broken by log position; a deletion is just a state, so a later event can revive the booking.
The fold also remembers when each stay was first seen checked in or out, for the properties
whose access follows the PMS status.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec

from service.domain.booking import Booking, BookingEvent, Stay


class LoggedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event as the log holds it: its global position and the event itself."""

    position: int
    received_at: datetime
    event: BookingEvent


class StayState(msgspec.Struct, frozen=True, kw_only=True):
    stay: Stay
    checked_in_at: datetime | None = None
    checked_out_at: datetime | None = None


class BookingState(msgspec.Struct, frozen=True, kw_only=True):
    source: str
    booking: Booking
    stays: tuple[StayState, ...]
    last_position: int
    occurred_at: datetime

    @property
    def deleted(self) -> bool:
        return self.booking.deleted


def fold(events: Sequence[LoggedEvent]) -> BookingState | None:
    """The booking as of its latest event, or None when it has no events."""
    if not events:
        return None
    ordered = sorted(events, key=lambda e: (e.event.occurred_at, e.position))
    checked_in: dict[str, datetime] = {}
    checked_out: dict[str, datetime] = {}
    for logged in ordered:
        for stay in logged.event.booking.stays:
            if stay.status in ("checked_in", "checked_out"):
                checked_in.setdefault(stay.stay_id, logged.event.occurred_at)
            else:
                checked_in.pop(stay.stay_id, None)  # a check-in undone in the PMS
            if stay.status == "checked_out":
                checked_out.setdefault(stay.stay_id, logged.event.occurred_at)
            else:
                checked_out.pop(stay.stay_id, None)
    latest = ordered[-1]
    booking = latest.event.booking
    return BookingState(
        source=latest.event.source,
        booking=booking,
        stays=tuple(
            StayState(
                stay=stay,
                checked_in_at=checked_in.get(stay.stay_id),
                checked_out_at=checked_out.get(stay.stay_id),
            )
            for stay in booking.stays
        ),
        last_position=max(e.position for e in events),
        occurred_at=latest.event.occurred_at,
    )
