"""A room change, decided from the events alone: before arrival and after check-in, the grant is
updated to the new room's doors on the same reference, and never keeps the old room."""

from __future__ import annotations

from datetime import datetime

import pytest

from inlet_bridge.domain.plan import ActualGrant
from inlet_bridge.domain.reconcile import BookingInputs, decide

from .domain_cases import ARRIVAL, HOUR, NOW, SOURCE, booking, hotels, logged, stay

KEY = f"{SOURCE}:R-1001:S1"


@pytest.mark.parametrize(
    ("status", "now"),
    [("confirmed", NOW), ("checked_in", ARRIVAL + 2 * HOUR)],
    ids=["before-arrival", "after-check-in"],
)
def test_room_change_updates_the_grant_to_the_new_rooms_doors(status: str, now: datetime) -> None:
    config = hotels()
    before = [logged(1, NOW - HOUR, booking(stay(resource_id="101", status=status)))]
    first = decide(
        BookingInputs(
            source=SOURCE,
            booking_id="R-1001",
            property_id="oslo-1",
            events=tuple(before),
            actual={},
            pending={},
        ),
        config,
        now,
    )
    [granted] = first.desired.grants
    actual = {
        KEY: ActualGrant(
            grant_key=KEY,
            state="active",
            reference_id="ref-1",
            fingerprint=granted.fingerprint,
            property_id="oslo-1",
        )
    }
    moved = (*before, logged(2, NOW - HOUR / 2, booking(stay(resource_id="201", status=status))))
    second = decide(
        BookingInputs(
            source=SOURCE,
            booking_id="R-1001",
            property_id="oslo-1",
            events=moved,
            actual=actual,
            pending={},
        ),
        config,
        now,
    )
    [operation] = second.operations
    assert operation.kind == "update"
    assert operation.desired is not None
    assert operation.desired.access_points == ("L-201", "MAIN", "FLOOR-2")
    assert "L-101" not in operation.desired.access_points
