"""openapi.yaml documents the webhooks a PMS receives, and real payloads fit the schema."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import get_args

import jsonschema
import msgspec
import pytest

from inlet_bridge.domain.changes import AccessChange, AccessChangeData, ChangeKind

from .test_openapi import SPEC, validator

AT = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
DATA = AccessChangeData(
    source="demo-pms",
    booking_id="R-1001",
    stay_id="S1",
    grant_key="demo-pms:R-1001:S1",
    property_id="oslo-1",
    state="active",
    access_points=("L-101", "MAIN-ENTRANCE"),
    valid_from=AT,
    valid_to=AT,
    reference_id="ref-1",
    code="1234",
    code_formatted="#1234*",
    link="https://example.invalid/a/x",
    message="Access granted",
)


def test_every_change_type_is_a_documented_webhook() -> None:
    assert set(SPEC["webhooks"]) == set(get_args(ChangeKind))


@pytest.mark.parametrize(
    "change",
    [
        AccessChange(type="access.granted", timestamp=AT, data=DATA),
        AccessChange(
            type="access.updated",
            timestamp=AT,
            data=msgspec.structs.replace(DATA, previous_code_formatted="#9999*"),
        ),
        AccessChange(
            type="access.revoke_failed",
            timestamp=AT,
            data=msgspec.structs.replace(DATA, state="revoke_failed", reason="revoke:max_duration"),
        ),
        AccessChange(
            type="access.grant_failed",
            timestamp=AT,
            data=AccessChangeData(
                source="demo-pms",
                booking_id="R-1001",
                stay_id="S1",
                grant_key="demo-pms:R-1001:S1",
                property_id="oslo-1",
                state="grant_failed",
                reason="grant:permanent_error",
                message="Lock offline",
            ),
        ),
        AccessChange(
            type="access.failed",
            timestamp=AT,
            data=msgspec.structs.replace(DATA, state="escalated", reason="grant:max_duration"),
        ),
    ],
    ids=["granted", "updated", "revoke-failed", "grant-failed", "failed-of-earlier-releases"],
)
def test_payload_fits_the_documented_schema(change: AccessChange) -> None:
    payload = msgspec.json.decode(msgspec.json.encode(change))
    validator("/components/schemas/AccessChange").validate(payload)


def test_an_unknown_field_would_be_caught() -> None:
    payload = msgspec.json.decode(
        msgspec.json.encode(AccessChange(type="access.revoked", timestamp=AT, data=DATA))
    )
    payload["data"]["colour"] = "red"
    with pytest.raises(jsonschema.ValidationError):
        validator("/components/schemas/AccessChange").validate(payload)
