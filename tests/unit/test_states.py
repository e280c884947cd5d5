"""What state is a stay's access in? A table of cases for `grant_state`."""

from __future__ import annotations

import pytest

from inlet_bridge.domain.plan import ActualGrant, PendingCall
from inlet_bridge.domain.states import GRANT_STATES, MAY_OPEN, GrantState, grant_state
from tests.unit.test_plan import call, have

ACTIVE = have()
REVOKED = have(state="revoked")


def pending(operation: str, status: str = "queued") -> PendingCall:
    return call(operation, status=status)


CASES: list[tuple[str, bool, ActualGrant | None, PendingCall | None, GrantState]] = [
    ("wanted-not-sent-yet", True, None, None, "pending"),
    ("never-wanted", False, None, None, "none"),
    ("grant-queued", True, None, pending("grant"), "granting"),
    ("grant-in-flight", True, None, pending("grant", "in_flight"), "granting"),
    ("held-as-wanted", True, ACTIVE, None, "active"),
    ("update-queued", True, ACTIVE, pending("update"), "updating"),
    (
        "regrant-of-an-active-grant-in-flight",
        True,
        ACTIVE,
        pending("grant", "in_flight"),
        "updating",
    ),
    ("revoke-queued", False, ACTIVE, pending("revoke"), "revoking"),
    ("recovery-in-flight", False, None, pending("recover", "in_flight"), "revoking"),
    ("revoked", False, REVOKED, None, "revoked"),
    ("reinstated-waiting-for-its-window", True, REVOKED, None, "pending"),
    ("grant-gave-up", True, None, pending("grant", "escalated"), "grant_failed"),
    ("update-gave-up", True, ACTIVE, pending("update", "escalated"), "update_failed"),
    ("revoke-gave-up", False, ACTIVE, pending("revoke", "escalated"), "revoke_failed"),
    ("recovery-gave-up", False, None, pending("recover", "escalated"), "revoke_failed"),
    (
        "revoke-gave-up-while-wanted-again",
        True,
        ACTIVE,
        pending("revoke", "escalated"),
        "revoke_failed",
    ),
    ("grant-gave-up-but-no-longer-wanted", False, None, pending("grant", "escalated"), "none"),
    (
        "grant-gave-up-no-longer-wanted-held",
        False,
        REVOKED,
        pending("grant", "escalated"),
        "revoked",
    ),
]


@pytest.mark.parametrize(
    ("wanted", "held", "unsettled", "expected"),
    [pytest.param(w, h, c, e, id=name) for name, w, h, c, e in CASES],
)
def test_grant_state(
    wanted: bool, held: ActualGrant | None, unsettled: PendingCall | None, expected: GrantState
) -> None:
    assert grant_state(wanted=wanted, held=held, call=unsettled) == expected


def test_every_state_is_reachable_and_listed() -> None:
    assert {expected for *_, expected in CASES} == set(GRANT_STATES)


def test_a_failed_revocation_is_never_reported_as_access_gone() -> None:
    """Whatever is wanted, a revocation that gave up says the code may still open doors."""
    for wanted in (False, True):
        for held in (ACTIVE, None):
            state = grant_state(wanted=wanted, held=held, call=pending("revoke", "escalated"))
            assert state == "revoke_failed"
            assert state in MAY_OPEN
