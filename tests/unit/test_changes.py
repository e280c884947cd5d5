"""The "access changed" records and their sinks, as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from inlet_bridge.domain.access import DesiredGrant
from inlet_bridge.domain.changes import (
    Access,
    CallFacts,
    change_after_failure,
    change_after_success,
    sinks_for,
)
from inlet_bridge.properties import load_properties

AT = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
DESIRED = DesiredGrant(
    grant_key="pms:R1:S1",
    source="pms",
    booking_id="R1",
    stay_id="S1",
    property_id="oslo-1",
    resource_id="101",
    operation="code",
    access_points=("L-101",),
    valid_from=AT,
    valid_to=AT,
    guest_name=None,
    email=None,
    phone=None,
    notify=False,
    send_after=AT,
    fingerprint="f",
)


def facts(operation: str) -> CallFacts:
    return CallFacts(
        operation=operation,  # type: ignore[arg-type]
        source="pms",
        booking_id="R1",
        grant_key="pms:R1:S1",
        property_id="oslo-1",
        reference_id="ref-1" if operation != "grant" else None,
        desired=DESIRED if operation != "revoke" else None,
    )


OLD = Access(reference_id="ref-1", code="1111", code_formatted="#1111*", link="L1")
NEW = Access(reference_id="ref-1", code="2222", code_formatted="#2222*", link="L2")
NOTHING = Access(reference_id=None, code=None, code_formatted=None, link=None)


@pytest.mark.parametrize(
    ("operation", "returned", "previous", "kind", "code", "replaced"),
    [
        ("grant", NEW, None, "access.granted", "#2222*", None),
        ("update", NEW, OLD, "access.updated", "#2222*", "#1111*"),
        ("update", NOTHING, OLD, "access.updated", "#1111*", None),
        ("update", OLD, OLD, "access.updated", "#1111*", None),
        ("revoke", NOTHING, OLD, "access.revoked", None, "#1111*"),
    ],
    ids=["grant", "new-code", "code-kept-when-not-returned", "same-code", "revoke"],
)
def test_change_after_success(
    operation: str,
    returned: Access,
    previous: Access | None,
    kind: str,
    code: str | None,
    replaced: str | None,
) -> None:
    change = change_after_success(
        facts(operation), message="ok", at=AT, returned=returned, previous=previous
    )
    assert change.type == kind
    assert change.data.code_formatted == code
    assert change.data.previous_code_formatted == replaced
    assert change.data.code_is_new == (
        code is not None and code != (previous.code_formatted if previous else None)
    )
    assert change.data.stay_id == "S1"
    assert change.data.state == ("revoked" if operation == "revoke" else "active")


HELD = Access(
    reference_id="ref-1",
    code="1111",
    code_formatted="#1111*",
    link="L1",
    active=True,
    access_points=("L-101", "MAIN"),
    valid_from=AT,
    valid_to=AT.replace(day=25),
)
GONE = msgspec.structs.replace(HELD, active=False)


@pytest.mark.parametrize(
    ("operation", "recovery", "held", "kind", "state", "doors", "code"),
    [
        # a failed revocation names what may still open: the doors, until when, the code
        ("revoke", False, HELD, "access.revoke_failed", "revoke_failed", ("L-101", "MAIN"), "1111"),
        # a failed recovery: the doors and times of the request that may have made a grant
        ("grant", True, GONE, "access.revoke_failed", "revoke_failed", ("L-101",), None),
        ("grant", True, None, "access.revoke_failed", "revoke_failed", ("L-101",), None),
        # a failed update: the previous access still works, unchanged
        ("update", False, HELD, "access.update_failed", "update_failed", ("L-101", "MAIN"), "1111"),
        # a failed grant: nothing works
        ("grant", False, None, "access.grant_failed", "grant_failed", (), None),
        ("grant", False, GONE, "access.grant_failed", "grant_failed", (), None),
    ],
    ids=["revoke", "recovery", "recovery-first", "update", "grant", "grant-after-revoked"],
)
def test_change_after_failure_says_what_may_still_work(
    operation: str,
    recovery: bool,
    held: Access | None,
    kind: str,
    state: str,
    doors: tuple[str, ...],
    code: str | None,
) -> None:
    call = msgspec.structs.replace(
        facts(operation), recovery=recovery, desired=None if operation == "revoke" else DESIRED
    )

    change = change_after_failure(
        call, message="Lock offline", at=AT, reason="max_duration", held=held
    )

    assert (change.type, change.data.state) == (kind, state)
    assert change.data.reason == f"{operation}:max_duration"
    assert change.data.access_points == doors
    assert change.data.code == code
    if doors:
        assert change.data.valid_to is not None
    else:
        assert change.data.valid_to is None


def test_sinks_follow_the_configuration() -> None:
    demo = Path(__file__).resolve().parents[2] / "inlet_bridge" / "demo" / "properties.toml"
    env = {"DEMO_PMS_TOKEN": "t", "DEMO_PMS_WEBHOOK_SECRET": "s", "INLET_API_KEY_OSLO_1": "k"}
    hotels = load_properties(demo, env)
    assert sinks_for("demo-pms", hotels) == []
    source = msgspec.structs.replace(hotels.sources["demo-pms"], webhook_url="http://pms.invalid/h")
    with_hook = msgspec.structs.replace(hotels, sources={"demo-pms": source})
    assert sinks_for("demo-pms", with_hook) == ["webhook:demo-pms"]
    assert sinks_for("unknown", with_hook) == []
