"""Whether a successful call's booking is planned again (docs/architecture.md rule 17): only
when the plan that queued the call provably has nothing new to do is the second look skipped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from inlet_bridge.domain.calls import (
    BookingPlans,
    CallPlanned,
    SuccessRecord,
    needs_look_after_success,
)
from inlet_bridge.domain.changes import Access
from inlet_bridge.domain.plan import UNVERIFIED

QUEUED_AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
LATER = QUEUED_AT + timedelta(seconds=1)


def record(fingerprint: str = "fp-1") -> SuccessRecord:
    return SuccessRecord(
        access=Access(reference_id="ref-1", code="1234", code_formatted=None, link=None),
        fingerprint=fingerprint,
        unverified=fingerprint == UNVERIFIED,
        tell_sinks=True,
    )


SETTLES = CallPlanned(settles=True, planned_in=3, created_at=QUEUED_AT)
SAME_PLAN = BookingPlans(plans=3, reconciled_at=QUEUED_AT)

CASES = [
    # (id, operation, reason, record, http status, planned, booking, look again?)
    ("a-grant-as-planned-settles", "grant", "booking", record(), 200, SETTLES, SAME_PLAN, False),
    ("an-update-as-planned-settles", "update", "booking", record(), 200, SETTLES, SAME_PLAN, False),
    (
        "a-confirmed-revocation-settles",
        "revoke",
        "booking",
        record(""),
        200,
        SETTLES,
        SAME_PLAN,
        False,
    ),
    ("a-404-revocation-settles", "revoke", "booking", record(""), 404, SETTLES, SAME_PLAN, False),
    (
        "an-unverified-grant-needs-its-update",
        "grant",
        "booking",
        record(UNVERIFIED),
        200,
        SETTLES,
        SAME_PLAN,
        True,
    ),
    (
        "a-recovery-needs-its-revocation",
        "grant",
        "recover",
        record(UNVERIFIED),
        200,
        SETTLES,
        SAME_PLAN,
        True,
    ),
    (
        "a-revocation-never-sent-leaves-the-history-open",
        "revoke",
        "booking",
        record(""),
        None,
        SETTLES,
        SAME_PLAN,
        True,
    ),
    (
        "a-call-that-does-not-settle",
        "revoke",
        "booking",
        record(""),
        200,
        CallPlanned(settles=False, planned_in=3, created_at=QUEUED_AT),
        SAME_PLAN,
        True,
    ),
    (
        "a-call-queued-outside-a-plan",
        "update",
        "resync",
        record(),
        200,
        CallPlanned(settles=False, planned_in=None, created_at=QUEUED_AT),
        SAME_PLAN,
        True,
    ),
    ("nothing-known-of-the-plan", "grant", "booking", record(), 200, None, SAME_PLAN, True),
    (
        "a-plan-came-after-the-call",
        "grant",
        "booking",
        record(),
        200,
        SETTLES,
        BookingPlans(plans=4, reconciled_at=LATER),
        True,
    ),
    (
        "an-older-release-reconciled-after-the-call",
        "grant",
        "booking",
        record(),
        200,
        SETTLES,
        BookingPlans(plans=3, reconciled_at=LATER),
        True,
    ),
    (
        "no-booking-row",
        "grant",
        "booking",
        record(),
        200,
        SETTLES,
        BookingPlans(plans=-1, reconciled_at=None),
        True,
    ),
]


@pytest.mark.parametrize(
    ("operation", "reason", "rec", "status", "planned", "booking", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_needs_look_after_success(
    operation: str,
    reason: str,
    rec: SuccessRecord,
    status: int | None,
    planned: CallPlanned | None,
    booking: BookingPlans,
    expected: bool,
) -> None:
    look = needs_look_after_success(
        operation=operation,  # type: ignore[arg-type]
        reason=reason,
        record=rec,
        http_status=status,
        planned=planned,
        booking=booking,
    )
    assert look is expected
