"""What is a booking's current state? The fold of its events, a pure function.

Events carry the whole booking (state transfer), so the latest by `occurred_at` wins, ties
broken by log position; a deletion is just a state, so a later event can revive the booking.
The fold also remembers when each stay was first seen checked in or out, for the properties
whose access follows the PMS status.

Time from a PMS is bounded: ingest refuses an event whose `occurred_at` is more than the
allowed clock skew ahead of its receipt, and the fold never lets an event count as later than
its receipt plus that skew (rows stored before the rule, or while it allowed more, included),
so a PMS clock running ahead can never outrank a later cancellation.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import msgspec

from inlet_bridge.domain.booking import Booking, BookingEvent, Stay

# How far ahead of its receipt an event's `occurred_at` may be (the default of [events]).
DEFAULT_MAX_CLOCK_SKEW = timedelta(minutes=5)


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


def occurred(logged: LoggedEvent, max_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW) -> datetime:
    """When an event counts as having happened: its `occurred_at`, but never later than its
    receipt plus the allowed clock skew."""
    return min(logged.event.occurred_at, logged.received_at + max_skew)


def fold(
    events: Sequence[LoggedEvent], max_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW
) -> BookingState | None:
    """The booking as of its latest event, or None when it has no events."""
    if not events:
        return None
    ordered = sorted(events, key=lambda e: (occurred(e, max_skew), e.position))
    checked_in: dict[str, datetime] = {}
    checked_out: dict[str, datetime] = {}
    for logged in ordered:
        at = occurred(logged, max_skew)
        for stay in logged.event.booking.stays:
            if stay.status in ("checked_in", "checked_out"):
                checked_in.setdefault(stay.stay_id, at)
            else:
                checked_in.pop(stay.stay_id, None)  # a check-in undone in the PMS
            if stay.status == "checked_out":
                checked_out.setdefault(stay.stay_id, at)
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
        occurred_at=occurred(latest, max_skew),
    )
