"""Stored events are read leniently and upcast from older schema versions: the log can never be
rewritten, so what the API accepts today must never decide whether an old row is readable."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from inlet_bridge.domain.decoding import decode_event
from inlet_bridge.domain.stored import CURRENT_VERSION, UnknownEventVersion, decode_stored_event
from inlet_bridge.domain.wire import BookingEventIn

ROW: dict[str, Any] = {
    "event_id": "e1",
    "source": "acme-pms",
    "occurred_at": "2026-11-22T10:00:00+00:00",
    "booking": {
        "booking_id": "R-1",
        "property_id": "oslo-1",
        "stays": [
            {
                "stay_id": "S1",
                "resource_id": "101",
                "arrival": "2026-11-23T15:00:00+01:00",
                "departure": "2026-11-25T11:00:00+01:00",
                "guests": [{"name": "Ola " + "N" * 300, "email": "ola@example.no"}],
            }
        ],
        "legacy_channel": "fax",  # a field the API has never accepted or no longer does
    },
}


def test_a_row_the_api_would_refuse_today_is_still_read() -> None:
    raw = msgspec.json.encode(ROW)
    assert isinstance(decode_event(raw), list)  # the API refuses it: too long, unknown field

    event = decode_stored_event(raw, CURRENT_VERSION)

    assert not isinstance(event, BookingEventIn)
    assert event.booking.stays[0].guests[0].name.startswith("Ola NNN")
    assert event.booking.stays[0].resource_id == "101"


def test_a_row_of_a_newer_version_is_refused_not_guessed_at() -> None:
    with pytest.raises(UnknownEventVersion, match=f"version {CURRENT_VERSION + 1}"):
        decode_stored_event(msgspec.json.encode(ROW), CURRENT_VERSION + 1)


def test_old_versions_are_upcast_one_step_at_a_time() -> None:
    """A v1 row read by code whose current shape is v3: v1 -> v2 renamed `room` to
    `resource_id`, v2 -> v3 dropped a field; the steps run in order."""
    old = {**ROW, "booking": {**ROW["booking"], "stays": [dict(ROW["booking"]["stays"][0])]}}
    old["booking"]["stays"][0]["room"] = old["booking"]["stays"][0].pop("resource_id")
    steps: list[int] = []

    def v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
        steps.append(1)
        for stay in data["booking"]["stays"]:
            stay["resource_id"] = stay.pop("room")
        return data

    def v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
        steps.append(2)
        data["booking"].pop("legacy_channel", None)
        return data

    event = decode_stored_event(
        msgspec.json.encode(old), 1, current=3, upcasters={1: v1_to_v2, 2: v2_to_v3}
    )

    assert steps == [1, 2]
    assert event.booking.stays[0].resource_id == "101"
    with pytest.raises(UnknownEventVersion, match="no upcaster from event schema version 2"):
        decode_stored_event(msgspec.json.encode(old), 1, current=3, upcasters={1: v1_to_v2})
