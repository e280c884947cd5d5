"""Which access should exist for a booking right now? `desired_access(state, property, now)`.

One grant per stay (key: source, booking_id, stay_id), for the stay's resource's access points
plus the common doors, valid from check-in to check-out by the property's rules. The send
window (24 h by default, never more than 72 h before access starts) and the time the booking
next needs a look come from the same function, so the reconciler never guesses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Literal

import msgspec

from inlet_bridge.domain.booking import Booking, Contact, grant_key
from inlet_bridge.domain.config import ALWAYS_REVOKING, HARD_MAX_WINDOW_HOURS, Property
from inlet_bridge.domain.fold import BookingState, StayState

IssueKind = Literal["no_room_assigned", "unmapped_resource", "no_contact", "door_capacity"]


class DesiredGrant(msgspec.Struct, frozen=True, kw_only=True):
    """Access one stay should have at Inlet; `fingerprint` changes whenever Inlet must be told."""

    grant_key: str
    source: str
    booking_id: str
    stay_id: str
    property_id: str
    resource_id: str
    operation: Literal["code", "unlock"]
    access_points: tuple[str, ...]
    valid_from: datetime
    valid_to: datetime
    guest_name: str | None
    email: str | None
    phone: str | None
    notify: bool
    send_after: datetime
    fingerprint: str


class StayIssue(msgspec.Struct, frozen=True, kw_only=True):
    """Something about a stay that a person should know; `escalate` when they must act."""

    stay_id: str
    kind: IssueKind
    message: str
    escalate: bool


class DesiredAccess(msgspec.Struct, frozen=True, kw_only=True):
    grants: tuple[DesiredGrant, ...]
    issues: tuple[StayIssue, ...]
    next_look_at: datetime | None


def desired_access(
    state: BookingState | None,
    prop: Property | None,
    property_id: str,
    now: datetime,
    door_usage: Mapping[str, int] | None = None,
) -> DesiredAccess:
    """The grants that should exist (already ended ones excluded) and when to look again.

    `door_usage` counts the active grants of other bookings on each door with a capacity.
    """
    if state is None or state.deleted:
        return DesiredAccess(grants=(), issues=(), next_look_at=None)
    if prop is None:
        return DesiredAccess(
            grants=(),
            issues=tuple(
                StayIssue(
                    stay_id=s.stay.stay_id,
                    kind="unmapped_resource",
                    message=f"property {property_id!r} is not configured",
                    escalate=True,
                )
                for s in state.stays
            ),
            next_look_at=None,
        )
    grants: list[DesiredGrant] = []
    issues: list[StayIssue] = []
    looks: list[datetime] = []
    used = dict(door_usage or {})
    for stay_state in state.stays:
        grant, stay_issues, look = _stay_access(state, stay_state, prop, property_id, now)
        issues.extend(stay_issues)
        if look is not None:
            looks.append(look)
        if grant is not None:
            grant, full = _within_capacity(grant, prop, used)
            issues.extend(full)
            grants.append(grant)
    future = [t for t in looks if t > now]
    return DesiredAccess(
        grants=tuple(grants), issues=tuple(issues), next_look_at=min(future) if future else None
    )


def access_over(
    state: BookingState, stay_state: StayState, prop: Property | None, now: datetime
) -> bool:
    """Whether a stay wants no access, now or later: its booking is deleted, its status
    revokes access, or its access has ended. (A stay still waiting for its send window, a room
    or a check-in is not over: access is yet to come.)"""
    if state.deleted:
        return True
    if prop is None:
        return False  # reported as a problem of the configuration, not as a decision
    if _revoked_at_once(stay_state, prop):
        return True
    return _valid_to(stay_state, prop) <= now


def _stay_access(
    state: BookingState, stay_state: StayState, prop: Property, property_id: str, now: datetime
) -> tuple[DesiredGrant | None, list[StayIssue], datetime | None]:
    stay = stay_state.stay
    booking = state.booking
    if _revoked_at_once(stay_state, prop):
        return None, [], None
    if stay.resource_id is None:
        lead = stay.arrival - timedelta(hours=prop.unassigned_room_lead_hours)
        if now >= lead and now < stay.departure:
            issue = StayIssue(
                stay_id=stay.stay_id,
                kind="no_room_assigned",
                message="no room assigned shortly before arrival; access cannot be sent",
                escalate=True,
            )
            return None, [issue], None
        return None, [], lead
    resource = prop.resources.get(stay.resource_id)
    if resource is None:
        issue = StayIssue(
            stay_id=stay.stay_id,
            kind="unmapped_resource",
            message=f"resource {stay.resource_id!r} has no access points in the configuration",
            escalate=True,
        )
        return None, [issue], None
    valid_from = _valid_from(stay_state, prop)
    if valid_from is None:  # access follows the PMS check-in, which has not happened yet
        return None, [], None
    valid_to = _valid_to(stay_state, prop)
    if valid_to <= now or valid_to <= valid_from:
        return None, [], None
    doors = resource.common_doors if resource.common_doors is not None else prop.common_doors
    access_points = tuple(dict.fromkeys((*resource.access_points, *doors)))
    contact, notify, issues = _contact(booking, stay_state, prop)
    window_hours = prop.send_window_hours
    if booking.booking_type == "group" and prop.group_window_hours is not None:
        window_hours = prop.group_window_hours
    send_after = valid_from - timedelta(hours=min(window_hours, HARD_MAX_WINDOW_HOURS))
    key = grant_key(state.source, booking.booking_id, stay.stay_id)
    email = contact.email if contact and notify else None
    phone = contact.phone if contact and notify else None
    name = contact.name if contact else None
    fingerprint = _fingerprint(
        prop.operation, access_points, valid_from, valid_to, name, email, phone
    )
    grant = DesiredGrant(
        grant_key=key,
        source=state.source,
        booking_id=booking.booking_id,
        stay_id=stay.stay_id,
        property_id=property_id,
        resource_id=stay.resource_id,
        operation=prop.operation,
        access_points=access_points,
        valid_from=valid_from,
        valid_to=valid_to,
        guest_name=name,
        email=email,
        phone=phone,
        notify=bool(email or phone),
        send_after=send_after,
        fingerprint=fingerprint,
    )
    # Look again when the window opens (to send) and when access ends (to revoke).
    look = send_after if send_after > now else valid_to
    return grant, issues, look


def _within_capacity(
    grant: DesiredGrant, prop: Property, used: dict[str, int]
) -> tuple[DesiredGrant, list[StayIssue]]:
    """Leave out shared doors that hold no more codes, and say so; count the ones kept."""
    kept: list[str] = []
    issues: list[StayIssue] = []
    for point in grant.access_points:
        door = prop.doors.get(point)
        if door is None or door.capacity is None:
            kept.append(point)
            continue
        if used.get(point, 0) >= door.capacity:
            issues.append(
                StayIssue(
                    stay_id=grant.stay_id,
                    kind="door_capacity",
                    message=f"door {point!r} holds its maximum of {door.capacity} codes;"
                    " access was created without it",
                    escalate=True,
                )
            )
            continue
        used[point] = used.get(point, 0) + 1
        kept.append(point)
    if len(kept) == len(grant.access_points):
        return grant, issues
    access_points = tuple(kept)
    fingerprint = _fingerprint(
        grant.operation,
        access_points,
        grant.valid_from,
        grant.valid_to,
        grant.guest_name,
        grant.email,
        grant.phone,
    )
    return (
        msgspec.structs.replace(grant, access_points=access_points, fingerprint=fingerprint),
        issues,
    )


def _revoked_at_once(stay_state: StayState, prop: Property) -> bool:
    """Whether the stay's status removes access at once: cancelled and no_show always do, and
    so does any other status the property lists in `revoking_statuses`.

    Under the check-out rule "pms_status" the check-out rule itself says when a checked-out
    stay's access ends (check-out + offset), so a listed "checked_out" does not cut it short.
    """
    status = stay_state.stay.status
    if status in ALWAYS_REVOKING:
        return True
    if status == "checked_out" and prop.checkout.rule == "pms_status":
        return False
    return status in prop.revoking_statuses


def _valid_from(stay_state: StayState, prop: Property) -> datetime | None:
    offset = timedelta(minutes=prop.checkin.offset_minutes)
    if prop.checkin.rule == "pms_status":
        checked_in_at = stay_state.checked_in_at
        if checked_in_at is None:
            return None
        checked_out_at = stay_state.checked_out_at
        if checked_out_at is not None and checked_out_at <= checked_in_at:
            # First seen already checked out (the check-in was never seen): the stay is over,
            # so there is no access to start.
            return None
        return checked_in_at + offset
    return stay_state.stay.arrival + offset


def _valid_to(stay_state: StayState, prop: Property) -> datetime:
    """The end of access: the booked departure, or an earlier PMS check-out, plus the offset.

    A check-out recorded after the departure never extends access (a late check-out is a
    departure change): otherwise a check-out after access had ended would open it again.
    """
    offset = timedelta(minutes=prop.checkout.offset_minutes)
    end = stay_state.stay.departure
    if prop.checkout.rule == "pms_status" and stay_state.checked_out_at is not None:
        end = min(end, stay_state.checked_out_at)
    return end + offset


def _contact(
    booking: Booking, stay_state: StayState, prop: Property
) -> tuple[Contact | None, bool, list[StayIssue]]:
    """Who Inlet should message for this stay, and whether it should message at all."""
    communication = booking.communication or prop.communication.for_type(booking.booking_type)
    guests = stay_state.stay.guests
    first_guest = guests[0] if guests else None
    if communication == "none":
        return first_guest or booking.organizer, False, []
    if communication == "organizer":
        contact = booking.organizer
    else:
        contact = next((g for g in guests if g.email or g.phone), first_guest)
    if contact is None or not (contact.email or contact.phone):
        issue = StayIssue(
            stay_id=stay_state.stay.stay_id,
            kind="no_contact",
            message=f"no {communication} contact details: access is created but Inlet sends"
            " no message; hand the code over another way",
            escalate=False,
        )
        return contact or first_guest, False, [issue]
    return contact, True, []


def _fingerprint(
    operation: str,
    access_points: tuple[str, ...],
    valid_from: datetime,
    valid_to: datetime,
    name: str | None,
    email: str | None,
    phone: str | None,
) -> str:
    # The same instant written with another offset is the same access: compare in UTC.
    material = msgspec.json.encode(
        [
            operation,
            access_points,
            valid_from.astimezone(UTC),
            valid_to.astimezone(UTC),
            name,
            email,
            phone,
        ]
    )
    return hashlib.sha256(material).hexdigest()[:32]
