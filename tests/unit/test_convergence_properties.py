"""Does any history of a booking end with Inlet holding exactly the access it should, once?

Property-based (hypothesis): a booking of one to three stays, seen as two to seven versions, each
a change or two of the one before (status, room: mapped, unmapped or none, dates, guest,
property: one of two Inlet accounts or an unconfigured one, stays added or removed, deletion, or
undoing the last change), delivered in order or not, with repeats, some stamped a day ahead of
their receipt. Meanwhile the reconciler runs or not, calls run and meet any outcome (success, a
temporary or permanent failure, a lost answer, a worker dying after Inlet acted), operators
retry, and the clock moves. Each example draws from a few kinds of change, fault and clock step
only (swarm testing), so some go deep into one kind of trouble. Then the world heals: every call
succeeds and operators retry every escalation until nothing is planned, and again once every
send window is open. Inlet must then hold, for each stay, one live grant at the desired
property's account with the desired doors, times and contact, and nothing for a stay that should
have none; the service must believe what Inlet holds; planning again must change nothing. At no
step may a stay have two live grants at Inlet, or a grant two pending calls.

The world is `access_model.py` and `inlet_model.py`, test doubles of the store, the workers and
Inlet; every decision comes from the real domain functions; the judge is `access_cases.py`. Both
readings of Inlet's idempotency after a revocation are played. The budget is the hypothesis
profile in tests/conftest.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

import pytest
from hypothesis import given, note
from hypothesis import strategies as st
from msgspec.structs import replace

from inlet_bridge.domain.booking import Booking, BookingEvent, Stay
from tests.unit.access_cases import (
    BASE,
    BERGEN,
    BOOKING_ID,
    GUESTS,
    HOUR,
    NOWHERE,
    OSLO,
    SOURCE,
    START,
    STAY_IDS,
    Scenario,
    Step,
    converge,
    play,
    world_for,
)
from tests.unit.access_model import OK, Fault

# "999" is mapped nowhere; "102" only in Oslo, "201" only in Bergen; None: no room assigned yet.
RESOURCES = ("101",) * 5 + ("102", "201", "999", None)
STATUSES = ("confirmed",) * 4 + ("checked_in",) * 3 + ("checked_out", "cancelled", "no_show")

FAULTS = (
    Fault("temporary", None),  # timeout: Inlet did nothing, but the service cannot know
    Fault("temporary", 429),
    Fault("temporary", 503),
    Fault("permanent", 400),
    Fault("permanent", 200),  # 200 with success false
    Fault("lost", None),
    Fault("lost", 504),
    Fault("crash"),
)
ADVANCES = tuple(timedelta(seconds=s) for s in (0, 10, 60, 300, 1800, 3 * 3600, 12 * 3600))


@st.composite
def stays(draw: st.DrawFn, stay_id: str, *, first: bool = False) -> Stay:
    """A stay; in a booking's first version, one that mostly wants access (later versions
    change it: `next_versions`)."""
    arrival = BASE + draw(st.sampled_from((-1, 0, 0) if first else (-1, 0, 1))) * 24 * HOUR
    arrival += draw(st.sampled_from((0, 0, 3))) * HOUR
    nights = draw(st.sampled_from((1, 1, 2)))
    return Stay(
        stay_id=stay_id,
        resource_id=draw(st.sampled_from(("101", "101", "102", "201") if first else RESOURCES)),
        arrival=arrival,
        departure=arrival + nights * 24 * HOUR - 3 * HOUR,
        status=draw(st.sampled_from(("confirmed", "checked_in") if first else STATUSES)),
        guests=(draw(st.sampled_from(GUESTS)),),
    )


PROPERTIES = (OSLO,) * 4 + (BERGEN,) * 3 + (NOWHERE,)
CHANGES = ("status", "room", "dates", "guest", "property", "stays", "deleted")


@st.composite
def first_versions(draw: st.DrawFn) -> Booking:
    stay_ids = draw(st.lists(st.sampled_from(STAY_IDS), min_size=1, max_size=3, unique=True))
    return Booking(
        booking_id=BOOKING_ID,
        property_id=draw(st.sampled_from((OSLO, OSLO, BERGEN))),
        stays=tuple(draw(stays(s, first=True)) for s in sorted(stay_ids)),
    )


@st.composite
def next_versions(draw: st.DrawFn, history: list[Booking], palette: tuple[str, ...]) -> Booking:
    """The booking after one or two changes a PMS user makes, of the kinds in `palette` (a later
    version is usually close to the one before; undoing a change is what finds lost answers)."""
    booking = history[-1]
    for change in draw(st.lists(st.sampled_from(palette), min_size=1, max_size=2)):
        if change == "undo":
            booking = history[-2] if len(history) > 1 else booking
        elif change == "property":
            booking = replace(booking, property_id=draw(st.sampled_from(PROPERTIES)))
        elif change == "deleted":
            booking = replace(booking, deleted=not booking.deleted)
        elif change == "stays":
            booking = replace(booking, stays=draw(_stays_added_or_removed(booking.stays)))
        else:
            index = draw(st.integers(0, len(booking.stays) - 1))
            stay = booking.stays[index]
            if change == "status":
                stay = replace(stay, status=draw(st.sampled_from(STATUSES)))
            elif change == "room":
                stay = replace(stay, resource_id=draw(st.sampled_from(RESOURCES)))
            elif change == "guest":
                stay = replace(stay, guests=(draw(st.sampled_from(GUESTS)),))
            else:
                shift = draw(st.sampled_from((-24, -3, 3, 24))) * HOUR
                stay = replace(stay, arrival=stay.arrival + shift)
                if stay.arrival >= stay.departure or draw(st.booleans()):
                    stay = replace(stay, departure=stay.departure + shift)
            booking = replace(
                booking, stays=(*booking.stays[:index], stay, *booking.stays[index + 1 :])
            )
    return booking


@st.composite
def _stays_added_or_removed(draw: st.DrawFn, current: tuple[Stay, ...]) -> tuple[Stay, ...]:
    missing = [s for s in STAY_IDS if s not in {stay.stay_id for stay in current}]
    if missing and (len(current) == 1 or draw(st.booleans())):
        added = draw(stays(draw(st.sampled_from(missing))))
        return tuple(sorted((*current, added), key=lambda s: s.stay_id))
    dropped = draw(st.integers(0, len(current) - 1))
    return current[:dropped] + current[dropped + 1 :]


def palettes(choices: tuple[Any, ...], most: int) -> st.SearchStrategy[tuple[Any, ...]]:
    """A few of the choices, for one example to draw from (swarm testing: an example that only
    loses answers, or only moves between properties, goes deeper than one that does a bit of all)."""
    return st.lists(st.sampled_from(choices), min_size=1, max_size=most, unique=True).map(tuple)


@st.composite
def stories(draw: st.DrawFn) -> tuple[BookingEvent, ...]:
    """One to five versions of a booking, each stamped a little after the one before (and now
    and then by a PMS whose clock runs a day ahead)."""
    palette = ("undo", *draw(palettes(CHANGES, 2)))
    bookings = [draw(first_versions())]
    for _ in range(draw(st.integers(1, 6))):
        bookings.append(draw(next_versions(bookings, palette)))
    at = START - timedelta(minutes=draw(st.integers(60, 24 * 60)))
    events = []
    for index, booking in enumerate(bookings, start=1):
        at += timedelta(minutes=draw(st.sampled_from((1, 10, 30, 120))))
        ahead = draw(st.sampled_from((0,) * 11 + (24 * 60,)))
        events.append(
            BookingEvent(
                event_id=f"evt-{index}",
                source=SOURCE,
                occurred_at=at + timedelta(minutes=ahead),
                booking=booking,
            )
        )
    return tuple(events)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    events = draw(stories())
    count = len(events)
    # As they happened, or in any order.
    order = list(range(count)) if draw(st.booleans()) else list(draw(st.permutations(range(count))))
    for repeat in draw(st.lists(st.integers(0, count - 1), max_size=2)):
        order.insert(draw(st.integers(0, len(order))), repeat)
    faults = (OK, *draw(palettes(FAULTS, 2)))
    steps = st.builds(
        Step,
        deliver=st.sampled_from((True, True, False)),
        reconcile=st.sampled_from((True, True, True, False)),
        faults=st.lists(st.sampled_from(faults), min_size=1, max_size=4).map(tuple),
        operator=st.sampled_from((False,) * 5 + (True,)),
        advance=st.sampled_from(draw(palettes(ADVANCES, 3))),
    )
    return Scenario(
        versions=events,
        deliveries=tuple(order),
        refuse_ahead=draw(st.sampled_from((True, True, False))),
        steps=tuple(draw(st.lists(steps, min_size=6, max_size=30))),
    )


@pytest.mark.parametrize("reading", ["new", "revoked"])
@given(scenario=scenarios())
def test_any_history_converges_to_the_desired_access_once(
    reading: Literal["new", "revoked"], scenario: Scenario
) -> None:
    world = world_for(scenario, reading)
    try:
        play(world, scenario)
        converge(world)
    finally:
        note("\n".join(world.trace))
