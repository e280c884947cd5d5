"""What goes into the retry table, and what does a call's success record? Pure decisions the
store only persists.

`new_calls` turns a decision's operations into the calls to queue: operation, reason, priority,
deadline, the re-sync a replaced call owed, and where the call goes. `after_success` says what a
successful call leaves behind: the access to store, the fingerprint (unverified when Inlet may
hold an earlier call's content), and whether the PMS hears of it. `needs_look_after_success`
says whether the booking must be planned again after it (docs/architecture.md rule 17).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import msgspec

from inlet_bridge.domain.access import DesiredGrant
from inlet_bridge.domain.changes import Access
from inlet_bridge.domain.plan import (
    REVOCATION_DOUBT,
    UNVERIFIED,
    EarlierGrantAttempt,
    Operation,
    call_deadline,
    fingerprint_after_grant,
    may_have_reached,
)
from inlet_bridge.domain.vocab import (
    BOOKING,
    CALL_OPERATIONS,
    PRIORITY,
    RECOVER,
    RESYNC,
    CallOperation,
    CallReason,
    PlannedOperation,
)


class Superseded(msgspec.Struct, frozen=True, kw_only=True):
    """A queued call an operation replaced, as the store found it when it withdrew it."""

    call_id: int
    reason: CallReason
    resync_id: int | None


class NewCall(msgspec.Struct, frozen=True, kw_only=True):
    """One call to queue: what it asks Inlet, why, how urgently, and where it goes."""

    grant_key: str
    operation: CallOperation
    reason: CallReason
    request: DesiredGrant | None
    fingerprint: str
    priority: int
    deadline: datetime | None
    resync_id: int | None
    property_id: str
    generation: int
    external_id: str
    settles: bool = False


def new_calls(
    operations: Sequence[Operation], superseded: Mapping[int, Superseded], now: datetime
) -> list[NewCall]:
    """The calls a decision queues (a cancel queues none).

    A recovery is a GrantAccess with the reason "recover", as urgent as a revocation and with
    no deadline. A grant or update that replaces a queued re-sync call still owes the guest the
    re-sync's new code: it inherits the reason and the re-sync.
    """
    calls = []
    for op in operations:
        if op.kind == "cancel" or op.target is None:
            continue
        reason: CallReason = BOOKING
        resync_id = None
        replaced = superseded.get(op.supersedes) if op.supersedes is not None else None
        if replaced is not None and replaced.reason == RESYNC and op.kind in ("grant", "update"):
            reason, resync_id = RESYNC, replaced.resync_id
        operation: CallOperation
        if op.kind == "recover":
            operation, reason, resync_id, deadline = "grant", RECOVER, None, None
        else:
            operation, deadline = op.kind, call_deadline(op.desired, now)
        calls.append(
            NewCall(
                grant_key=op.grant_key,
                operation=operation,
                reason=reason,
                request=op.desired,
                fingerprint=op.desired.fingerprint if op.desired else "",
                priority=PRIORITY[op.kind],
                deadline=deadline,
                resync_id=resync_id,
                property_id=op.target.property_id,
                generation=op.target.generation,
                external_id=op.target.external_id(op.grant_key),
                settles=op.settles,
            )
        )
    return calls


def stored_operation(operation: str, reason: str) -> PlannedOperation:
    """A stored call as the plan sees it: a GrantAccess with the reason "recover" is a recovery."""
    if operation == "grant" and reason == RECOVER:
        return "recover"
    if operation not in CALL_OPERATIONS:
        raise ValueError(f"unknown call operation {operation!r}")
    return operation


class SuccessRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What a successful call leaves behind.

    `access`: what to store for the grant (a recovery keeps only the ReferenceId: its code was
    never the guest's to have, nor the PMS's to show). `fingerprint`: the content Inlet now
    holds, or UNVERIFIED. `unverified`: a GrantAccess met a grant an earlier call may have made
    with other content (worth a log line). `tell_sinks`: whether the PMS hears of it (never of
    a recovery; it hears of the revocation that follows).
    """

    access: Access
    fingerprint: str
    unverified: bool
    tell_sinks: bool


def after_success(
    *,
    operation: CallOperation,
    reason: str,
    sent_fingerprint: str,
    had_reference: bool,
    returned: Access,
    earlier: Sequence[EarlierGrantAttempt],
) -> SuccessRecord:
    """`earlier`: the attempts of earlier GrantAccess calls toward the same grant (see
    `attempts_toward`); they matter only when this call was a GrantAccess."""
    recovery = reason == RECOVER
    access = returned
    if recovery:
        access = Access(
            reference_id=returned.reference_id, code=None, code_formatted=None, link=None
        )
    fingerprint = sent_fingerprint
    if operation != "revoke" and (operation == "grant" or not had_reference):
        # A GrantAccess: Inlet may have answered with a grant an earlier call made.
        fingerprint = fingerprint_after_grant(sent_fingerprint, earlier)
    return SuccessRecord(
        access=access,
        fingerprint=fingerprint,
        unverified=fingerprint == UNVERIFIED and not recovery,
        tell_sinks=not recovery,
    )


def doubt_after_give_up(
    *, operation: CallOperation, reason: str, attempts: Sequence[EarlierGrantAttempt]
) -> str | None:
    """What to record on the held grant when a call gives up, if one of its attempts may have
    changed what Inlet holds: an UpdateAccess leaves its content UNVERIFIED (the next plan sends
    the desired content), a RevokeAccess leaves a REVOCATION_DOUBT (the grant is revoked for
    certain before the stay is granted again). A GrantAccess (a recovery too) needs nothing here:
    its history says the same (`recovery_request`, `fingerprint_after_grant`)."""
    if operation == "grant" or reason == RECOVER:
        return None
    if not any(may_have_reached(a) for a in attempts):
        return None
    return UNVERIFIED if operation == "update" else REVOCATION_DOUBT


class CallPlanned(msgspec.Struct, frozen=True, kw_only=True):
    """What a call remembers of the plan that queued it: whether its success as sent settles its
    grant, which of the booking's plans it was (None: queued by a re-sync, an operator or a
    release that did not record it), and when."""

    settles: bool
    planned_in: int | None
    created_at: datetime


class BookingPlans(msgspec.Struct, frozen=True, kw_only=True):
    """A booking's plan count and last reconcile, read under its lock as the outcome is recorded."""

    plans: int
    reconciled_at: datetime | None


def needs_look_after_success(
    *,
    operation: CallOperation,
    reason: str,
    record: SuccessRecord,
    http_status: int | None,
    planned: CallPlanned | None,
    booking: BookingPlans,
) -> bool:
    """Whether a successful call's booking must be planned again (marked), or the plan that
    queued the call provably has nothing new to do.

    Nothing new only when all hold: the plan said a success as sent settles the grant; Inlet
    holds what was sent (not unverified; never a recovery, whose revocation follows); a
    revocation was confirmed by Inlet (an HTTP answer, which ends the grant's history: a
    revocation never sent leaves it open, and the plan may recover); and no plan of the booking
    came after the one that queued the call (a plan made while it was in flight left its grant
    alone, and may have had a newer desired state for it). The plan is per grant, so the other
    grants of the booking are as that plan left them; a change of events marks the booking by
    itself, and a look in time (a window opening, access ending) is its `due_at`.
    """
    if planned is None or not planned.settles or planned.planned_in is None or reason == RECOVER:
        return True
    if record.fingerprint == UNVERIFIED:
        return True
    if operation == "revoke" and http_status is None:
        return True
    if booking.plans != planned.planned_in:
        return True
    # A release that does not count plans still records when it reconciled.
    return booking.reconciled_at is not None and booking.reconciled_at > planned.created_at
