"""What goes into the retry table, and what a success records: tables of cases for the pure
decisions of inlet_bridge/domain/calls.py."""

from __future__ import annotations

from datetime import datetime

import pytest

from inlet_bridge.domain.calls import (
    NewCall,
    Superseded,
    after_success,
    new_calls,
    stored_operation,
)
from inlet_bridge.domain.changes import Access
from inlet_bridge.domain.plan import UNVERIFIED, EarlierGrantAttempt, Operation
from tests.unit.domain_cases import ARRIVAL, PROPERTY_ID
from tests.unit.test_plan import (
    INSIDE,
    K1,
    RECOVERY,
    W,
    cancel_op,
    grant_op,
    recover_op,
    revoke_op,
    update_op,
)

AFTER_ARRIVAL = ARRIVAL.replace(hour=ARRIVAL.hour + 1)


def queued(
    operation: str,
    *,
    reason: str = "booking",
    request: object = W,
    priority: int,
    deadline: datetime | None,
    resync_id: int | None = None,
    generation: int = 1,
    settles: bool = True,
) -> NewCall:
    return NewCall(
        grant_key=K1,
        operation=operation,  # type: ignore[arg-type]
        reason=reason,  # type: ignore[arg-type]
        request=request,  # type: ignore[arg-type]
        fingerprint=getattr(request, "fingerprint", ""),
        priority=priority,
        deadline=deadline,
        resync_id=resync_id,
        property_id=PROPERTY_ID,
        generation=generation,
        external_id=K1 if generation == 1 else f"{K1}:#{generation}",
        settles=settles,
    )


RESYNC_7 = {7: Superseded(call_id=7, reason="resync", resync_id=42)}
BOOKING_7 = {7: Superseded(call_id=7, reason="booking", resync_id=None)}

CASES: list[tuple[str, Operation, dict[int, Superseded], datetime, list[NewCall]]] = [
    (
        "grant-before-arrival-has-a-deadline",
        grant_op(W),
        {},
        INSIDE,
        [queued("grant", priority=2, deadline=ARRIVAL)],
    ),
    (
        "update-during-the-stay-has-none",
        update_op(W),
        {},
        AFTER_ARRIVAL,
        [queued("update", priority=1, deadline=None)],
    ),
    (
        "revoke-first-no-request",
        revoke_op(K1),
        {},
        INSIDE,
        [queued("revoke", request=None, priority=0, deadline=None)],
    ),
    (
        "recovery-is-a-contact-free-grant-as-urgent-as-a-revoke",
        recover_op(RECOVERY),
        {},
        INSIDE,
        [
            queued(
                "grant",
                reason="recover",
                request=RECOVERY,
                priority=0,
                deadline=None,
                settles=False,  # the revocation follows
            )
        ],
    ),
    (
        "a-grant-replacing-a-resync-still-owes-the-new-code",
        grant_op(W, supersedes=7),
        RESYNC_7,
        INSIDE,
        [queued("grant", reason="resync", priority=2, deadline=ARRIVAL, resync_id=42)],
    ),
    (
        "a-revoke-replacing-a-resync-owes-nothing",
        revoke_op(K1, supersedes=7),
        RESYNC_7,
        INSIDE,
        [queued("revoke", request=None, priority=0, deadline=None)],
    ),
    (
        "replacing-a-booking-call",
        update_op(W, supersedes=7),
        BOOKING_7,
        INSIDE,
        [queued("update", priority=1, deadline=ARRIVAL)],
    ),
    (
        "a-later-generation",
        grant_op(W, generation=3),
        {},
        INSIDE,
        [queued("grant", priority=2, deadline=ARRIVAL, generation=3)],
    ),
    ("a-cancel-queues-nothing", cancel_op(K1, supersedes=7), BOOKING_7, INSIDE, []),
]


@pytest.mark.parametrize(
    ("operation", "superseded", "now", "expected"),
    [pytest.param(o, s, n, e, id=name) for name, o, s, n, e in CASES],
)
def test_new_calls(
    operation: Operation,
    superseded: dict[int, Superseded],
    now: datetime,
    expected: list[NewCall],
) -> None:
    assert new_calls([operation], superseded, now) == expected


@pytest.mark.parametrize(
    ("operation", "reason", "expected"),
    [
        ("grant", "booking", "grant"),
        ("grant", "resync", "grant"),
        ("grant", "recover", "recover"),
        ("update", "resync", "update"),
        ("revoke", "booking", "revoke"),
    ],
)
def test_stored_operation(operation: str, reason: str, expected: str) -> None:
    assert stored_operation(operation, reason) == expected


def test_an_unknown_stored_operation_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown call operation"):
        stored_operation("delete", "booking")


CODE = Access(reference_id="ref-1", code="1234", code_formatted="#1234*", link="https://l")
LOST = EarlierGrantAttempt(fingerprint="fp-old", outcome="temporary", http_status=None)
SAME_LOST = EarlierGrantAttempt(fingerprint="fp-new", outcome="temporary", http_status=None)
REFUSED = EarlierGrantAttempt(fingerprint="fp-old", outcome="permanent", http_status=400)


@pytest.mark.parametrize(
    ("operation", "reason", "had_reference", "earlier", "fingerprint", "unverified", "tell"),
    [
        pytest.param("grant", "booking", False, [], "fp-new", False, True, id="first-grant"),
        pytest.param(
            "grant", "booking", False, [LOST], UNVERIFIED, True, True, id="after-a-lost-grant"
        ),
        pytest.param(
            "grant", "booking", False, [SAME_LOST], "fp-new", False, True, id="same-content"
        ),
        pytest.param("grant", "booking", False, [REFUSED], "fp-new", False, True, id="refused"),
        pytest.param("grant", "resync", False, [], "fp-new", False, True, id="resync-grant"),
        pytest.param(
            "update", "booking", True, [LOST], "fp-new", False, True, id="update-shows-content"
        ),
        pytest.param(
            "update", "booking", False, [LOST], UNVERIFIED, True, True, id="update-without-ref"
        ),
        pytest.param("revoke", "booking", True, [LOST], "fp-new", False, True, id="revoke"),
        pytest.param(
            "grant", "recover", False, [LOST], UNVERIFIED, False, False, id="recovery-is-quiet"
        ),
    ],
)
def test_after_success(
    operation: str,
    reason: str,
    had_reference: bool,
    earlier: list[EarlierGrantAttempt],
    fingerprint: str,
    unverified: bool,
    tell: bool,
) -> None:
    record = after_success(
        operation=operation,  # type: ignore[arg-type]
        reason=reason,
        sent_fingerprint="fp-new",
        had_reference=had_reference,
        returned=CODE,
        earlier=earlier,
    )

    assert (record.fingerprint, record.unverified, record.tell_sinks) == (
        fingerprint,
        unverified,
        tell,
    )
    if reason == "recover":
        # its code was never the guest's, nor the PMS's to show: only the reference is kept
        assert record.access == Access(
            reference_id="ref-1", code=None, code_formatted=None, link=None
        )
    else:
        assert record.access == CODE
