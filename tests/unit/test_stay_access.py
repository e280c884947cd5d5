"""What each stay of a booking has, as the access API and the console say it: table cases for
`stays_access` (the grant state with the doors, times and code that go with it)."""

from __future__ import annotations

from datetime import datetime

import msgspec
import pytest

from inlet_bridge.domain.access import desired_access
from inlet_bridge.domain.fold import BookingState
from inlet_bridge.domain.plan import PendingCall
from inlet_bridge.domain.stay_access import HeldGrant, OpenEscalation, StayAccess, stays_access
from tests.unit.domain_cases import (
    ARRIVAL,
    BOOKING_ID,
    DEPARTURE,
    HOUR,
    NOW,
    SOURCE,
    booking,
    prop,
    state_of,
    stay,
)

KEY = f"{SOURCE}:{BOOKING_ID}:S1"
HELD = HeldGrant(
    grant_key=KEY,
    stay_id="S1",
    property_id="oslo-1",
    generation=1,
    external_id=KEY,
    state="active",
    reference_id="ref-1",
    code="1234",
    code_formatted="#1234*",
    link="https://l",
    access_points=("L-101", "MAIN", "NIGHT"),
    valid_from=ARRIVAL,
    valid_to=DEPARTURE,
    message="Access granted",
    updated_at=NOW - HOUR,
)
REVOKED = msgspec.structs.replace(HELD, state="revoked", message="Access revoked")
CONFIRMED = state_of(booking(stay("S1")))
CANCELLED = state_of(booking(stay("S1")), booking(stay("S1", status="cancelled")))
MOVED = state_of(booking(stay("S1")), booking(stay("S1", resource_id="102")))


def unsettled(operation: str, status: str = "queued") -> dict[str, PendingCall]:
    return {
        KEY: PendingCall(
            call_id=9,
            grant_key=KEY,
            operation=operation,  # type: ignore[arg-type]
            fingerprint="",
            status=status,  # type: ignore[arg-type]
        )
    }


def one(
    state: BookingState | None,
    grants: tuple[HeldGrant, ...] = (),
    calls: dict[str, PendingCall] | None = None,
    escalations: tuple[OpenEscalation, ...] = (),
    now: datetime = NOW,
) -> StayAccess:
    (only,) = stays_access(
        source=SOURCE,
        booking_id=BOOKING_ID,
        state=state,
        desired=desired_access(state, prop(), "oslo-1", now),
        grants=grants,
        unsettled=calls or {},
        escalations=escalations,
        prop=prop(),
        now=now,
    )
    return only


def test_a_stay_not_sent_yet_is_pending_with_when_it_will_be() -> None:
    early = ARRIVAL - 48 * HOUR
    access = one(CONFIRMED, now=early)
    assert (access.state, access.code) == ("pending", None)
    assert access.access_points == ("L-101", "MAIN", "NIGHT")
    assert access.send_after == ARRIVAL - 24 * HOUR


def test_an_active_grant_shows_its_code_doors_and_times() -> None:
    access = one(CONFIRMED, (HELD,))
    assert (access.state, access.code, access.code_formatted) == ("active", "1234", "#1234*")
    assert (access.valid_from, access.valid_to) == (ARRIVAL, DEPARTURE)
    assert access.external_id == KEY


def test_a_failed_revocation_shows_what_may_still_open() -> None:
    failed = OpenEscalation(grant_key=KEY, operation="revoke", reason="max_attempts", message="x")
    access = one(CANCELLED, (HELD,), unsettled("revoke", "escalated"), (failed,))
    assert access.state == "revoke_failed"
    assert (access.code, access.access_points) == ("1234", ("L-101", "MAIN", "NIGHT"))
    assert (access.escalation, access.message) == ("revoke: max_attempts", "x")


def test_a_revoked_grant_shows_no_code() -> None:
    access = one(CANCELLED, (REVOKED,))
    assert (access.state, access.code, access.link) == ("revoked", None, None)


def test_an_update_under_way_keeps_showing_the_doors_inlet_holds() -> None:
    """A room change queued: Inlet still holds the old room's doors until the update succeeds."""
    access = one(MOVED, (HELD,), unsettled("update"))
    assert access.state == "updating"
    assert access.access_points == ("L-101", "MAIN", "NIGHT")
    assert access.resource_id == "102"


@pytest.mark.parametrize(
    ("operation", "status", "expected"),
    [
        ("grant", "queued", "granting"),
        ("grant", "in_flight", "granting"),
        ("grant", "escalated", "grant_failed"),
    ],
)
def test_a_grant_on_its_way_or_failed(operation: str, status: str, expected: str) -> None:
    access = one(CONFIRMED, (), unsettled(operation, status))
    assert (access.state, access.code) == (expected, None)


def test_a_stay_cancelled_before_anything_was_sent_has_none() -> None:
    assert one(CANCELLED).state == "none"


def test_a_grant_of_a_stay_gone_from_the_booking_is_still_listed() -> None:
    other = state_of(booking(stay("S2")))
    stays = stays_access(
        source=SOURCE,
        booking_id=BOOKING_ID,
        state=other,
        desired=desired_access(other, prop(), "oslo-1", NOW),
        grants=(HELD,),
        unsettled={},
        escalations=(),
        prop=prop(),
        now=NOW,
    )
    assert [(s.stay_id, s.state) for s in stays] == [("S2", "pending"), ("S1", "active")]
