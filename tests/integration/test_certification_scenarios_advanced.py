"""Inlet PMS certification, sections 4 to 6, end to end: multi-room and group bookings, codes
ahead of arrival for groups, common doors and their capacity, meeting rooms, who is messaged
per booking type, invalid contact details that never block access, and invalid booking data.
Failed calls and cancellations, retried and escalated, are in test_access_flow.py."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ..support import BEARER, START, Harness, bodies, event, harness, send, stay

MINUTE = timedelta(minutes=1)
_event_ids = itertools.count(1_000)  # ids of events this module builds itself
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
SCENARIOS = str(Path(__file__).with_name("properties_scenarios.toml"))
OLA = {"name": "Ola Nordmann", "email": "ola@example.no", "phone": "+4791234567"}
KARI = {"name": "Kari Hansen", "email": "kari@example.no", "phone": "+4741234567"}
PER = {"name": "Per Olsen", "email": "per@example.no", "phone": "+4792345678"}
LEADER = {"name": "Tour Leader", "email": "leader@example.no", "phone": "+4790000001"}


@pytest.fixture
def h(h_every_reading: Harness) -> Harness:
    """Every scenario runs under each reading of what Inlet does not publish."""
    return h_every_reading


async def messages(h: Harness) -> list[dict[str, Any]]:
    return list(await h.sandbox_json("/_sandbox/messages"))


async def active(h: Harness) -> dict[str, dict[str, Any]]:
    """The grants Inlet holds, by externalId."""
    return {g["externalId"]: g for g in await h.grants() if g["state"] == "active"}


async def test_4_1_three_rooms_get_three_grants_whose_codes_never_mix(h: Harness) -> None:
    arrival = START + 2 * HOUR
    during = arrival + HOUR
    rooms = {"S1": ("101", "L-101", OLA), "S2": ("201", "L-201", KARI), "S3": ("202", "L-202", PER)}
    stays = [
        stay(stay_id, resource_id=resource, arrival=arrival, guests=[guest])
        for stay_id, (resource, _, guest) in rooms.items()
    ]
    await send(h, "G-41", stays, booking_type="group", communication="guest", organizer=LEADER)

    held = await active(h)
    keys = {stay_id: f"demo-pms:G-41:{stay_id}" for stay_id in rooms}
    assert sorted(held) == sorted(keys.values())
    codes = {stay_id: held[key]["code"] for stay_id, key in keys.items()}
    assert len(set(codes.values())) == 3
    for stay_id, code in codes.items():
        for other, (_, lock, _) in rooms.items():
            assert await h.opens(code, lock, during) == (other == stay_id), (stay_id, lock)
        assert await h.opens(code, "MAIN-ENTRANCE", during)
        assert await h.opens(code, "FLOOR-2", during) == (stay_id != "S1")

    # Each grant is traceable to its stay and room; each guest is sent their own room's code.
    stored = await h.rows("SELECT grant_key, stay_id, resource_id, code FROM grants")
    assert {r["grant_key"]: (r["stay_id"], r["resource_id"], r["code"]) for r in stored} == {
        keys[s]: (s, rooms[s][0], codes[s]) for s in rooms
    }
    sent_codes = {(m["recipient"], m["code"]) for m in await messages(h)}
    assert sent_codes == {
        (contact, codes[s])
        for s, (_, _, guest) in rooms.items()
        for contact in (guest["email"], guest["phone"])
    }

    # One stay of the group cancelled: its grant is revoked, the other two are untouched.
    stays[1]["status"] = "cancelled"
    await send(h, "G-41", stays, booking_type="group", communication="guest", organizer=LEADER)
    revokes = await bodies(h, "/RevokeAccess")
    assert [b["ReferenceId"] for b in revokes] == [held[keys["S2"]]["ReferenceId"]]
    assert await bodies(h, "/UpdateAccess") == []
    assert not await h.opens(codes["S2"], "L-201", during)
    assert await h.opens(codes["S1"], "L-101", during)
    assert await h.opens(codes["S3"], "L-202", during)
    states = await h.rows("SELECT stay_id, state FROM grants ORDER BY stay_id")
    assert [(r["stay_id"], r["state"]) for r in states] == [
        ("S1", "active"),
        ("S2", "revoked"),
        ("S3", "active"),
    ]


async def test_4_2_group_codes_come_72_hours_ahead_while_private_bookings_wait_for_24(
    h: Harness,
) -> None:
    arrival = START + 60 * HOUR
    group_stays = [
        stay("S1", arrival=arrival, guests=[OLA]),
        stay("S2", resource_id="102", arrival=arrival, guests=[KARI]),
    ]
    await send(h, "G-42", group_stays, booking_type="group", organizer=LEADER)
    await send(h, "P-42", [stay(arrival=arrival)])
    far = START + 80 * HOUR
    await send(h, "G-80", [stay(arrival=far)], booking_type="group", organizer=LEADER)

    # The group's codes exist now, 60 h ahead, and are stored for the organizer to hand out.
    assert sorted(b["externalId"] for b in await bodies(h, "/GrantAccess")) == [
        "demo-pms:G-42:S1",
        "demo-pms:G-42:S2",
    ]
    held = await active(h)
    stored = await h.rows("SELECT grant_key, code FROM grants WHERE booking_id = 'G-42'")
    assert {r["grant_key"]: r["code"] for r in stored} == {k: g["code"] for k, g in held.items()}
    timeline = await h.timeline("G-42")
    assert sorted(g["code"] for g in timeline["grants"]) == sorted(g["code"] for g in held.values())
    # The codes work only from arrival.
    code = held["demo-pms:G-42:S1"]["code"]
    assert not await h.opens(code, "L-101", h.clock.now())
    assert await h.opens(code, "L-101", arrival)

    # The private booking waits for its 24 h window; a group never goes more than 72 h ahead.
    due = await h.rows("SELECT booking_id, due_at FROM bookings ORDER BY booking_id")
    assert {r["booking_id"]: r["due_at"] for r in due if r["booking_id"] != "G-42"} == {
        "G-80": far - 72 * HOUR,
        "P-42": arrival - 24 * HOUR,
    }
    await h.advance(36 * HOUR)
    granted = [b["bookingId"] for b in await bodies(h, "/GrantAccess")]
    assert sorted(granted[2:]) == ["G-80", "P-42"]


async def test_4_3_common_doors_open_during_the_stay_and_close_on_end_or_cancellation(
    h: Harness,
) -> None:
    arrival = START + 2 * HOUR
    departure = arrival + 2 * DAY
    await send(h, "R-43", [stay(arrival=arrival)])
    await send(h, "R-44", [stay(resource_id="102", arrival=arrival, guests=[KARI])])
    held = await active(h)
    staying = held["demo-pms:R-43:S1"]["code"]
    cancelling = held["demo-pms:R-44:S1"]["code"]
    for code in (staying, cancelling):
        for door in ("MAIN-ENTRANCE", "NIGHT-ENTRANCE"):
            assert await h.opens(code, door, arrival)
            assert not await h.opens(code, door, arrival - MINUTE)
            assert not await h.opens(code, door, departure)
        assert not await h.opens(code, "FLOOR-2", arrival)  # not a door of rooms 101 and 102

    await send(h, "R-44", [stay(resource_id="102", arrival=arrival, status="cancelled")])
    assert not await h.opens(cancelling, "MAIN-ENTRANCE", arrival + HOUR)
    assert await h.opens(staying, "MAIN-ENTRANCE", arrival + HOUR)

    await h.advance(departure - h.clock.now())
    assert len(await bodies(h, "/RevokeAccess")) == 2
    assert not await h.opens(staying, "MAIN-ENTRANCE", departure - HOUR)


async def test_4_3_a_full_door_is_left_out_and_escalated(database_url: str) -> None:
    async with harness(database_url, PROPERTIES_FILE=SCENARIOS) as h:
        arrival = START + 2 * HOUR
        during = arrival + HOUR
        await send(h, "A-1", [stay(arrival=arrival)], property_id="oslo-small")
        await send(
            h,
            "B-1",
            [stay(resource_id="102", arrival=arrival, guests=[KARI])],
            property_id="oslo-small",
        )
        held = {g["bookingId"]: g for g in (await active(h)).values()}
        assert held["A-1"]["locks"] == ["L-101", "MAIN-ENTRANCE"]
        assert held["B-1"]["locks"] == ["L-102"]  # access without the full door
        assert await h.opens(held["A-1"]["code"], "MAIN-ENTRANCE", during)
        assert await h.opens(held["B-1"]["code"], "L-102", during)
        assert not await h.opens(held["B-1"]["code"], "MAIN-ENTRANCE", during)
        assert {m["recipient"] for m in await messages(h)} >= {"kari@example.no"}
        escalations = await h.rows(
            "SELECT booking_id, reason, severity, resolved_at FROM escalations"
        )
        assert escalations == [
            {
                "booking_id": "B-1",
                "reason": "door_capacity",
                "severity": "high",
                "resolved_at": None,
            }
        ]

        # The door frees when A-1 is cancelled: the revocation marks B-1, which gets it at once.
        await send(h, "A-1", [stay(arrival=arrival, status="cancelled")], property_id="oslo-small")
        await h.settle()
        assert await h.runtime.reconciler.sweep() == 0
        assert (await active(h))["demo-pms:B-1:S1"]["locks"] == ["L-102", "MAIN-ENTRANCE"]
        assert await h.opens(held["B-1"]["code"], "MAIN-ENTRANCE", during)
        assert (await h.rows("SELECT resolved_at FROM escalations"))[0]["resolved_at"] is not None


async def test_4_3_bookings_reconciled_together_keep_within_door_capacity(
    database_url: str,
) -> None:
    async with harness(database_url, PROPERTIES_FILE=SCENARIOS) as h:
        arrival = START + 2 * HOUR
        for booking_id, resource in (("A-1", "101"), ("B-1", "102")):
            body = event(
                f"evt-{next(_event_ids)}",
                booking_id=booking_id,
                property_id="oslo-small",
                stays=[stay(resource_id=resource, arrival=arrival)],
            )
            assert (await h.post(body)).status == 202
        await h.settle()
        holders = [g for g in (await active(h)).values() if "MAIN-ENTRANCE" in g["locks"]]
        assert len(holders) == 1


def meeting(start: datetime, end: datetime, status: str = "confirmed") -> dict[str, Any]:
    return {
        "stay_id": "F1",
        "resource_id": "Fjord",
        "arrival": start.isoformat(),
        "departure": end.isoformat(),
        "status": status,
        "guests": [KARI],
    }


async def test_4_4_meeting_room_access_follows_the_booked_hours(h: Harness) -> None:
    start, end = START + 3 * HOUR, START + 5 * HOUR
    company = {"booking_type": "company", "company": "Acme Consulting AS"}
    await send(h, "M-44", [meeting(start, end)], **company)
    [sent] = await bodies(h, "/GrantAccess")
    assert sent["locks"] == ["L-FJORD", "MAIN-ENTRANCE"]
    held = (await active(h))["demo-pms:M-44:F1"]
    code = held["code"]
    assert await h.opens(code, "L-FJORD", start)
    assert await h.opens(code, "L-FJORD", end - MINUTE)
    assert not await h.opens(code, "L-FJORD", start - MINUTE)
    assert not await h.opens(code, "L-FJORD", end)
    assert not await h.opens(code, "L-101", start)

    moved_start, moved_end = START + 6 * HOUR, START + 8 * HOUR
    await send(h, "M-44", [meeting(moved_start, moved_end)], **company)
    [update] = await bodies(h, "/UpdateAccess")
    assert update["ReferenceId"] == held["ReferenceId"]
    assert await h.opens(code, "L-FJORD", moved_start + HOUR)
    assert not await h.opens(code, "L-FJORD", start + HOUR)

    await send(h, "M-44", [meeting(moved_start, moved_end, "cancelled")], **company)
    assert [b["ReferenceId"] for b in await bodies(h, "/RevokeAccess")] == [held["ReferenceId"]]
    assert not await h.opens(code, "L-FJORD", moved_start + HOUR)


@pytest.mark.parametrize(
    ("booking_type", "extra", "expected"),
    [
        ("private", {}, [("email", "ola@example.no"), ("sms", "+4791234567")]),
        ("company", {"company": "Acme AS"}, [("email", "ola@example.no"), ("sms", "+4791234567")]),
        ("agency", {}, []),
        (
            "group",
            {"organizer": LEADER},
            [("email", "leader@example.no")] * 2 + [("sms", "+4790000001")] * 2,
        ),
        (  # a group set up to message each guest
            "group",
            {"organizer": LEADER, "communication": "guest"},
            [
                ("email", "kari@example.no"),
                ("email", "ola@example.no"),
                ("sms", "+4741234567"),
                ("sms", "+4791234567"),
            ],
        ),
        ("group", {"organizer": LEADER, "communication": "none"}, []),  # stored only
    ],
    ids=["private", "company", "agency", "group-organizer", "group-guests", "group-stored-only"],
)
async def test_5_who_inlet_messages_follows_the_booking_type(
    h: Harness, booking_type: str, extra: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    arrival = START + 2 * HOUR
    stays = [stay("S1", arrival=arrival, guests=[OLA])]
    if booking_type == "group":
        stays.append(stay("S2", resource_id="102", arrival=arrival, guests=[KARI]))
    await send(h, "T-5", stays, booking_type=booking_type, **extra)
    held = await active(h)
    assert len(held) == len(stays)  # access is created whoever is messaged
    sent = await messages(h)
    assert sorted((m["channel"], m["recipient"]) for m in sent) == expected
    # Every message carries the code of the grant it belongs to (one message set per room).
    assert all(m["code"] == held[m["externalId"]]["code"] for m in sent)
    # Whoever is messaged, the PMS can read each stay's code through its access API.
    response = await h.service.get("/v1/bookings/demo-pms/T-5/access", headers=BEARER)
    codes = {a["stay_id"]: a["code"] for a in (await response.json())["stays"]}
    assert codes == {s["stay_id"]: held[f"demo-pms:T-5:{s['stay_id']}"]["code"] for s in stays}


@pytest.mark.parametrize(
    ("contact", "dropped", "messaged"),
    [
        ({"phone": "91234567"}, ["phone"], [("email", "ola@example.no")]),
        ({"email": "ola.example.no", "phone": "+47 123"}, ["email", "phone"], []),
    ],
    ids=["phone-without-country-code", "email-and-phone-invalid"],
)
async def test_5_invalid_contact_details_never_block_access(
    h: Harness, contact: dict[str, str], dropped: list[str], messaged: list[tuple[str, str]]
) -> None:
    """PMS guide 5: missing or invalid contact details are handled, not a reason to refuse."""
    guest = {**OLA, **contact}
    arrival = START + 2 * HOUR
    body = event(
        f"evt-{next(_event_ids)}",
        booking_id="P-5",
        occurred_at=h.clock.now(),
        stays=[stay("S1", arrival=arrival, guests=[guest])],
    )
    response = await h.post(body)
    assert response.status == 202
    paths = [f"booking.stays[0].guests[0].{field}" for field in dropped]
    assert [w["path"] for w in (await response.json())["warnings"]] == paths
    await h.settle()

    # Access is created; the invalid details never reach Inlet, the valid ones do.
    [grant] = await bodies(h, "/GrantAccess")
    assert grant["guestName"] == "Ola Nordmann"
    assert ("phoneNumber" in grant, "countryCode" in grant) == (False, False)
    assert grant.get("email") == (None if "email" in dropped else OLA["email"])
    held = await active(h)
    assert sorted(held) == ["demo-pms:P-5:S1"]
    assert await h.opens(held["demo-pms:P-5:S1"]["code"], "L-101", arrival)
    sent = await messages(h)
    assert sorted((m["channel"], m["recipient"]) for m in sent) == messaged
    # The timeline shows the event's dropped details, by path, as a communication problem.
    timeline = await h.timeline("P-5")
    assert [w["path"] for w in timeline["events"][0]["warnings"]] == paths
    assert timeline["grants"][0]["state"] == "active"

    # A cancellation carrying the same bad details is not refused: access is revoked.
    cancelled = event(
        f"evt-{next(_event_ids)}",
        booking_id="P-5",
        occurred_at=h.clock.now() + MINUTE,
        stays=[stay("S1", arrival=arrival, status="cancelled", guests=[guest])],
    )
    assert (await h.post(cancelled)).status == 202
    await h.settle()
    revokes = await bodies(h, "/RevokeAccess")
    assert [r["ReferenceId"] for r in revokes] == [held["demo-pms:P-5:S1"]["ReferenceId"]]
    assert await active(h) == {}
    assert not await h.opens(held["demo-pms:P-5:S1"]["code"], "L-101", arrival)


def invalid_contact_and_dates(booking: dict[str, Any]) -> None:
    first = booking["stays"][0]
    first["guests"][0].update(email="ola.example.no", phone="91234567")  # no country code
    first["departure"] = first["arrival"]


def malformed(booking: dict[str, Any]) -> None:
    booking["stays"][0]["arrival"] = "2026-11-23T15:00:00"  # no UTC offset
    booking["loyalty_tier"] = "gold"  # not a field of the contract


@pytest.mark.parametrize(
    ("corrupt", "paths", "warnings"),
    [
        (
            invalid_contact_and_dates,
            ["booking.stays[0].departure"],
            # not what refuses the event, but listed so the PMS can fix everything at once
            ["booking.stays[0].guests[0].email", "booking.stays[0].guests[0].phone"],
        ),
        (malformed, ["booking.loyalty_tier", "booking.stays[0].arrival"], []),
    ],
    ids=["invalid-contact-and-dates", "malformed"],
)
async def test_6_invalid_booking_data_is_refused_and_nothing_reaches_inlet(
    h: Harness, corrupt: Callable[[dict[str, Any]], None], paths: list[str], warnings: list[str]
) -> None:
    body = event("evt-bad", booking_id="R-6", stays=[stay(arrival=START + 2 * HOUR, guests=[OLA])])
    corrupt(body["booking"])
    response = await h.post(body)
    assert response.status == 422
    answer = await response.json()
    problems = answer["problems"]
    assert sorted(p["path"] for p in problems) == paths
    assert all(p["message"] for p in problems)
    assert [w["path"] for w in answer.get("warnings", [])] == warnings
    await h.settle()
    assert await h.inlet_requests() == []
    assert await h.rows("SELECT event_id FROM events") == []
    assert await h.rows("SELECT booking_id FROM bookings") == []
