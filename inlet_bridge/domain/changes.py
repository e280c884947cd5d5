"""What do the PMS and its sinks hear when access changes? The "access changed" record.

One record per change, written in the same transaction as the change, delivered to every sink of
the booking's source: a PMS's webhook receiver (Standard Webhooks), or the Spectra write-back.
One mechanism for both.

The record says the grant's state the way the PMS can act on it: `access.granted`,
`access.updated` and `access.revoked` after a success; `access.grant_failed` (no code works),
`access.update_failed` (the previous code, doors and times still work, unchanged) and
`access.revoke_failed` (the code may still open the doors it names, until the time it names)
after a call gave up. A PMS is never told access is gone while a code may still work.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from inlet_bridge.domain.access import DesiredGrant
from inlet_bridge.domain.config import HotelsConfig
from inlet_bridge.domain.vocab import CallOperation

ChangeKind = Literal[
    "access.granted",
    "access.updated",
    "access.revoked",
    "access.grant_failed",
    "access.update_failed",
    "access.revoke_failed",
    "access.failed",  # written before grant states existed; read back, never written
]
ChangeState = Literal[
    "active",
    "revoked",
    "grant_failed",
    "update_failed",
    "revoke_failed",
    "escalated",  # written before grant states existed; read back, never written
]


class AccessChangeData(msgspec.Struct, frozen=True, kw_only=True):
    """The access of one stay after the change (personal data: codes and links)."""

    source: str
    booking_id: str
    stay_id: str
    grant_key: str
    property_id: str
    state: ChangeState
    access_points: tuple[str, ...] = ()
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    reference_id: str | None = None
    code: str | None = None
    code_formatted: str | None = None
    link: str | None = None
    previous_code_formatted: str | None = None  # set when this change replaced a code
    code_is_new: bool = False  # this change gave the stay a code it did not have before
    message: str | None = None  # Inlet's last message
    reason: str | None = None  # why the call failed (the *_failed kinds)


class AccessChange(msgspec.Struct, frozen=True, kw_only=True):
    """The webhook payload, in the Standard Webhooks shape: type, timestamp, data."""

    type: ChangeKind
    timestamp: datetime
    data: AccessChangeData


def sinks_for(source: str, hotels: HotelsConfig) -> list[str]:
    """Where changes of this source's bookings go: `webhook:<source>`, `spectra:<connection>`,
    `apaleo:<connection>`."""
    sinks = []
    configured = hotels.sources.get(source)
    if configured is not None and configured.webhook_url:
        sinks.append(f"webhook:{source}")
    spectra = hotels.spectra_for_source(source)
    if spectra is not None and spectra[1].write_back:
        sinks.append(f"spectra:{spectra[0]}")
    apaleo = hotels.apaleo_for_source(source)
    if apaleo is not None and apaleo[1].write_back:
        sinks.append(f"apaleo:{apaleo[0]}")
    return sinks


class Access(msgspec.Struct, frozen=True, kw_only=True):
    """What Inlet returned for a grant, or what the service held before a change (then with the
    doors, times and whether the grant was active)."""

    reference_id: str | None
    code: str | None
    code_formatted: str | None
    link: str | None
    active: bool = False
    access_points: tuple[str, ...] = ()
    valid_from: datetime | None = None
    valid_to: datetime | None = None


class CallFacts(msgspec.Struct, frozen=True, kw_only=True):
    """The call whose outcome changed a stay's access."""

    operation: CallOperation
    source: str
    booking_id: str
    grant_key: str
    property_id: str
    reference_id: str | None
    desired: DesiredGrant | None
    recovery: bool = False  # a GrantAccess to get back a grant that must go (part of a revoke)


def _stay_id(call: CallFacts) -> str:
    return call.desired.stay_id if call.desired else call.grant_key.rsplit(":", 1)[-1]


def change_after_success(
    call: CallFacts,
    *,
    message: str,
    at: datetime,
    returned: Access | None,
    previous: Access | None,
) -> AccessChange:
    """The record of a successful call; a code Inlet did not return again is the stored one."""
    old_code = previous.code_formatted if previous else None
    revoked = AccessChangeData(
        source=call.source,
        booking_id=call.booking_id,
        stay_id=_stay_id(call),
        grant_key=call.grant_key,
        property_id=call.property_id,
        message=message,
        state="revoked",
        reference_id=call.reference_id,
        previous_code_formatted=old_code,
    )
    if call.operation == "revoke" or call.desired is None:
        return AccessChange(type="access.revoked", timestamp=at, data=revoked)
    code_formatted = (returned.code_formatted if returned else None) or old_code
    data = msgspec.structs.replace(
        revoked,
        state="active",
        access_points=call.desired.access_points,
        valid_from=call.desired.valid_from,
        valid_to=call.desired.valid_to,
        reference_id=(returned.reference_id if returned else None) or call.reference_id,
        code=(returned.code if returned else None) or (previous.code if previous else None),
        code_formatted=code_formatted,
        link=(returned.link if returned else None) or (previous.link if previous else None),
        previous_code_formatted=old_code if old_code and old_code != code_formatted else None,
        code_is_new=code_formatted is not None and code_formatted != old_code,
    )
    kind: ChangeKind = "access.updated" if call.operation == "update" else "access.granted"
    return AccessChange(type=kind, timestamp=at, data=data)


def change_after_failure(
    call: CallFacts, *, message: str, at: datetime, reason: str, held: Access | None
) -> AccessChange:
    """The record of a call that gave up: what may still work, for the PMS to act on.

    `held` is what the service held for the grant before the call. A failed revocation (or
    recovery) names the doors and times the code may still open; a failed update names the
    access that still works unchanged; a failed grant has nothing that works.
    """
    base = AccessChangeData(
        source=call.source,
        booking_id=call.booking_id,
        stay_id=_stay_id(call),
        grant_key=call.grant_key,
        property_id=call.property_id,
        state="grant_failed",
        reference_id=call.reference_id,
        message=message,
        reason=f"{call.operation}:{reason}",
    )
    still = held if held is not None and held.active else None
    if call.operation == "revoke" or call.recovery:
        if still is None and call.desired is not None:
            # a recovery: the grant an earlier GrantAccess may have made, with that request's
            # doors and times; its code never reached us (Inlet may have sent it to the guest)
            still = Access(
                reference_id=None,
                code=None,
                code_formatted=None,
                link=None,
                active=True,
                access_points=call.desired.access_points,
                valid_from=call.desired.valid_from,
                valid_to=call.desired.valid_to,
            )
        data = _still_working(base, "revoke_failed", still)
        return AccessChange(type="access.revoke_failed", timestamp=at, data=data)
    if call.operation == "update" and still is not None:
        data = _still_working(base, "update_failed", still)
        return AccessChange(type="access.update_failed", timestamp=at, data=data)
    return AccessChange(type="access.grant_failed", timestamp=at, data=base)


def _still_working(
    base: AccessChangeData, state: ChangeState, still: Access | None
) -> AccessChangeData:
    if still is None:
        return msgspec.structs.replace(base, state=state)
    return msgspec.structs.replace(
        base,
        state=state,
        access_points=still.access_points,
        valid_from=still.valid_from,
        valid_to=still.valid_to,
        reference_id=still.reference_id or base.reference_id,
        code=still.code,
        code_formatted=still.code_formatted,
        link=still.link,
    )
