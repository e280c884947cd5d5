"""Given everything known about one booking, what must be written? The reconciler's pure step.

The store loads a booking's events, actual grants, unsettled calls and the GrantAccess calls
since each grant's last confirmed revocation; this module folds, computes the desired access,
plans, and says when to look again. Replaying the same inputs gives the same decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import msgspec

from inlet_bridge.domain.access import DesiredAccess, desired_access
from inlet_bridge.domain.config import HotelsConfig
from inlet_bridge.domain.fold import BookingState, LoggedEvent, fold
from inlet_bridge.domain.plan import ActualGrant, GrantCall, Operation, PendingCall, plan


class BookingInputs(msgspec.Struct, frozen=True, kw_only=True):
    source: str
    booking_id: str
    property_id: str
    events: tuple[LoggedEvent, ...]
    actual: Mapping[str, ActualGrant]
    pending: Mapping[str, PendingCall]
    door_usage: Mapping[str, int] = {}
    sent: Mapping[str, tuple[GrantCall, ...]] = {}


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    state: BookingState | None
    desired: DesiredAccess
    operations: tuple[Operation, ...]
    next_look_at: datetime | None


def decide(inputs: BookingInputs, hotels: HotelsConfig, now: datetime) -> Decision:
    state = fold(inputs.events, hotels.events.max_clock_skew)
    property_id = state.booking.property_id if state else inputs.property_id
    desired = desired_access(
        state, hotels.properties.get(property_id), property_id, now, inputs.door_usage
    )
    operations = plan(
        {g.grant_key: g for g in desired.grants}, inputs.actual, inputs.pending, now, inputs.sent
    )
    return Decision(
        state=state,
        desired=desired,
        operations=tuple(operations),
        next_look_at=desired.next_look_at,
    )
