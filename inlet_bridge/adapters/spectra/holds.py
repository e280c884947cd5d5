"""Should a Spectra reservation's access wait? The holds, decided by pure functions.

Inlet's own Spectra link can hold a stay's access until its bill is paid or its room is ready.
The poller asks Spectra for the facts (the balance, the housekeeping state of each room) and
these functions decide; a held reservation is not appended (its earlier state, if any, stands)
and is read again on every poll until it is released.

- **Unpaid** (`hold_unpaid`): a stay not yet checked in whose balance is above zero.
- **Room not ready** (`hold_until_room_status`): a stay not yet checked in, before its booked
  arrival, whose room is not in one of the listed housekeeping states (`Clean`, `Inspected`).
  From the booked arrival on the guest may be in the house (a hotel that never checks in in the
  PMS, a late housekeeping update), so the room's state never locks a guest out; a checked-in
  guest keeps access whatever the room's state (an occupied room is often `Dirty`). A stay with
  no room assigned is not held: the unassigned-room rule of `domain/access.py` applies to it.

A hold never takes back a code already sent: it holds the reservation's new state, so a stay
granted while its room was clean keeps that grant if the room is marked dirty again before
arrival (the guest is not messaged twice); its later changes wait for the room.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Literal

from inlet_bridge.domain.booking import Stay

HoldReason = Literal["unpaid", "room_not_ready"]


def state_key(value: str | None) -> str:
    """A housekeeping state compared without regard to case, spaces, `_` or `-`."""
    return (value or "").strip().lower().replace(" ", "").replace("_", "").replace("-", "")


def room_ready(state: str | None, ready_states: Collection[str]) -> bool:
    """Whether a room's housekeeping state is one of `ready_states` (unknown: not ready)."""
    key = state_key(state)
    return bool(key) and key in {state_key(s) for s in ready_states}


def room_hold(
    stay: Stay, *, now: datetime, room_state: str | None, ready_states: Collection[str]
) -> bool:
    """Whether the stay's access waits for its room (see the module docstring)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not ready_states or stay.status != "confirmed" or stay.resource_id is None:
        return False
    if now >= stay.arrival:
        return False
    return not room_ready(room_state, ready_states)


def payment_hold(stay: Stay, balance: Decimal | None) -> bool:
    """Whether the stay's access waits for payment: not checked in, something left to pay.

    A guest in the house keeps getting updates (a room change must not wait for the bill).
    """
    return stay.status == "confirmed" and balance is not None and balance > 0


def needs_balance(stay: Stay, *, hold_unpaid: bool) -> bool:
    """Whether the payment hold could apply, so the balance is worth asking Spectra for."""
    return hold_unpaid and stay.status == "confirmed"


def hold_reason(
    stay: Stay,
    *,
    now: datetime,
    ready_states: Collection[str],
    room_states: Mapping[str, str | None],
    balance: Decimal | None,
) -> HoldReason | None:
    """Why the stay's access waits, or None. `room_states`: room number -> housekeeping state;
    `balance`: None when the payment hold is off (or the balance is unknown)."""
    room_state = room_states.get(stay.resource_id) if stay.resource_id is not None else None
    if room_hold(stay, now=now, room_state=room_state, ready_states=ready_states):
        return "room_not_ready"
    if payment_hold(stay, balance):
        return "unpaid"
    return None
