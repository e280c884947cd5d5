"""The holds of a Spectra reservation (unpaid, room not ready), decided by pure functions."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from inlet_bridge.adapters.spectra import holds
from inlet_bridge.domain.booking import Stay, StayStatus

ARRIVAL = datetime.fromisoformat("2026-11-23T15:00:00+01:00")
READY = ("Clean", "Inspected")


def stay(status: StayStatus = "confirmed", room: str | None = "101") -> Stay:
    return Stay(
        stay_id="S1",
        resource_id=room,
        arrival=ARRIVAL,
        departure=ARRIVAL + timedelta(days=2),
        status=status,
    )


@pytest.mark.parametrize(
    ("status", "room", "room_state", "before_arrival", "ready", "held"),
    [
        ("confirmed", "101", "Dirty", True, READY, True),  # held while dirty
        ("confirmed", "101", "Clean", True, READY, False),  # released when clean
        ("confirmed", "101", "inspected", True, READY, False),  # case does not matter
        ("confirmed", "101", "Clean To Be Inspected", True, READY, True),
        ("confirmed", "101", None, True, READY, True),  # unknown state: not ready
        ("confirmed", "101", "", True, READY, True),
        ("confirmed", "101", "Dirty", False, READY, False),  # from arrival on: never held
        ("checked_in", "101", "Dirty", True, READY, False),  # a guest in keeps access
        ("checked_in", "101", "Dirty", False, READY, False),
        ("checked_out", "101", "Dirty", True, READY, False),
        ("cancelled", "101", "Dirty", True, READY, False),  # a cancellation is never held
        ("no_show", "101", "Dirty", True, READY, False),
        ("confirmed", None, None, True, READY, False),  # no room: the unassigned rule applies
        ("confirmed", "101", "Dirty", True, (), False),  # the option is off
        ("confirmed", "101", "CleanToBeInspected", True, ("clean to be inspected",), False),
    ],
)
def test_room_hold(
    status: StayStatus,
    room: str | None,
    room_state: str | None,
    before_arrival: bool,
    ready: tuple[str, ...],
    held: bool,
) -> None:
    now = ARRIVAL - timedelta(minutes=1) if before_arrival else ARRIVAL
    assert (
        holds.room_hold(stay(status, room), now=now, room_state=room_state, ready_states=ready)
        is held
    )


def test_room_hold_refuses_a_naive_now() -> None:
    with pytest.raises(ValueError, match="aware"):
        holds.room_hold(stay(), now=datetime(2026, 11, 23), room_state="Dirty", ready_states=READY)


@pytest.mark.parametrize(
    ("status", "balance", "held"),
    [
        ("confirmed", Decimal("1250.00"), True),
        ("confirmed", Decimal("0.00"), False),
        ("confirmed", Decimal("-10"), False),  # overpaid
        ("confirmed", None, False),  # unknown, or the hold is off
        ("checked_in", Decimal("1250.00"), False),  # a guest in the house keeps getting updates
        ("cancelled", Decimal("1250.00"), False),
    ],
)
def test_payment_hold(status: StayStatus, balance: Decimal | None, held: bool) -> None:
    assert holds.payment_hold(stay(status), balance) is held


@pytest.mark.parametrize(
    ("status", "hold_unpaid", "asked"),
    [
        ("confirmed", True, True),
        ("confirmed", False, False),
        ("checked_in", True, False),
        ("cancelled", True, False),
    ],
)
def test_the_balance_is_asked_for_only_when_the_payment_hold_can_apply(
    status: StayStatus, hold_unpaid: bool, asked: bool
) -> None:
    assert holds.needs_balance(stay(status), hold_unpaid=hold_unpaid) is asked


@pytest.mark.parametrize(
    ("rooms", "balance", "reason"),
    [
        ({"101": "Dirty"}, Decimal("100"), "room_not_ready"),  # the room is said first
        ({"101": "Clean"}, Decimal("100"), "unpaid"),
        ({"101": "Clean"}, Decimal("0"), None),
        ({"102": "Clean"}, None, "room_not_ready"),  # its own room is unknown
        ({}, None, "room_not_ready"),
    ],
)
def test_hold_reason(
    rooms: dict[str, str | None], balance: Decimal | None, reason: str | None
) -> None:
    now = ARRIVAL - timedelta(hours=3)
    assert (
        holds.hold_reason(stay(), now=now, ready_states=READY, room_states=rooms, balance=balance)
        == reason
    )


def test_state_key_ignores_case_spaces_and_separators() -> None:
    assert holds.state_key(" Clean_To-Be Inspected ") == "cleantobeinspected"
    assert holds.state_key(None) == ""
