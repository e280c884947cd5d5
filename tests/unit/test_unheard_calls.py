"""When Inlet carried out an UpdateAccess or RevokeAccess whose answer never came, and the booking
changes back before the call is retried, does Inlet still end up holding what should exist?

Tables of histories found by the property-based test (test_convergence_properties.py), played on
the same model world. Each: a stay granted in Oslo; a second version that changes or removes its
access, whose call Inlet carries out but whose answer is lost (or whose worker dies); a third
version that undoes the change, delivered before the call is retried. The plan then withdraws the
queued call (`cancel`, or a newer call superseding it) or leaves the escalated one for a person,
and forgets that Inlet may already have done it: the service reports the old grant as active
while Inlet has revoked it (a dead code reported as working), holds the undone change's doors
(a stale code), or updates a revoked grant, is refused with 404 and escalates for ever.

GrantAccess calls are remembered across a withdrawal by their history (`GrantCall`,
`recovery_request`, `fingerprint_after_grant`); updates and revocations by their attempts
(`PendingCall.attempts`): a RevokeAccess that may have happened is sent again until Inlet
confirms it, an UpdateAccess that may have changed the grant leaves it unverified when it is
withdrawn, and either one that gives up records the doubt on the grant (`doubt_after_give_up`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

import pytest

from inlet_bridge.domain.booking import Booking, BookingEvent, Stay
from tests.unit.access_cases import (
    BASE,
    BERGEN,
    BOOKING_ID,
    GUESTS,
    HOUR,
    OSLO,
    SOURCE,
    START,
    Scenario,
    Step,
    converge,
    play,
    world_for,
)
from tests.unit.access_model import OK, Fault

MINUTE = timedelta(minutes=1)
LOST = Fault("lost", None)
CRASH = Fault("crash")
TIMEOUT = Fault("temporary", None)  # no answer, and Inlet did nothing


def version(
    index: int, *, status: str = "confirmed", room: str = "101", property_id: str = OSLO
) -> BookingEvent:
    """A one-stay booking arriving in four hours, as it was `index` minutes before the story."""
    stay = Stay(
        stay_id="S1",
        resource_id=room,
        arrival=BASE - 16 * HOUR,
        departure=BASE + 21 * HOUR,
        status=status,  # type: ignore[arg-type]
        guests=(GUESTS[0],),
    )
    return BookingEvent(
        event_id=f"evt-{index}",
        source=SOURCE,
        occurred_at=START - (10 - index) * MINUTE,
        booking=Booking(booking_id=BOOKING_ID, property_id=property_id, stays=(stay,)),
    )


def history(changed: BookingEvent, undone: BookingEvent, *faults: Fault) -> Scenario:
    """Granted; changed, and the change's call meets `faults` (one attempt each, five minutes
    apart); the change undone before anything else runs."""
    steps = [
        Step(deliver=True, reconcile=True, faults=(OK,), operator=False, advance=MINUTE),
        Step(deliver=True, reconcile=True, faults=faults[:1], operator=False, advance=5 * MINUTE),
        *(
            Step(deliver=False, reconcile=False, faults=(f,), operator=False, advance=5 * MINUTE)
            for f in faults[1:]
        ),
        Step(deliver=True, reconcile=True, faults=(), operator=False, advance=timedelta(0)),
    ]
    return Scenario(
        versions=(version(1), changed, undone),
        deliveries=(0, 1, 2),
        refuse_ahead=True,
        steps=tuple(steps),
    )


CASES = [
    pytest.param(
        version(2, status="cancelled"), version(3), (LOST,), id="revocation-lost-then-reinstated"
    ),
    pytest.param(
        version(2, status="cancelled"),
        version(3),
        (CRASH,),
        id="revocation-by-a-worker-that-died-then-reinstated",
    ),
    pytest.param(
        version(2, status="cancelled"),
        version(3, room="102"),
        (LOST,),
        id="revocation-lost-then-reinstated-in-another-room",
    ),
    pytest.param(
        version(2, status="cancelled"),
        version(3),
        (LOST, *(TIMEOUT,) * 12),
        id="revocation-lost-given-up-then-reinstated",
    ),
    pytest.param(version(2, room="102"), version(3), (LOST,), id="room-change-lost-then-undone"),
    pytest.param(
        version(2, property_id=BERGEN, status="checked_in"),
        version(3),
        (LOST,),
        id="move-lost-then-moved-back",
    ),
]


@pytest.mark.parametrize("reading", ["new", "revoked"])
@pytest.mark.parametrize(("changed", "undone", "faults"), CASES)
def test_an_unheard_call_is_not_forgotten_when_its_change_is_undone(
    reading: Literal["new", "revoked"],
    changed: BookingEvent,
    undone: BookingEvent,
    faults: tuple[Fault, ...],
) -> None:
    scenario = history(changed, undone, *faults)
    world = world_for(scenario, reading)
    play(world, scenario)

    converge(world)


@pytest.mark.parametrize("reading", ["new", "revoked"])
@pytest.mark.parametrize(("changed", "undone", "faults"), CASES)
def test_the_same_histories_converge_when_inlet_did_nothing(
    reading: Literal["new", "revoked"],
    changed: BookingEvent,
    undone: BookingEvent,
    faults: tuple[Fault, ...],
) -> None:
    """The control: the same timing, but every unheard attempt was one Inlet never carried out
    (a timeout before it acted)."""
    quiet = tuple(TIMEOUT if f in (LOST, CRASH) else f for f in faults)
    scenario = history(changed, undone, *quiet)
    world = world_for(scenario, reading)
    play(world, scenario)

    converge(world)
    assert any(c.operation != "grant" and c.attempts for c in world.calls)
