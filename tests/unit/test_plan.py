"""Which Inlet calls converge what Inlet holds to what should be? Tables of cases for `plan`."""

from __future__ import annotations

import itertools
from datetime import datetime

import msgspec
import pytest

from inlet_bridge.domain.access import DesiredGrant
from inlet_bridge.domain.calls import doubt_after_give_up
from inlet_bridge.domain.plan import (
    REVOCATION_DOUBT,
    UNVERIFIED,
    ActualGrant,
    EarlierGrantAttempt,
    GrantCall,
    Operation,
    PendingCall,
    Target,
    attempts_toward,
    call_deadline,
    external_id,
    fingerprint_after_grant,
    plan,
    recovery_request,
    revocation_believed,
)
from inlet_bridge.domain.reconcile import BookingInputs, decide
from tests.unit.domain_cases import (
    ARRIVAL,
    BOOKING_ID,
    DEPARTURE,
    HOUR,
    MINUTE,
    NOW,
    PROPERTY_ID,
    SOURCE,
    booking,
    hotels,
    logged,
    stay,
)

K1 = "acme-pms:R-1001:S1"
K2 = "acme-pms:R-1001:S2"
K3 = "acme-pms:R-1001:S3"
K4 = "acme-pms:R-1001:S4"
OPENS = ARRIVAL - 24 * HOUR  # the send window opens
INSIDE = OPENS + HOUR
BEFORE = OPENS - MINUTE


def want(key: str = K1, fingerprint: str = "fp-new", send_after: datetime = OPENS) -> DesiredGrant:
    stay_id = key.rsplit(":", 1)[1]
    return DesiredGrant(
        grant_key=key,
        source=SOURCE,
        booking_id=BOOKING_ID,
        stay_id=stay_id,
        property_id=PROPERTY_ID,
        resource_id="101",
        operation="code",
        access_points=("L-101", "MAIN"),
        valid_from=ARRIVAL,
        valid_to=DEPARTURE,
        guest_name="Ola Nordmann",
        email="ola@example.no",
        phone=None,
        notify=True,
        send_after=send_after,
        fingerprint=fingerprint,
    )


def have(
    key: str = K1,
    fingerprint: str = "fp-new",
    state: str = "active",
    property_id: str = PROPERTY_ID,
    generation: int = 1,
) -> ActualGrant:
    return ActualGrant(
        grant_key=key,
        state=state,  # type: ignore[arg-type]
        reference_id="ref-1" if state == "active" else None,
        fingerprint=fingerprint,
        property_id=property_id,
        generation=generation,
    )


def grant_op(w: DesiredGrant, *, supersedes: int | None = None, generation: int = 1) -> Operation:
    """A GrantAccess of `w` at its property."""
    target = Target(property_id=w.property_id, generation=generation)
    return Operation(
        kind="grant",
        grant_key=w.grant_key,
        desired=w,
        supersedes=supersedes,
        target=target,
        settles=True,
    )


def update_op(
    w: DesiredGrant,
    *,
    supersedes: int | None = None,
    property_id: str = PROPERTY_ID,
    generation: int = 1,
) -> Operation:
    """An UpdateAccess of the grant held at `property_id` to `w`."""
    target = Target(property_id=property_id, generation=generation)
    return Operation(
        kind="update",
        grant_key=w.grant_key,
        desired=w,
        supersedes=supersedes,
        target=target,
        settles=True,
    )


def revoke_op(
    key: str,
    *,
    supersedes: int | None = None,
    property_id: str = PROPERTY_ID,
    generation: int = 1,
    settles: bool = True,
) -> Operation:
    """A RevokeAccess of the grant held at `property_id`; `settles` unless the stay is to be
    granted anew elsewhere now."""
    target = Target(property_id=property_id, generation=generation)
    return Operation(
        kind="revoke", grant_key=key, supersedes=supersedes, target=target, settles=settles
    )


def cancel_op(key: str, *, supersedes: int) -> Operation:
    """Withdraw a queued call no longer wanted."""
    return Operation(kind="cancel", grant_key=key, supersedes=supersedes)


def recover_op(
    request: DesiredGrant, key: str = K1, *, supersedes: int | None = None, generation: int = 1
) -> Operation:
    """A contact-free GrantAccess to get back a grant an unanswered call may have made."""
    target = Target(property_id=request.property_id, generation=generation)
    return Operation(
        kind="recover", grant_key=key, desired=request, supersedes=supersedes, target=target
    )


def call(
    operation: str = "grant",
    fingerprint: str = "fp-old",
    status: str = "queued",
    key: str = K1,
    call_id: int = 7,
) -> PendingCall:
    return PendingCall(
        call_id=call_id,
        grant_key=key,
        operation=operation,  # type: ignore[arg-type]
        fingerprint=fingerprint,
        status=status,  # type: ignore[arg-type]
    )


W = want()
W_LATER = want(send_after=ARRIVAL + 48 * HOUR)


def by_key(*values: DesiredGrant | ActualGrant | PendingCall) -> dict[str, object]:
    return {v.grant_key: v for v in values}


PlanCase = tuple[dict[str, DesiredGrant], dict[str, ActualGrant], dict[str, PendingCall], datetime]

CASES: list[tuple[str, PlanCase, list[Operation]]] = [
    ("nothing-anywhere", ({}, {}, {}, INSIDE), []),
    ("in-sync", ({K1: W}, {K1: have()}, {}, INSIDE), []),
    ("in-sync-before-window", ({K1: W_LATER}, {K1: have()}, {}, INSIDE), []),
    (
        "grant-missing-inside-window",
        ({K1: W}, {}, {}, INSIDE),
        [grant_op(W)],
    ),
    (
        "grant-exactly-at-window",
        ({K1: W}, {}, {}, OPENS),
        [grant_op(W)],
    ),
    ("nothing-before-window", ({K1: W}, {}, {}, BEFORE), []),
    (
        "grant-again-after-revoked-is-a-new-generation",
        ({K1: W}, {K1: have(state="revoked")}, {}, INSIDE),
        [grant_op(W, generation=2)],
    ),
    (
        "update-when-fingerprint-differs",
        ({K1: W}, {K1: have(fingerprint="fp-old")}, {}, INSIDE),
        [update_op(W)],
    ),
    (
        "revoke-when-not-desired",
        ({}, {K1: have()}, {}, INSIDE),
        [revoke_op(K1)],
    ),
    ("revoked-and-not-desired", ({}, {K1: have(state="revoked")}, {}, INSIDE), []),
    (
        "supersede-queued-grant",
        ({K1: W}, {}, {K1: call("grant", "fp-old")}, INSIDE),
        [grant_op(W, supersedes=7)],
    ),
    (
        "supersede-queued-update",
        ({K1: W}, {K1: have(fingerprint="fp-0")}, {K1: call("update", "fp-old")}, INSIDE),
        [update_op(W, supersedes=7)],
    ),
    (
        "supersede-queued-grant-with-update",
        ({K1: W}, {K1: have(fingerprint="fp-0")}, {K1: call("grant", "fp-new")}, INSIDE),
        [update_op(W, supersedes=7)],
    ),
    ("queued-call-already-right", ({K1: W}, {}, {K1: call("grant", "fp-new")}, INSIDE), []),
    (
        "queued-update-already-right",
        ({K1: W}, {K1: have(fingerprint="fp-0")}, {K1: call("update", "fp-new")}, INSIDE),
        [],
    ),
    ("in-flight-left-alone", ({K1: W}, {}, {K1: call("grant", "fp-old", "in_flight")}, INSIDE), []),
    (
        "in-flight-left-alone-when-not-desired",
        ({}, {K1: have()}, {K1: call("update", "fp-old", "in_flight")}, INSIDE),
        [],
    ),
    (
        "escalated-same-call-not-repeated",
        ({K1: W}, {}, {K1: call("grant", "fp-new", "escalated")}, INSIDE),
        [],
    ),
    (
        "escalated-same-update-not-repeated",
        (
            {K1: W},
            {K1: have(fingerprint="fp-0")},
            {K1: call("update", "fp-new", "escalated")},
            INSIDE,
        ),
        [],
    ),
    (
        "escalated-changed-desired-is-planned",
        ({K1: W}, {}, {K1: call("grant", "fp-old", "escalated")}, INSIDE),
        [grant_op(W)],
    ),
    (
        "escalated-grant-now-an-update",
        (
            {K1: W},
            {K1: have(fingerprint="fp-0")},
            {K1: call("grant", "fp-new", "escalated")},
            INSIDE,
        ),
        [update_op(W)],
    ),
    (
        "cancel-queued-grant-not-desired",
        ({}, {}, {K1: call("grant")}, INSIDE),
        [Operation(kind="cancel", grant_key=K1, supersedes=7)],
    ),
    (
        "cancel-queued-grant-window-moved-later",
        ({K1: W_LATER}, {}, {K1: call("grant", "fp-new")}, INSIDE),
        [Operation(kind="cancel", grant_key=K1, supersedes=7)],
    ),
    (
        "cancel-queued-update-already-applied",
        ({K1: W}, {K1: have()}, {K1: call("update", "fp-new")}, INSIDE),
        [Operation(kind="cancel", grant_key=K1, supersedes=7)],
    ),
    (
        "cancel-queued-revoke-when-desired-again",
        ({K1: W}, {K1: have()}, {K1: call("revoke", "fp-new")}, INSIDE),
        [Operation(kind="cancel", grant_key=K1, supersedes=7)],
    ),
    (
        "cancel-queued-revoke-of-revoked",
        ({}, {K1: have(state="revoked")}, {K1: call("revoke")}, INSIDE),
        [Operation(kind="cancel", grant_key=K1, supersedes=7)],
    ),
    (
        "update-supersedes-queued-revoke",
        ({K1: W}, {K1: have(fingerprint="fp-0")}, {K1: call("revoke", "fp-0")}, INSIDE),
        [update_op(W, supersedes=7)],
    ),
    (
        "revoke-supersedes-queued-update",
        ({}, {K1: have()}, {K1: call("update")}, INSIDE),
        [revoke_op(K1, supersedes=7)],
    ),
    ("revoke-not-repeated-when-queued", ({}, {K1: have()}, {K1: call("revoke")}, INSIDE), []),
    (
        "revoke-not-repeated-when-escalated",
        ({}, {K1: have()}, {K1: call("revoke", status="escalated")}, INSIDE),
        [],
    ),
    (
        "revoke-beside-escalated-update",
        ({}, {K1: have()}, {K1: call("update", status="escalated")}, INSIDE),
        [revoke_op(K1)],
    ),
    (
        "escalated-grant-left-when-not-desired",
        ({}, {}, {K1: call("grant", status="escalated")}, INSIDE),
        [],
    ),
]


@pytest.mark.parametrize(
    ("case", "expected"), [pytest.param(c, e, id=name) for name, c, e in CASES]
)
def test_plan(case: PlanCase, expected: list[Operation]) -> None:
    desired, actual, pending, now = case

    assert plan(desired, actual, pending, now) == expected


def test_revocations_come_first() -> None:
    w1, w3 = want(K1), want(K3)
    desired = {K1: w1, K3: w3}
    actual = {
        K2: have(K2),
        K3: have(K3, fingerprint="fp-old"),
        K4: have(K4, state="revoked"),
    }
    pending = {K4: call("grant", key=K4, call_id=40)}
    extra = {"acme-pms:R-1001:S0": have("acme-pms:R-1001:S0")}

    result = plan(desired, {**actual, **extra}, pending, INSIDE)

    assert result == [
        revoke_op("acme-pms:R-1001:S0"),
        revoke_op(K2),
        Operation(kind="cancel", grant_key=K4, supersedes=40),
        update_op(w3),
        grant_op(w1),
    ]


# --- idempotence: apply what the plan says, plan again, nothing is left --------------------


def apply(
    operations: list[Operation],
    actual: dict[str, ActualGrant],
    pending: dict[str, PendingCall],
) -> tuple[dict[str, ActualGrant], dict[str, PendingCall]]:
    """The state after every planned call succeeded and every cancel was done."""
    actual, pending = dict(actual), dict(pending)
    for op in operations:
        if op.supersedes is not None:
            assert pending[op.grant_key].call_id == op.supersedes
            assert pending[op.grant_key].status == "queued"
            del pending[op.grant_key]
        if op.kind in ("grant", "update"):
            assert op.desired is not None
            assert op.target is not None
            actual[op.grant_key] = have(
                op.grant_key,
                op.desired.fingerprint,
                property_id=op.target.property_id,
                generation=op.target.generation,
            )
        elif op.kind == "revoke":
            previous = actual[op.grant_key]
            actual[op.grant_key] = msgspec.structs.replace(previous, state="revoked")
        else:
            assert op.kind == "cancel"
            assert op.supersedes is not None
    return actual, pending


@pytest.mark.parametrize(
    ("case", "expected"), [pytest.param(c, e, id=name) for name, c, e in CASES]
)
def test_planning_after_the_effect_gives_nothing(case: PlanCase, expected: list[Operation]) -> None:
    desired, actual, pending, now = case
    operations = plan(desired, actual, pending, now)
    assert operations == expected

    after_actual, after_pending = apply(operations, actual, pending)

    assert plan(desired, after_actual, after_pending, now) == []


WANTS: dict[str, DesiredGrant | None] = {"none": None, "inside": W, "before-window": W_LATER}
HAVES: dict[str, ActualGrant | None] = {
    "none": None,
    "active-same": have(),
    "active-other": have(fingerprint="fp-old"),
    "revoked": have(state="revoked"),
}
CALLS: dict[str, PendingCall | None] = {"none": None} | {
    f"{status}-{operation}-{fp}": call(operation, f"fp-{fp}", status)
    for status in ("queued", "in_flight", "escalated")
    for operation in ("grant", "update", "revoke")
    for fp in ("new", "old")
}


@pytest.mark.parametrize(
    ("want_name", "have_name", "call_name"),
    [
        pytest.param(w, h, c, id=f"want-{w}/have-{h}/call-{c}")
        for w, h, c in itertools.product(WANTS, HAVES, CALLS)
    ],
)
def test_every_combination_converges_in_one_step(
    want_name: str, have_name: str, call_name: str
) -> None:
    wanted, held, queued = WANTS[want_name], HAVES[have_name], CALLS[call_name]
    desired = {K1: wanted} if wanted is not None else {}
    actual = {K1: held} if held is not None else {}
    pending = {K1: queued} if queued is not None else {}

    operations = plan(desired, actual, pending, INSIDE)

    assert len(operations) <= 1  # at most one operation per grant
    if queued is not None and queued.status == "in_flight":
        assert operations == []
    # Only a queued call may be superseded (an escalated one stays for a person).
    supersedable = queued.call_id if queued is not None and queued.status == "queued" else None
    assert all(op.supersedes == supersedable for op in operations)
    after_actual, after_pending = apply(operations, actual, pending)
    assert plan(desired, after_actual, after_pending, INSIDE) == []


# --- what a successful GrantAccess says about what Inlet holds ---------------------------------


def earlier(
    outcome: str | None, http_status: int | None, fingerprint: str = "fp-old"
) -> EarlierGrantAttempt:
    return EarlierGrantAttempt(
        fingerprint=fingerprint,
        outcome=outcome,  # type: ignore[arg-type]
        http_status=http_status,
    )


@pytest.mark.parametrize(
    ("attempts", "recorded"),
    [
        pytest.param([], "fp-new", id="first-grant"),
        pytest.param([earlier("temporary", None)], UNVERIFIED, id="other-content-timed-out"),
        pytest.param([earlier(None, None)], UNVERIFIED, id="other-content-lease-expired"),
        pytest.param([earlier("temporary", 503)], UNVERIFIED, id="other-content-server-error"),
        pytest.param(
            [earlier("temporary", 500), earlier("permanent", None)],
            UNVERIFIED,
            id="escalated-after-a-server-error",
        ),
        pytest.param([earlier("success", 200)], UNVERIFIED, id="other-content-granted"),
        pytest.param([earlier("temporary", 429)], "fp-new", id="other-content-rate-limited"),
        pytest.param(
            [earlier("temporary", 200)], UNVERIFIED, id="other-content-unreadable-or-false-200"
        ),
        pytest.param([earlier("permanent", 400)], "fp-new", id="other-content-refused"),
        pytest.param(
            [earlier("permanent", None)], "fp-new", id="other-content-never-sent-no-property"
        ),
        pytest.param(
            [earlier("temporary", None, "fp-new"), earlier(None, None, "fp-new")],
            "fp-new",
            id="same-content-unknown",
        ),
        pytest.param(
            [earlier("permanent", 400), earlier("temporary", None, "fp-new")],
            "fp-new",
            id="refused-then-same-content-unknown",
        ),
        pytest.param(
            [earlier("temporary", None, "fp-new"), earlier("temporary", None, "fp-other")],
            UNVERIFIED,
            id="two-calls-one-other-content-unknown",
        ),
    ],
)
def test_fingerprint_after_grant(attempts: list[EarlierGrantAttempt], recorded: str) -> None:
    assert fingerprint_after_grant("fp-new", attempts) == recorded


def test_an_unverified_grant_is_updated_with_the_desired_content() -> None:
    result = plan({K1: W}, {K1: have(fingerprint=UNVERIFIED)}, {}, INSIDE)

    assert result == [update_op(W)]


# --- a grant that must go, but that a lost GrantAccess may have made at Inlet ----------------


def sent(
    *attempts: tuple[str | None, int | None], call_id: int = 5, request: DesiredGrant = W
) -> GrantCall:
    """One earlier GrantAccess call of K1 with these (outcome, http_status) attempts."""
    return GrantCall(
        call_id=call_id,
        request=request,
        attempts=tuple(earlier(o, s, request.fingerprint) for o, s in attempts),
    )


LOST = sent(("temporary", None))  # timed out: Inlet may have made the grant
REFUSED = sent(("permanent", 400))
RECOVERY = msgspec.structs.replace(W, email=None, phone=None, notify=False, fingerprint=UNVERIFIED)

ROOM_102 = msgspec.structs.replace(W, access_points=("L-102", "MAIN"), fingerprint="fp-102")

RecoveryCase = tuple[
    dict[str, DesiredGrant],
    dict[str, ActualGrant],
    dict[str, PendingCall],
    dict[str, list[GrantCall]],
    datetime,
]

RECOVERY_CASES: list[tuple[str, RecoveryCase, list[Operation]]] = [
    (
        "lost-grant-queued-for-retry-then-cancelled",
        ({}, {}, {K1: call("grant", "fp-new")}, {K1: [LOST]}, INSIDE),
        [recover_op(RECOVERY, K1, supersedes=7)],
    ),
    (
        "lost-grant-escalated-then-cancelled",
        ({}, {}, {K1: call("grant", "fp-new", "escalated")}, {K1: [LOST]}, INSIDE),
        [recover_op(RECOVERY, K1)],
    ),
    (
        "lost-grant-withdrawn-long-ago",  # only the history knows of it
        ({}, {}, {}, {K1: [LOST]}, INSIDE),
        [recover_op(RECOVERY, K1)],
    ),
    (
        "lost-grant-after-an-earlier-grant-was-revoked",
        ({}, {K1: have(state="revoked")}, {}, {K1: [LOST]}, INSIDE),
        [recover_op(RECOVERY, K1)],
    ),
    (
        "lease-expired-mid-call",
        ({}, {}, {K1: call("grant", "fp-new")}, {K1: [sent((None, None))]}, INSIDE),
        [recover_op(RECOVERY, K1, supersedes=7)],
    ),
    (
        "refused-with-4xx-is-withdrawn-as-before",
        ({}, {}, {K1: call("grant", "fp-new")}, {K1: [REFUSED]}, INSIDE),
        [Operation(kind="cancel", grant_key=K1, supersedes=7)],
    ),
    (
        "refused-and-escalated-stays-for-a-person",
        ({}, {}, {K1: call("grant", "fp-new", "escalated")}, {K1: [REFUSED]}, INSIDE),
        [],
    ),
    (
        "rate-limited-then-refused",
        ({}, {}, {}, {K1: [sent(("temporary", 429), ("permanent", 422))]}, INSIDE),
        [],
    ),
    (
        "queued-never-sent",
        ({}, {}, {K1: call("grant", "fp-new")}, {K1: [sent()]}, INSIDE),
        [Operation(kind="cancel", grant_key=K1, supersedes=7)],
    ),
    (
        "recovery-queued-not-repeated",
        ({}, {}, {K1: call("recover", UNVERIFIED)}, {K1: [LOST]}, INSIDE),
        [],
    ),
    (
        "recovery-escalated-not-repeated",
        ({}, {}, {K1: call("recover", UNVERIFIED, "escalated")}, {K1: [LOST]}, INSIDE),
        [],
    ),
    (
        "recovery-in-flight-left-alone",
        ({}, {}, {K1: call("recover", UNVERIFIED, "in_flight")}, {K1: [LOST]}, INSIDE),
        [],
    ),
    (
        "recovered-grant-is-revoked",
        ({}, {K1: have(fingerprint=UNVERIFIED)}, {}, {K1: [LOST, sent(("success", 200))]}, INSIDE),
        [revoke_op(K1)],
    ),
    (
        "stay-reinstated-supersedes-the-recovery",
        ({K1: W}, {}, {K1: call("recover", UNVERIFIED)}, {K1: [LOST]}, INSIDE),
        [grant_op(W, supersedes=7)],
    ),
    (
        "still-desired-is-granted-not-recovered",
        ({K1: W}, {}, {}, {K1: [LOST]}, INSIDE),
        [grant_op(W)],
    ),
    (
        "grant-ended-opens-no-door",
        ({}, {}, {}, {K1: [LOST]}, DEPARTURE),
        [],
    ),
    (
        "two-grants-one-lost-one-refused",
        ({}, {}, {}, {K1: [LOST], K2: [sent(("permanent", 400), request=want(K2))]}, INSIDE),
        [recover_op(RECOVERY, K1)],
    ),
]


@pytest.mark.parametrize(
    ("case", "expected"), [pytest.param(c, e, id=name) for name, c, e in RECOVERY_CASES]
)
def test_plan_recovers_a_grant_a_lost_answer_may_have_made(
    case: RecoveryCase, expected: list[Operation]
) -> None:
    desired, actual, pending, history, now = case

    assert plan(desired, actual, pending, now, history) == expected


def test_recovery_then_revocation_converges() -> None:
    """Cancelled after a lost answer: recover, then revoke; the confirmed revocation ends the
    history (the store reads calls since then only), and nothing more is planned."""
    pending = {K1: call("grant", "fp-new")}
    history = {K1: [LOST]}

    first = plan({}, {}, pending, INSIDE, history)
    assert [op.kind for op in first] == ["recover"]
    recovery = first[0].desired
    assert recovery is not None
    assert (recovery.email, recovery.phone, recovery.fingerprint) == (None, None, UNVERIFIED)
    assert (recovery.grant_key, recovery.access_points) == (K1, W.access_points)
    # The recovery is queued; the plan leaves it alone.
    queued = {K1: call("recover", UNVERIFIED, call_id=8)}
    history = {K1: [LOST, sent(call_id=8, request=recovery)]}
    assert plan({}, {}, queued, INSIDE, history) == []
    # It succeeded: the grant is known, unverified; the next plan revokes it.
    recovered = {K1: have(fingerprint=UNVERIFIED)}
    history = {K1: [LOST, sent(("success", 200), call_id=8, request=recovery)]}
    assert plan({}, recovered, {}, INSIDE, history) == [revoke_op(K1)]
    assert plan({}, recovered, {K1: call("revoke", "", call_id=9)}, INSIDE, history) == []
    # Revoked, confirmed by Inlet: no history left, nothing to do.
    assert plan({}, {K1: have(state="revoked")}, {}, INSIDE, {}) == []


@pytest.mark.parametrize(
    ("calls", "now", "expected"),
    [
        pytest.param([], INSIDE, None, id="no-calls"),
        pytest.param([sent()], INSIDE, None, id="never-sent"),
        pytest.param([LOST], INSIDE, RECOVERY, id="timed-out"),
        pytest.param([sent(("temporary", 503))], INSIDE, RECOVERY, id="server-error"),
        pytest.param([sent(("temporary", 200))], INSIDE, RECOVERY, id="unreadable-200"),
        pytest.param([sent(("temporary", 429))], INSIDE, None, id="rate-limited"),
        pytest.param([REFUSED, sent(("permanent", None))], INSIDE, None, id="refused-or-unsent"),
        pytest.param([LOST], DEPARTURE, None, id="ended-at-departure"),
        pytest.param([LOST], DEPARTURE - MINUTE, RECOVERY, id="a-minute-before-departure"),
        pytest.param(
            [sent(("temporary", None), request=ROOM_102), sent(("temporary", 502), call_id=6)],
            INSIDE,
            RECOVERY,
            id="the-latest-that-may-have-reached",
        ),
        pytest.param(
            [sent(("temporary", None), request=ROOM_102), sent(("permanent", 400), call_id=6)],
            INSIDE,
            msgspec.structs.replace(
                ROOM_102, email=None, phone=None, notify=False, fingerprint=UNVERIFIED
            ),
            id="a-refused-later-call-does-not-count",
        ),
        pytest.param(
            [REFUSED, sent(("temporary", None), call_id=6, request=ROOM_102)],
            INSIDE,
            msgspec.structs.replace(
                ROOM_102, email=None, phone=None, notify=False, fingerprint=UNVERIFIED
            ),
            id="a-later-lost-call",
        ),
    ],
)
def test_recovery_request(
    calls: list[GrantCall], now: datetime, expected: DesiredGrant | None
) -> None:
    recovery = recovery_request(calls, now)

    assert (recovery.request if recovery else None) == expected


def test_decide_recovers_a_lost_grant_of_a_cancelled_stay() -> None:
    events = (
        logged(1, NOW - 2 * HOUR, booking()),
        logged(2, NOW - HOUR, booking(stay("S1", status="cancelled"))),
    )
    inputs = BookingInputs(
        source=SOURCE,
        booking_id=BOOKING_ID,
        property_id=PROPERTY_ID,
        events=events,
        actual={},
        pending={K1: call("grant", "fp-new", "escalated")},
        sent={K1: (LOST,)},
    )

    decision = decide(inputs, hotels(), NOW)

    assert decision.desired.grants == ()
    assert [(op.kind, op.grant_key, op.supersedes) for op in decision.operations] == [
        ("recover", K1, None)
    ]


@pytest.mark.parametrize(
    ("desired", "now", "deadline"),
    [
        pytest.param(W, INSIDE, ARRIVAL, id="access-to-come"),
        pytest.param(W, ARRIVAL - MINUTE, ARRIVAL, id="a-minute-before"),
        pytest.param(W, ARRIVAL, None, id="access-starting-now"),
        pytest.param(W, ARRIVAL + HOUR, None, id="access-under-way"),
        pytest.param(None, INSIDE, None, id="revocation"),
    ],
)
def test_call_deadline(
    desired: DesiredGrant | None, now: datetime, deadline: datetime | None
) -> None:
    assert call_deadline(desired, now) == deadline


# --- the reconciler's pure step: fold, desired access, plan ------------------------------------


def test_decide_plans_the_grant_of_a_new_booking() -> None:
    events = (logged(1, NOW - HOUR, booking(stay("S1"), stay("S2", resource_id="999"))),)
    inputs = BookingInputs(
        source=SOURCE,
        booking_id=BOOKING_ID,
        property_id=PROPERTY_ID,
        events=events,
        actual={},
        pending={},
    )

    decision = decide(inputs, hotels(), NOW)

    assert [(op.kind, op.grant_key, op.supersedes) for op in decision.operations] == [
        ("grant", K1, None)
    ]
    assert decision.operations[0].desired == decision.desired.grants[0]
    assert [i.kind for i in decision.desired.issues] == ["unmapped_resource"]
    assert decision.next_look_at == DEPARTURE


def test_decide_revokes_a_deleted_booking_and_replays_the_same() -> None:
    events = (
        logged(2, NOW - HOUR, booking(deleted=True)),
        logged(1, NOW - 2 * HOUR, booking()),
    )
    inputs = BookingInputs(
        source=SOURCE,
        booking_id=BOOKING_ID,
        property_id=PROPERTY_ID,
        events=events,
        actual={K1: have()},
        pending={K1: call("update")},
    )

    first = decide(inputs, hotels(), NOW)
    again = decide(inputs, hotels(), NOW)

    assert first.operations == (revoke_op(K1, supersedes=7),)
    assert first.next_look_at is None
    assert again == first


def test_decide_for_an_unknown_booking() -> None:
    inputs = BookingInputs(
        source=SOURCE,
        booking_id=BOOKING_ID,
        property_id="nowhere",
        events=(),
        actual={K1: have()},
        pending={},
    )

    decision = decide(inputs, hotels(), NOW)

    assert decision.state is None
    assert decision.operations == (revoke_op(K1),)


# --- grants remember where they were made, and which generation they are ----------------------


def sent_gen(*attempts: tuple[str | None, int | None], gen: int) -> GrantCall:
    return msgspec.structs.replace(sent(*attempts), generation=gen)


OTHER = "bergen-1"
W_BERGEN = msgspec.structs.replace(W, property_id=OTHER, fingerprint="fp-bergen")

MOVE_CASES: list[tuple[str, RecoveryCase, list[Operation]]] = [
    (
        "moved-to-another-property-revokes-where-it-was-made",
        ({K1: W_BERGEN}, {K1: have()}, {}, {}, INSIDE),
        [revoke_op(K1, settles=False)],  # the grant at the new property follows
    ),
    (
        "moved-revoke-supersedes-a-queued-update-to-the-old-property",
        ({K1: W_BERGEN}, {K1: have(fingerprint="fp-0")}, {K1: call("update")}, {}, INSIDE),
        [revoke_op(K1, supersedes=7, settles=False)],
    ),
    (
        "moved-revoke-not-repeated-while-queued",
        ({K1: W_BERGEN}, {K1: have()}, {K1: call("revoke")}, {}, INSIDE),
        [],
    ),
    (
        "moved-revoke-escalated-stays-for-a-person",
        ({K1: W_BERGEN}, {K1: have()}, {K1: call("revoke", status="escalated")}, {}, INSIDE),
        [],
    ),
    (
        "moved-and-revoked-is-granted-anew-at-the-new-property",
        ({K1: W_BERGEN}, {K1: have(state="revoked")}, {}, {}, INSIDE),
        [grant_op(W_BERGEN, generation=2)],
    ),
    (
        "an-update-goes-to-the-property-of-the-grant",
        ({K1: W}, {K1: have(fingerprint="fp-0", generation=3)}, {}, {}, INSIDE),
        [update_op(W, generation=3)],
    ),
    (
        "revoke-of-a-later-generation",
        ({}, {K1: have(generation=2)}, {}, {}, INSIDE),
        [revoke_op(K1, generation=2)],
    ),
    (
        "reinstated-after-revocation-is-a-new-generation",
        ({K1: W}, {K1: have(state="revoked", generation=2)}, {}, {}, INSIDE),
        [grant_op(W, generation=3)],
    ),
    (
        "a-grant-that-may-have-been-made-is-repeated-in-its-generation",
        (
            {K1: W},
            {K1: have(state="revoked")},
            {},
            {K1: [sent_gen(("temporary", None), gen=2)]},
            INSIDE,
        ),
        [grant_op(W, generation=2)],
    ),
    (
        "a-lost-grant-at-the-old-property-is-recovered-there-first",
        ({K1: W_BERGEN}, {}, {K1: call("grant", "fp-new")}, {K1: [LOST]}, INSIDE),
        [recover_op(RECOVERY, supersedes=7)],
    ),
    (
        "a-refused-grant-at-the-old-property-needs-no-recovery",
        ({K1: W_BERGEN}, {}, {}, {K1: [REFUSED]}, INSIDE),
        [grant_op(W_BERGEN)],
    ),
    (
        "a-lost-grant-at-the-new-property-is-simply-repeated",
        ({K1: W_BERGEN}, {}, {}, {K1: [sent(("temporary", None), request=W_BERGEN)]}, INSIDE),
        [grant_op(W_BERGEN)],
    ),
    (
        "recovered-at-the-old-property-is-revoked-there",
        ({K1: W_BERGEN}, {K1: have(fingerprint=UNVERIFIED)}, {}, {}, INSIDE),
        [revoke_op(K1, settles=False)],
    ),
    (
        "a-lost-grant-before-the-window-moved-is-recovered",
        ({K1: W_LATER}, {}, {}, {K1: [LOST]}, INSIDE),
        [recover_op(RECOVERY)],
    ),
]


@pytest.mark.parametrize(
    ("case", "expected"), [pytest.param(c, e, id=name) for name, c, e in MOVE_CASES]
)
def test_plan_calls_each_grant_where_it_was_made(
    case: RecoveryCase, expected: list[Operation]
) -> None:
    desired, actual, pending, history, now = case

    assert plan(desired, actual, pending, now, history) == expected


def test_a_moved_stay_converges_revoke_then_grant() -> None:
    """Moved from oslo-1 to bergen-1: the old grant is revoked under oslo-1 (its own account),
    then a new generation is granted under bergen-1; nothing more after that."""
    actual = {K1: have()}
    first = plan({K1: W_BERGEN}, actual, {}, INSIDE)
    assert first == [revoke_op(K1, property_id=PROPERTY_ID, settles=False)]
    actual = {K1: have(state="revoked")}
    second = plan({K1: W_BERGEN}, actual, {}, INSIDE)
    assert second == [grant_op(W_BERGEN, generation=2)]
    assert second[0].target == Target(property_id=OTHER, generation=2)
    assert second[0].target.external_id(K1) == f"{K1}:#2"
    actual = {K1: have(fingerprint="fp-bergen", property_id=OTHER, generation=2)}
    assert plan({K1: W_BERGEN}, actual, {}, INSIDE) == []


@pytest.mark.parametrize(
    ("generation", "expected"),
    [(1, K1), (2, f"{K1}:#2"), (11, f"{K1}:#11")],
)
def test_external_id_of_each_generation(generation: int, expected: str) -> None:
    assert external_id(K1, generation) == expected


def test_no_stay_shares_an_external_id_with_another_stays_generation() -> None:
    """IDs may hold '#', never ':': stay "S1#2" can never pass for generation 2 of stay "S1"."""
    assert external_id(K1, 2) != external_id(f"{K1}#2", 1)
    assert external_id(K1, 2) != external_id(f"{K1}:#2".replace(":", ""), 1)


@pytest.mark.parametrize(
    ("history", "target", "expected"),
    [
        pytest.param([LOST], Target(property_id=PROPERTY_ID, generation=1), 1, id="same-grant"),
        pytest.param([LOST], Target(property_id=OTHER, generation=1), 0, id="other-property"),
        pytest.param([LOST], Target(property_id=PROPERTY_ID, generation=2), 0, id="other-gen"),
    ],
)
def test_attempts_toward_a_grant(history: list[GrantCall], target: Target, expected: int) -> None:
    assert len(attempts_toward(history, target)) == expected


@pytest.mark.parametrize(
    ("status", "grant_account", "called", "believed"),
    [
        pytest.param(200, "acct-a", "acct-b", True, id="revoked-with-200"),
        pytest.param(404, "acct-a", "acct-a", True, id="gone-in-its-own-account"),
        pytest.param(404, None, "acct-a", True, id="stored-before-accounts-were-kept"),
        pytest.param(404, "acct-a", "acct-b", False, id="404-from-another-account"),
    ],
)
def test_revocation_believed(
    status: int, grant_account: str | None, called: str, believed: bool
) -> None:
    assert (
        revocation_believed(http_status=status, grant_account=grant_account, called_account=called)
        is believed
    )


# --- an update or revocation that may have happened, though its answer never came ----------

LOST_ANSWER = (earlier("temporary", None),)  # no answer: Inlet may have acted
REFUSED_503 = (earlier("temporary", 503),)  # a server error: it may have acted too
REFUSED_4XX = (earlier("permanent", 400),)  # refused: Inlet did nothing


def unheard(
    operation: str, attempts: tuple[EarlierGrantAttempt, ...], status: str = "queued"
) -> PendingCall:
    return msgspec.structs.replace(call(operation, "fp-other", status), attempts=attempts)


UNHEARD_CASES: list[tuple[str, PlanCase, list[Operation]]] = [
    (
        "a-revoke-that-may-have-happened-is-not-withdrawn-when-the-stay-is-back",
        ({K1: W}, {K1: have()}, {K1: unheard("revoke", LOST_ANSWER)}, INSIDE),
        [],
    ),
    (
        "nor-after-a-server-error",
        ({K1: W}, {K1: have()}, {K1: unheard("revoke", REFUSED_503)}, INSIDE),
        [],
    ),
    (
        "a-revoke-refused-with-a-4xx-is-withdrawn-as-before",
        ({K1: W}, {K1: have()}, {K1: unheard("revoke", REFUSED_4XX)}, INSIDE),
        [cancel_op(K1, supersedes=7)],
    ),
    (
        "an-update-that-may-have-happened-is-replaced-by-the-desired-content",
        ({K1: W}, {K1: have()}, {K1: unheard("update", LOST_ANSWER)}, INSIDE),
        [msgspec.structs.replace(update_op(W, supersedes=7), doubt=UNVERIFIED)],
    ),
    (
        "an-update-refused-is-withdrawn-as-before",
        ({K1: W}, {K1: have()}, {K1: unheard("update", REFUSED_4XX)}, INSIDE),
        [cancel_op(K1, supersedes=7)],
    ),
    (
        "a-revoke-of-an-update-that-may-have-happened-records-the-doubt",
        ({}, {K1: have()}, {K1: unheard("update", LOST_ANSWER)}, INSIDE),
        [msgspec.structs.replace(revoke_op(K1, supersedes=7), doubt=UNVERIFIED)],
    ),
    (
        "a-grant-whose-revocation-is-in-doubt-is-revoked-for-certain",
        ({K1: W}, {K1: have(fingerprint=REVOCATION_DOUBT)}, {}, INSIDE),
        [revoke_op(K1, settles=False)],  # the stay is granted again after it
    ),
    (
        "not-while-that-revocation-waits-for-a-person",
        (
            {K1: W},
            {K1: have(fingerprint=REVOCATION_DOUBT)},
            {K1: unheard("revoke", LOST_ANSWER, "escalated")},
            INSIDE,
        ),
        [],
    ),
    (
        "a-grant-whose-update-gave-up-unheard-is-updated-to-the-desired-content",
        ({K1: W}, {K1: have(fingerprint=UNVERIFIED)}, {}, INSIDE),
        [update_op(W)],
    ),
]


@pytest.mark.parametrize(
    ("case", "expected"), [pytest.param(c, e, id=name) for name, c, e in UNHEARD_CASES]
)
def test_plan_never_forgets_what_an_unanswered_call_may_have_done(
    case: PlanCase, expected: list[Operation]
) -> None:
    desired, actual, pending, now = case

    assert plan(desired, actual, pending, now) == expected


@pytest.mark.parametrize(
    ("operation", "reason", "attempts", "doubt"),
    [
        ("update", "booking", LOST_ANSWER, UNVERIFIED),
        ("update", "resync", REFUSED_503, UNVERIFIED),
        ("update", "booking", REFUSED_4XX, None),
        ("revoke", "booking", LOST_ANSWER, REVOCATION_DOUBT),
        ("revoke", "booking", (earlier(None, None),), REVOCATION_DOUBT),  # a worker died
        ("revoke", "booking", REFUSED_4XX, None),
        ("grant", "booking", LOST_ANSWER, None),  # its history says it
        ("grant", "recover", LOST_ANSWER, None),
    ],
)
def test_doubt_after_give_up(
    operation: str, reason: str, attempts: tuple[EarlierGrantAttempt, ...], doubt: str | None
) -> None:
    assert (
        doubt_after_give_up(
            operation=operation,  # type: ignore[arg-type]
            reason=reason,
            attempts=attempts,
        )
        == doubt
    )
