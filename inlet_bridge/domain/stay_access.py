"""What access does each stay of a booking have, in the words the PMS and the operators read?

`stays_access` puts together, per stay, what should exist (the desired access), what Inlet holds
(the grant, with its property and generation), the call not yet settled and an open escalation,
and says the stay's grant state with the doors, times, code and link that go with it: what Inlet
holds, or before it holds anything, what is wanted; in `revoke_failed` and `update_failed`, what
may still work. A code is shown only in a state in which it may open a door. The access API and
the operator console both answer from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import msgspec

from inlet_bridge.domain.access import DesiredAccess, access_over
from inlet_bridge.domain.booking import grant_key
from inlet_bridge.domain.config import Property
from inlet_bridge.domain.fold import BookingState
from inlet_bridge.domain.plan import ActualGrant, PendingCall
from inlet_bridge.domain.states import MAY_OPEN, GrantState, grant_state


class HeldGrant(msgspec.Struct, frozen=True, kw_only=True):
    """What Inlet holds for a grant, as last confirmed: where it was made (property), which
    generation (externalId), its reference, code and link, doors and times."""

    grant_key: str
    stay_id: str
    property_id: str
    generation: int
    external_id: str
    state: str
    reference_id: str | None
    code: str | None
    code_formatted: str | None
    link: str | None
    access_points: tuple[str, ...]
    valid_from: datetime | None
    valid_to: datetime | None
    message: str | None
    updated_at: datetime

    def as_actual(self) -> ActualGrant:
        """The grant as the plan and the grant states see it."""
        return ActualGrant(
            grant_key=self.grant_key,
            state="active" if self.state == "active" else "revoked",
            reference_id=self.reference_id,
            fingerprint="",
            property_id=self.property_id,
            generation=self.generation,
        )


class OpenEscalation(msgspec.Struct, frozen=True, kw_only=True):
    """An escalation still waiting for a person: of a call or a delivery (a stay problem with
    neither, such as a full shared door, is listed among the stay's problems instead)."""

    grant_key: str
    operation: str | None
    reason: str
    message: str | None


class StayAccess(msgspec.Struct, frozen=True, kw_only=True):
    """One stay's access. `state` is a grant state (inlet_bridge/domain/states.py)."""

    stay_id: str
    grant_key: str
    state: GrantState
    resource_id: str | None = None
    property_id: str | None = None
    external_id: str | None = None
    access_points: tuple[str, ...] = ()
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    send_after: datetime | None = None
    reference_id: str | None = None
    code: str | None = None
    code_formatted: str | None = None
    link: str | None = None
    message: str | None = None
    escalation: str | None = None  # an open escalation: "operation: reason"
    problems: tuple[str, ...] = ()


def stays_access(
    *,
    source: str,
    booking_id: str,
    state: BookingState | None,
    desired: DesiredAccess,
    grants: Sequence[HeldGrant],
    unsettled: Mapping[str, PendingCall],
    escalations: Sequence[OpenEscalation],
    prop: Property | None,
    now: datetime,
) -> tuple[StayAccess, ...]:
    """Every stay of the booking (and any stay Inlet still holds a grant for), in order."""
    wanted_grants = {g.stay_id: g for g in desired.grants}
    held = {g.stay_id: g for g in grants}
    escalated = {e.grant_key: e for e in escalations}
    issues: dict[str, list[str]] = {}
    for issue in desired.issues:
        issues.setdefault(issue.stay_id, []).append(f"{issue.kind}: {issue.message}")
    over: set[str] = set()
    stay_ids: list[str] = []
    if state is not None:
        over = {s.stay.stay_id for s in state.stays if access_over(state, s, prop, now)}
        stay_ids = [s.stay.stay_id for s in state.stays]
    stay_ids += [s for s in held if s not in stay_ids]
    stays = []
    for stay_id in stay_ids:
        grant = held.get(stay_id)
        want = wanted_grants.get(stay_id)
        key = grant.grant_key if grant else grant_key(source, booking_id, stay_id)
        wanted = want is not None or (stay_id not in over and state is not None)
        access_state = grant_state(
            wanted=wanted,
            held=grant.as_actual() if grant else None,
            call=unsettled.get(key),
        )
        failure = escalated.get(key)
        shown = grant if grant is not None and (grant.state == "active" or want is None) else None
        may_open = grant is not None and access_state in MAY_OPEN
        stays.append(
            StayAccess(
                stay_id=stay_id,
                grant_key=key,
                state=access_state,
                resource_id=want.resource_id if want else None,
                property_id=grant.property_id if grant else (want.property_id if want else None),
                external_id=grant.external_id if grant else None,
                access_points=shown.access_points
                if shown
                else (want.access_points if want else ()),
                valid_from=shown.valid_from if shown else (want.valid_from if want else None),
                valid_to=shown.valid_to if shown else (want.valid_to if want else None),
                send_after=want.send_after if want and access_state == "pending" else None,
                reference_id=grant.reference_id if grant else None,
                code=grant.code if grant and may_open else None,
                code_formatted=grant.code_formatted if grant and may_open else None,
                link=grant.link if grant and may_open else None,
                message=failure.message if failure else (grant.message if grant else None),
                escalation=f"{failure.operation}: {failure.reason}" if failure else None,
                problems=tuple(issues.get(stay_id, ())),
            )
        )
    return tuple(stays)
