"""Which Inlet calls converge what Inlet holds to what should be? `plan(desired, actual, pending, now)`.

Level-triggered: the plan looks only at states, never at what changed, so running it twice
gives the same answer. At most one operation per grant; a newer desired state supersedes a
pending call instead of queueing behind it; a call already in flight is left to finish (its
completion marks the booking for another look); revocations come first.

A grant that should not exist but that an earlier GrantAccess may have made at Inlet without
the service learning its ReferenceId (the answer was lost) is recovered: a GrantAccess for the
same externalId without email or phone (so Inlet messages nobody) gets the grant back, and the
next plan revokes it like any other (`recovery_request`).

Every call says where it goes (`Target`): a grant remembers the property (so the Inlet account:
API key and base URL) it was made under, and every later call on it goes there. A stay moved to
another property has its grant revoked where it was made before it is granted anew here. A grant
made again after a confirmed revocation is a new generation with its own externalId, so Inlet can
never hand back a revoked grant as a success, whatever its idempotency by externalId does.

It also answers two questions about the calls it plans: what a successful GrantAccess says about
what Inlet holds (`fingerprint_after_grant`), and by when a call must have succeeded before it
is late for the guest (`call_deadline`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal

import msgspec

from inlet_bridge.domain.access import DesiredGrant
from inlet_bridge.domain.vocab import CallOperation, OperationKind, Outcome, PlannedOperation

_ORDER: dict[str, int] = {"revoke": 0, "recover": 0, "cancel": 1, "update": 2, "grant": 3}


# The fingerprint of a grant Inlet holds with content we cannot vouch for. No desired state has
# it, so the plan sends an UpdateAccess with the desired content (idempotent on the ReferenceId).
UNVERIFIED = "unverified"

# The fingerprint of a grant whose RevokeAccess may have happened at Inlet without the service
# hearing of it (the answer was lost, then the call was given up): it may already be dead. It is
# revoked for certain (a 404 from its own account counts) before the stay is granted again, as a
# new generation; never reported as working on the strength of a doubt.
REVOCATION_DOUBT = "revocation-doubt"


def external_id(grant_key: str, generation: int) -> str:
    """The externalId of one generation of a grant: the grant key itself for the first (as every
    grant made before generations existed), then `<grant key>:#<n>`. IDs never hold ':', so no
    stay's key can end the way another stay's later generation does."""
    return grant_key if generation <= 1 else f"{grant_key}:#{generation}"


class ActualGrant(msgspec.Struct, frozen=True, kw_only=True):
    """What Inlet holds for a grant, as last confirmed (`fingerprint` UNVERIFIED: content unknown).

    `property_id` is where it was made (its Inlet account); `generation` which one it is.
    """

    grant_key: str
    state: Literal["active", "revoked"]
    reference_id: str | None
    fingerprint: str
    property_id: str
    generation: int = 1

    @property
    def external_id(self) -> str:
        return external_id(self.grant_key, self.generation)


class PendingCall(msgspec.Struct, frozen=True, kw_only=True):
    """A call not yet settled: queued, in flight (leased), or failed and waiting for a person.

    `attempts`: its attempts so far, as far as their outcomes are known (loaded for updates and
    revocations: whether one may already have changed what Inlet holds)."""

    call_id: int
    grant_key: str
    operation: PlannedOperation
    fingerprint: str
    status: Literal["queued", "in_flight", "escalated"]
    attempts: tuple[EarlierGrantAttempt, ...] = ()

    @property
    def may_have_reached(self) -> bool:
        """Whether an attempt may have changed what Inlet holds (see `may_have_reached`)."""
        return any(may_have_reached(a) for a in self.attempts)


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """Where a call goes: the property whose Inlet account holds (or will hold) the grant, and
    the generation of the grant it is about (which names its externalId)."""

    property_id: str
    generation: int

    def external_id(self, grant_key: str) -> str:
        return external_id(grant_key, self.generation)


class Operation(msgspec.Struct, frozen=True, kw_only=True):
    """One step: call Inlet (grant/update/revoke/recover) or withdraw a pending call that is no
    longer wanted.

    `desired` is what a grant or update sends, or the request of a recovery. `supersedes` names
    the pending call this operation replaces. `target` says where a call goes (None: a cancel).
    `settles`: a success of this call as sent leaves the grant as the plan wants it, so nothing
    more is planned for it until the booking changes (a recovery never settles: the revocation
    follows; nor does a revocation of a stay that is granted anew elsewhere).
    `doubt`: the fingerprint to record on the held grant as the replaced call is withdrawn, when
    that call may already have changed it (UNVERIFIED after an unanswered UpdateAccess).
    """

    kind: OperationKind
    grant_key: str
    desired: DesiredGrant | None = None
    supersedes: int | None = None
    target: Target | None = None
    settles: bool = False
    doubt: str | None = None


def plan(
    desired: Mapping[str, DesiredGrant],
    actual: Mapping[str, ActualGrant],
    pending: Mapping[str, PendingCall],
    now: datetime,
    sent: Mapping[str, Sequence[GrantCall]] | None = None,
) -> list[Operation]:
    """`sent`: each grant's GrantAccess calls since Inlet last confirmed its revocation."""
    sent = sent or {}
    operations: list[Operation] = []
    for key in sorted(set(desired) | set(actual) | set(pending) | set(sent)):
        call = pending.get(key)
        if call is not None and call.status == "in_flight":
            continue
        step = _step(desired.get(key), actual.get(key), call, sent.get(key, ()), now)
        if step is not None:
            operations.append(step)
    operations.sort(key=lambda op: (_ORDER[op.kind], op.grant_key))
    return operations


def _step(
    want: DesiredGrant | None,
    have: ActualGrant | None,
    call: PendingCall | None,
    sent: Sequence[GrantCall],
    now: datetime,
) -> Operation | None:
    """One grant's step, once what an unanswered call may have done is taken into account."""
    doubt = None
    active = have is not None and have.state == "active"
    queued = call if call is not None and call.status == "queued" else None
    if queued is not None and queued.may_have_reached:
        if queued.operation == "revoke":
            # A RevokeAccess that may have happened is sent again until Inlet confirms it (a
            # 404 from the grant's own account counts): withdrawn, it would leave the service
            # reporting as working a grant that Inlet has revoked.
            return None
        if queued.operation == "update" and have is not None and active:
            # An UpdateAccess that may have changed the grant: what Inlet holds is unknown until
            # an update with the desired content succeeds.
            have = msgspec.structs.replace(have, fingerprint=UNVERIFIED)
            doubt = UNVERIFIED
    if have is not None and active and have.fingerprint == REVOCATION_DOUBT:
        if call is not None and call.operation == "revoke":
            return None  # queued, or escalated for a person: not repeated
        supersedes = queued.call_id if queued is not None else None
        return Operation(
            kind="revoke", grant_key=have.grant_key, supersedes=supersedes, target=_held(have)
        )
    step = _converge(want, have, call, sent, now)
    if step is not None and doubt is not None and step.supersedes is not None:
        step = msgspec.structs.replace(step, doubt=doubt)
    return step


def _converge(
    want: DesiredGrant | None,
    have: ActualGrant | None,
    call: PendingCall | None,
    sent: Sequence[GrantCall],
    now: datetime,
) -> Operation | None:
    key = _key_of(want, have, call, sent)
    if key is None:
        return None
    held = have if have is not None and have.state == "active" else None
    # A queued call can be replaced; an escalated one only blocks repeating the same call.
    queued = call if call is not None and call.status == "queued" else None
    supersedes = queued.call_id if queued is not None else None
    if held is not None and (want is None or want.property_id != held.property_id):
        # Nothing should exist (or it belongs to another property now): revoke it where it
        # was made; a stay that moved is granted anew at its new property afterwards.
        if _pending_is(call, "revoke"):
            return None
        # Settled once revoked, unless the stay is to be granted anew now (its window is open).
        settles = want is None or now < want.send_after
        return Operation(
            kind="revoke", grant_key=key, supersedes=supersedes, target=_held(held), settles=settles
        )
    if want is None or (held is None and now < want.send_after):
        # Nothing should exist, or not yet: withdraw what is queued, unless Inlet may hold a
        # grant we have no ReferenceId for: get it back, then revoke it.
        recovery = recovery_request(sent, now)
        if recovery is None:
            return (
                Operation(kind="cancel", grant_key=key, supersedes=supersedes) if queued else None
            )
        return None if _pending_is(call, "recover") else _recover(key, recovery, supersedes)
    if held is None:
        # An earlier GrantAccess at another property may have made a grant there: get that
        # back and revoke it before granting here.
        elsewhere = recovery_request([c for c in sent if c.property_id != want.property_id], now)
        if elsewhere is not None:
            return None if _pending_is(call, "recover") else _recover(key, elsewhere, supersedes)
    elif held.fingerprint == want.fingerprint:
        return Operation(kind="cancel", grant_key=key, supersedes=supersedes) if queued else None
    kind: CallOperation = "update" if held is not None else "grant"
    if call is not None and call.operation == kind and call.fingerprint == want.fingerprint:
        return None  # queued, in flight, or escalated for a person: not repeated
    if held is not None:
        target = _held(held)
    else:
        target = Target(property_id=want.property_id, generation=grant_generation(have, sent))
    return Operation(
        kind=kind, grant_key=key, desired=want, supersedes=supersedes, target=target, settles=True
    )


def _key_of(
    want: DesiredGrant | None,
    have: ActualGrant | None,
    call: PendingCall | None,
    sent: Sequence[GrantCall],
) -> str | None:
    for known in (want, have, call):
        if known is not None:
            return known.grant_key
    return sent[0].request.grant_key if sent else None


def _pending_is(call: PendingCall | None, operation: PlannedOperation) -> bool:
    """Whether the grant's unsettled call (queued, or escalated for a person) is already this."""
    return call is not None and call.operation == operation


def _held(have: ActualGrant) -> Target:
    return Target(property_id=have.property_id, generation=have.generation)


def _recover(key: str, recovery: GrantCall, supersedes: int | None) -> Operation:
    return Operation(
        kind="recover",
        grant_key=key,
        desired=recovery.request,
        supersedes=supersedes,
        target=recovery.target,
    )


def grant_generation(have: ActualGrant | None, sent: Sequence[GrantCall]) -> int:
    """The generation a new GrantAccess of this grant belongs to.

    A GrantAccess since the last confirmed revocation may have made the grant already: repeat
    its generation (Inlet's idempotency by externalId then hands that grant back). Otherwise
    the generation after the last one Inlet held, or the first.
    """
    if sent:
        return max(c.generation for c in sent)
    if have is None:
        return 1
    return have.generation + 1 if have.state == "revoked" else have.generation


class EarlierGrantAttempt(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt of an earlier GrantAccess call for the same grant (a superseded or escalated
    call, since Inlet last confirmed a revocation), as far as its outcome is known.

    `outcome` None: the attempt was started but never recorded (its lease expired).
    """

    fingerprint: str
    outcome: Outcome | None
    http_status: int | None


def fingerprint_after_grant(sent: str, earlier: Sequence[EarlierGrantAttempt]) -> str:
    """The fingerprint to record after a GrantAccess with content `sent` succeeded.

    Inlet answers a repeat of an externalId with the grant it already holds, unchanged. If an
    earlier GrantAccess for this grant carried other content and may have reached Inlet, the
    success only says that some grant exists: record UNVERIFIED, not the content sent.
    """
    for attempt in earlier:
        if attempt.fingerprint != sent and may_have_reached(attempt):
            return UNVERIFIED
    return sent


class GrantCall(msgspec.Struct, frozen=True, kw_only=True):
    """A GrantAccess call of a grant since Inlet last confirmed a revocation of it (any state:
    pending, superseded, failed, succeeded): what it asked for, of which generation, and its
    attempts so far. It went to the property of its request."""

    call_id: int
    request: DesiredGrant
    attempts: tuple[EarlierGrantAttempt, ...]
    generation: int = 1

    @property
    def property_id(self) -> str:
        return self.request.property_id

    @property
    def target(self) -> Target:
        return Target(property_id=self.request.property_id, generation=self.generation)


def attempts_toward(calls: Sequence[GrantCall], target: Target) -> list[EarlierGrantAttempt]:
    """The attempts of the calls that went to the same grant (property and generation): only
    those can have left content at the grant `target` names."""
    return [a for c in calls if c.target == target for a in c.attempts]


def recovery_request(sent: Sequence[GrantCall], now: datetime) -> GrantCall | None:
    """The GrantAccess to send to get back a grant an earlier one may have made, or None.

    None when no attempt may have reached Inlet (every one refused with a 4xx, or never sent),
    and when every grant that may have been made has ended: it opens no door. Otherwise the
    latest such call, its request without email and phone, so Inlet sends the guest nothing:
    Inlet answers with the grant it holds for the externalId (or makes one, to be revoked at
    once). Its fingerprint is UNVERIFIED: the content Inlet answers with is not ours to vouch for.
    """
    reached = [c for c in sent if any(may_have_reached(a) for a in c.attempts)]
    if not reached or max(c.request.valid_to for c in reached) <= now:
        return None
    latest = reached[-1]
    request = msgspec.structs.replace(
        latest.request, email=None, phone=None, notify=False, fingerprint=UNVERIFIED
    )
    return msgspec.structs.replace(latest, request=request)


def may_have_reached(attempt: EarlierGrantAttempt) -> bool:
    """Whether the attempt may have made or changed the grant at Inlet.

    Only a 4xx refusal (429 included) is known to have changed nothing, and so is a call never
    sent (a permanent failure with no HTTP status: the property is not configured). No answer
    (timeout, connection error), a server error, or a 2xx whose body was unreadable or said
    "success": false may all have reached a grant that Inlet then kept.
    """
    if attempt.outcome is None or attempt.outcome == "success":
        return True
    if attempt.http_status is None:
        return attempt.outcome == "temporary"
    return not 400 <= attempt.http_status < 500


def call_deadline(desired: DesiredGrant | None, now: datetime) -> datetime | None:
    """When a grant or update call must have succeeded: when access starts, if it has not yet.

    A call for access already under way has no such deadline: a retry is not late for an
    arrival that is behind us.
    """
    if desired is None or desired.valid_from <= now:
        return None
    return desired.valid_from


def revocation_believed(
    *, http_status: int | None, grant_account: str | None, called_account: str
) -> bool:
    """Whether a successful RevokeAccess shows the grant gone. A 404 ("already gone") proves it
    only when it comes from the account the grant was made with: another account (a key or URL
    changed since) would not know the grant at all. A grant stored before accounts were
    recorded (None) is taken as made where it is called now."""
    if http_status != 404:
        return True
    return grant_account is None or grant_account == called_account
