"""What state is a stay's access in, in words a PMS can trust? `grant_state(...)`, a pure rule.

The state is derived, never stored: from what should exist (the desired grant), what Inlet
holds as last confirmed (the grant), and the call not yet settled for it (queued, in flight, or
failed and waiting for a person). The access API, the timeline, the webhooks and the metrics use
the same words:

- `pending`: access is wanted but not sent yet (the send window has not opened);
- `granting`, `updating`, `revoking`: a call is queued or in flight;
- `active`: Inlet holds the grant as wanted; `revoked`: it held one and confirmed its removal;
- `grant_failed`: the GrantAccess gave up, no code works;
- `update_failed`: the UpdateAccess gave up, the previous code, doors and times still work;
- `revoke_failed`: the RevokeAccess (or the recovery before it) gave up: the code may still open
  the doors it was given, until its end;
- `none`: the stay wants no access and never had any.

A PMS is never told access is gone while a code may still work: `revoke_failed` stays until a
revocation succeeds.
"""

from __future__ import annotations

from typing import Literal

from inlet_bridge.domain.plan import ActualGrant, PendingCall

GrantState = Literal[
    "pending",
    "granting",
    "active",
    "updating",
    "revoking",
    "revoked",
    "grant_failed",
    "update_failed",
    "revoke_failed",
    "none",
]

# Every state, in the order dashboards and documentation list them.
GRANT_STATES: tuple[GrantState, ...] = (
    "pending",
    "granting",
    "active",
    "updating",
    "revoking",
    "revoked",
    "grant_failed",
    "update_failed",
    "revoke_failed",
    "none",
)

# States in which a code may open a door right now (or once its period starts).
MAY_OPEN: frozenset[GrantState] = frozenset(
    {"active", "updating", "revoking", "update_failed", "revoke_failed"}
)


def grant_state(
    *,
    wanted: bool,
    held: ActualGrant | None,
    call: PendingCall | None,
) -> GrantState:
    """The state of one stay's access; `call` is its unsettled call (an escalated one included).

    `wanted`: the stay should have access now or later (a desired grant, or access still to
    come: waiting for its room, its check-in or its send window)."""
    active = held is not None and held.state == "active"
    if call is not None:
        removing = call.operation in ("revoke", "recover")
        if call.status == "escalated":
            if removing:
                return "revoke_failed"
            if call.operation == "update" and active:
                return "update_failed"
            if wanted and not active:
                return "grant_failed"
            # a failed call for access no longer wanted: what Inlet holds says the rest
        elif removing:
            return "revoking"
        elif call.operation == "update" or (call.operation == "grant" and active):
            return "updating"
        else:
            return "granting"
    if active:
        return "active"
    if wanted:
        return "pending"
    if held is not None:
        return "revoked"
    return "none"
