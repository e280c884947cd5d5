"""Inlet PMS certification, section 3 (booking scenarios), end to end: bookings posted to the
ingest API, the reconciler and the call worker run against the Inlet sandbox over HTTP, and the
tests look at what Inlet holds, the messages it would send, which doors the codes open and when,
and what the service stored. Re-sync (3.5) is in test_resync.py."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ..support import BEARER, START, Harness, bodies, harness, send, stay

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
SCENARIOS = str(Path(__file__).with_name("properties_scenarios.toml"))
ROOM_101 = ["L-101", "MAIN-ENTRANCE", "NIGHT-ENTRANCE"]
OLA = {"name": "Ola Nordmann", "email": "ola@example.no", "phone": "+4791234567"}
KARI = {"name": "Kari Hansen", "email": "kari@example.no", "phone": "+4741234567"}
CONTACT_FIELDS = {"email", "phoneNumber", "countryCode"}


@pytest.fixture
def h(h_every_reading: Harness) -> Harness:
    """Every scenario runs under each reading of what Inlet does not publish."""
    return h_every_reading


def room(arrival: datetime, departure: datetime, **fields: Any) -> dict[str, Any]:
    """A stay with an exact departure time."""
    return {**stay(arrival=arrival, **fields), "departure": departure.isoformat()}


async def messages(h: Harness) -> list[dict[str, Any]]:
    return list(await h.sandbox_json("/_sandbox/messages"))


async def only_grant(h: Harness) -> dict[str, Any]:
    grants = await h.grants()
    assert len(grants) == 1, grants
    return grants[0]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_3_1_standard_booking_opens_room_and_common_doors_only_during_the_stay(
    h: Harness,
) -> None:
    arrival = START + 2 * HOUR
    departure = arrival + 2 * DAY
    await send(h, "R-31", [stay(arrival=arrival, guests=[OLA])])

    [sent] = await bodies(h, "/GrantAccess")
    assert (sent["bookingId"], sent["externalId"]) == ("R-31", "demo-pms:R-31:S1")
    assert sent["locks"] == ROOM_101
    assert (sent["guestName"], sent["email"]) == ("Ola Nordmann", "ola@example.no")
    assert (sent["countryCode"], sent["phoneNumber"]) == ("47", "91234567")
    assert (at(sent["start"]), at(sent["end"])) == (arrival, departure)

    held = await only_grant(h)
    code = held["code"]
    sent_messages = await messages(h)
    assert sorted((m["channel"], m["recipient"]) for m in sent_messages) == [
        ("email", "ola@example.no"),
        ("sms", "+4791234567"),
    ]
    assert {(m["code"], m["link"]) for m in sent_messages} == {(code, held["link"])}

    # Inlet's reference and access information are stored.
    [row] = await h.rows(
        "SELECT state, reference_id, code, code_formatted, link, access_points, valid_from,"
        " valid_to FROM grants"
    )
    assert row == {
        "state": "active",
        "reference_id": held["ReferenceId"],
        "code": code,
        "code_formatted": held["codeFormatted"],
        "link": held["link"],
        "access_points": ROOM_101,
        "valid_from": arrival,
        "valid_to": departure,
    }

    # The code opens the booked room and the common doors, only during the stay.
    for lock in ROOM_101:
        assert await h.opens(code, lock, arrival)
        assert await h.opens(code, lock, departure - MINUTE)
        assert not await h.opens(code, lock, arrival - MINUTE)
        assert not await h.opens(code, lock, departure)
    assert not await h.opens(code, "L-102", arrival + HOUR)

    # When the stay ends the grant is revoked.
    await h.advance(departure - h.clock.now())
    assert [b["ReferenceId"] for b in await bodies(h, "/RevokeAccess")] == [held["ReferenceId"]]
    assert (await h.rows("SELECT state FROM grants"))[0]["state"] == "revoked"


async def test_3_2_company_booking_messages_the_named_guest(h: Harness) -> None:
    arrival = START + 2 * HOUR
    # The first named guest has no contact details; the second has.
    guests = [{"name": "Per Olsen"}, KARI]
    await send(
        h,
        "C-32",
        [stay(arrival=arrival, guests=guests)],
        booking_type="company",
        company="Acme Consulting AS",
    )
    [sent] = await bodies(h, "/GrantAccess")
    assert (sent["guestName"], sent["email"], sent["phoneNumber"]) == (
        "Kari Hansen",
        "kari@example.no",
        "41234567",
    )
    assert sorted((m["channel"], m["recipient"]) for m in await messages(h)) == [
        ("email", "kari@example.no"),
        ("sms", "+4741234567"),
    ]
    held = await only_grant(h)
    assert held["locks"] == ROOM_101
    assert await h.opens(held["code"], "L-101", arrival + HOUR)


async def test_3_2_company_booking_without_guest_contact_gets_access_but_no_message(
    h: Harness,
) -> None:
    arrival = START + 2 * HOUR
    await send(
        h,
        "C-33",
        [stay(arrival=arrival, guests=[{"name": "Per Olsen"}])],
        booking_type="company",
        company="Acme Consulting AS",
    )
    [sent] = await bodies(h, "/GrantAccess")
    assert sent["guestName"] == "Per Olsen"
    assert not CONTACT_FIELDS & sent.keys()
    assert await messages(h) == []
    held = await only_grant(h)
    assert await h.opens(held["code"], "L-101", arrival + HOUR)
    timeline = await h.timeline("C-33")
    issues = timeline["desired"]["issues"]
    assert [(i["stay_id"], i["kind"], i["escalate"]) for i in issues] == [
        ("S1", "no_contact", False)
    ]
    assert timeline["grants"][0]["code"] == held["code"]


async def test_3_3_agency_booking_gets_access_without_messages_and_keeps_the_code(
    h: Harness,
) -> None:
    arrival = START + 2 * HOUR
    await send(h, "A-33", [stay(arrival=arrival, guests=[OLA])], booking_type="agency")
    [sent] = await bodies(h, "/GrantAccess")
    assert not CONTACT_FIELDS & sent.keys()
    assert sent["locks"] == ROOM_101
    assert await messages(h) == []
    held = await only_grant(h)
    assert await h.opens(held["code"], "L-101", arrival + HOUR)
    # The code is available to the hotel or agency: in the stored grant and the timeline.
    [row] = await h.rows("SELECT code, code_formatted, link FROM grants")
    assert row == {
        "code": held["code"],
        "code_formatted": held["codeFormatted"],
        "link": held["link"],
    }
    timeline = await h.timeline("A-33")
    assert (timeline["grants"][0]["code"], timeline["grants"][0]["code_formatted"]) == (
        held["code"],
        held["codeFormatted"],
    )
    assert timeline["desired"]["issues"] == []  # suppressed on purpose, not a problem
    # ... and to the PMS that sent the booking, through its access API.
    response = await h.service.get("/v1/bookings/demo-pms/A-33/access", headers=BEARER)
    assert response.status == 200
    [access] = (await response.json())["stays"]
    assert (access["state"], access["code"], access["link"]) == (
        "active",
        held["code"],
        held["link"],
    )


async def test_3_4_updates_before_arrival_update_the_same_reference(h: Harness) -> None:
    arrival = START + 20 * HOUR
    guest = dict(OLA)
    await send(h, "R-34", [stay(arrival=arrival, guests=[guest])])
    reference = (await only_grant(h))["ReferenceId"]

    new_arrival = arrival + 3 * HOUR
    steps: list[tuple[str, str | None, str | None]] = [
        ("date", None, None),
        ("name", "name", "Ola Nordmann-Berg"),
        ("phone", "phone", "+4798765432"),
        ("email", "email", "ola.berg@example.no"),
    ]
    for number, (_, field, value) in enumerate(steps, start=1):
        if field is not None:
            guest[field] = value
        await send(h, "R-34", [stay(arrival=new_arrival, nights=3, guests=[guest])])
        updates = await bodies(h, "/UpdateAccess")
        assert len(updates) == number
        assert updates[-1]["ReferenceId"] == reference
        assert len(await bodies(h, "/GrantAccess")) == 1
        assert len(await h.grants()) == 1
    # Inlet sends the access again to a changed phone number and email address.
    resent = {(m["channel"], m["recipient"]) for m in await messages(h) if m["reason"] == "update"}
    assert {("sms", "+4798765432"), ("email", "ola.berg@example.no")} <= resent

    # The final access matches the latest booking data; the same state again sends nothing.
    held = await only_grant(h)
    assert (at(held["start"]), at(held["end"])) == (new_arrival, new_arrival + 3 * DAY)
    assert (held["guestName"], held["email"]) == ("Ola Nordmann-Berg", "ola.berg@example.no")
    assert (held["countryCode"], held["phoneNumber"]) == ("47", "98765432")
    await send(h, "R-34", [stay(arrival=new_arrival, nights=3, guests=[guest])])
    assert len(await h.inlet_requests()) == 5

    # An update that Inlet answers with a new code (here: the lock was replaced meanwhile).
    old_code = held["code"]
    assert (await h.sandbox.post("/_sandbox/locks/L-101/replace")).status == 200
    await send(h, "R-34", [stay(arrival=new_arrival, nights=4, guests=[guest])])
    held = await only_grant(h)
    assert held["ReferenceId"] == reference
    assert held["code"] != old_code
    [row] = await h.rows("SELECT code, code_formatted, link, valid_to FROM grants")
    assert row == {
        "code": held["code"],
        "code_formatted": held["codeFormatted"],
        "link": held["link"],
        "valid_to": new_arrival + 4 * DAY,
    }
    assert await h.opens(held["code"], "L-101", new_arrival + HOUR)
    assert not await h.opens(old_code, "L-101", new_arrival + HOUR)
    assert (await messages(h))[-1]["code"] == held["code"]


async def test_3_6_pms_status_rules_give_access_from_check_in_to_check_out_plus_offset(
    database_url: str,
) -> None:
    async with harness(database_url, PROPERTIES_FILE=SCENARIOS) as h:
        arrival = START + 2 * HOUR

        async def status(value: str) -> None:
            await send(
                h,
                "S-36",
                [stay(arrival=arrival, nights=1, status=value)],
                property_id="oslo-status",
            )

        await status("confirmed")
        await h.advance(3 * HOUR)  # an hour past the booked arrival, not checked in yet
        assert await h.inlet_requests() == []
        checked_in = h.clock.now()
        await status("checked_in")
        [sent] = await bodies(h, "/GrantAccess")
        # Until the PMS says checked_out, access ends at the booked departure + 30 minutes.
        assert (at(sent["start"]), at(sent["end"])) == (checked_in, arrival + DAY + 30 * MINUTE)
        code = (await only_grant(h))["code"]
        assert await h.opens(code, "L-101", checked_in)
        assert not await h.opens(code, "L-101", checked_in - MINUTE)

        await h.advance(15 * HOUR)
        checked_out = h.clock.now()
        await status("checked_out")
        [update] = await bodies(h, "/UpdateAccess")
        assert at(update["end"]) == checked_out + 30 * MINUTE
        assert await bodies(h, "/RevokeAccess") == []
        assert await h.opens(code, "L-101", checked_out + 29 * MINUTE)
        assert not await h.opens(code, "L-101", checked_out + 30 * MINUTE)
        await h.advance(30 * MINUTE)
        assert len(await bodies(h, "/RevokeAccess")) == 1
        assert (await h.rows("SELECT state FROM grants"))[0]["state"] == "revoked"


async def test_3_6_a_check_out_never_opens_access_again(database_url: str) -> None:
    async with harness(database_url, PROPERTIES_FILE=SCENARIOS) as h:
        arrival = START + HOUR

        async def status(booking_id: str, value: str) -> None:
            await send(
                h,
                booking_id,
                [stay(arrival=arrival, nights=1, status=value)],
                property_id="oslo-status",
            )

        await status("LATE", "checked_in")
        await status("MISSED", "confirmed")
        # Past the booked departure + 30 minutes: access has ended.
        await h.advance(DAY + 2 * HOUR)
        assert len(await bodies(h, "/RevokeAccess")) == 1
        sent = len(await h.inlet_requests())
        received = len(await messages(h))
        # A late check-out, and a check-out whose check-in the PMS never reported.
        await status("LATE", "checked_out")
        await status("MISSED", "checked_out")
        assert len(await h.inlet_requests()) == sent
        assert len(await messages(h)) == received


async def test_3_6_default_rules_ignore_check_in_and_revoke_at_check_out(h: Harness) -> None:
    arrival = START + HOUR
    await send(h, "R-36", [stay(arrival=arrival)])
    code = (await only_grant(h))["code"]
    await h.advance(2 * HOUR)
    await send(h, "R-36", [stay(arrival=arrival, status="checked_in")])
    assert len(await h.inlet_requests()) == 1  # access already follows the booking times
    assert await h.opens(code, "L-101", h.clock.now())
    await h.advance(HOUR)
    await send(h, "R-36", [stay(arrival=arrival, status="checked_out")])
    assert len(await bodies(h, "/RevokeAccess")) == 1
    assert not await h.opens(code, "L-101", h.clock.now())


@pytest.mark.parametrize("after_check_in", [False, True], ids=["before-arrival", "after-check-in"])
async def test_3_7_room_change_moves_access_to_the_new_room(
    h: Harness, after_check_in: bool
) -> None:
    arrival = START + HOUR
    status = "checked_in" if after_check_in else "confirmed"
    await send(h, "R-37", [stay(arrival=arrival)])
    reference = (await only_grant(h))["ReferenceId"]
    if after_check_in:
        await h.advance(2 * HOUR)
        await send(h, "R-37", [stay(arrival=arrival, status=status)])
    when = arrival + HOUR  # during the stay (and, after check-in, now)
    await send(h, "R-37", [stay(resource_id="201", arrival=arrival, status=status)])

    new_locks = ["L-201", "MAIN-ENTRANCE", "NIGHT-ENTRANCE", "FLOOR-2"]
    [update] = await bodies(h, "/UpdateAccess")
    assert (update["ReferenceId"], update["locks"]) == (reference, new_locks)
    assert len(await bodies(h, "/GrantAccess")) == 1
    # The guest keeps no access to the old room: no grant at Inlet still holds L-101.
    held = await only_grant(h)
    assert "L-101" not in held["locks"]
    assert not await h.opens(held["code"], "L-101", when)
    for lock in new_locks:
        assert await h.opens(held["code"], lock, when)
    [row] = await h.rows("SELECT resource_id, access_points, reference_id, code FROM grants")
    assert row == {
        "resource_id": "201",
        "access_points": new_locks,
        "reference_id": reference,
        "code": held["code"],
    }


@pytest.mark.parametrize("ending", ["cancelled", "deleted", "no_show"])
async def test_3_8_cancellation_deletion_and_no_show_revoke_access(h: Harness, ending: str) -> None:
    arrival = START + HOUR
    await send(h, "R-38", [stay(arrival=arrival)])
    held = await only_grant(h)
    await h.advance(2 * HOUR)
    assert await h.opens(held["code"], "L-101", h.clock.now())

    if ending == "deleted":
        await send(h, "R-38", [stay(arrival=arrival)], deleted=True)
    else:
        await send(h, "R-38", [stay(arrival=arrival, status=ending)])

    assert [b["ReferenceId"] for b in await bodies(h, "/RevokeAccess")] == [held["ReferenceId"]]
    for lock in ROOM_101:
        assert not await h.opens(held["code"], lock, h.clock.now())
        assert not await h.opens(held["code"], lock, arrival + DAY)
    assert (await h.rows("SELECT state FROM grants"))[0]["state"] == "revoked"
    # Traceable: the timeline holds the event and the revoke call with Inlet's answer.
    timeline = await h.timeline("R-38")
    last = timeline["events"][-1]["event"]["booking"]
    if ending == "deleted":
        assert last["deleted"] is True
    else:
        assert last["stays"][0]["status"] == ending
    revokes = [c for c in timeline["calls"] if c["operation"] == "revoke"]
    assert [(c["state"], [a["outcome"] for a in c["attempt_log"]]) for c in revokes] == [
        ("succeeded", ["success"])
    ]


async def test_3_9_earlier_arrival_and_later_departure_extend_access_and_shorter_ends_it(
    h: Harness,
) -> None:
    arrival = START + 5 * HOUR
    departure = arrival + 2 * DAY
    await send(h, "R-39", [room(arrival, departure)])
    held = await only_grant(h)
    code, reference = held["code"], held["ReferenceId"]

    early = START + 3 * HOUR
    assert not await h.opens(code, "L-101", early)
    await send(h, "R-39", [room(early, departure)])
    assert await h.opens(code, "L-101", early)

    late = departure + 3 * HOUR
    assert not await h.opens(code, "L-101", departure + 2 * HOUR)
    await send(h, "R-39", [room(early, late)])
    assert await h.opens(code, "L-101", departure + 2 * HOUR)

    short = departure - DAY
    await send(h, "R-39", [room(early, short)])
    assert await h.opens(code, "L-101", short - MINUTE)
    assert not await h.opens(code, "L-101", short)

    assert [u["ReferenceId"] for u in await bodies(h, "/UpdateAccess")] == [reference] * 3
    assert len(await bodies(h, "/GrantAccess")) == 1
    # Access ends, and is revoked, at the shortened departure.
    await h.advance(short - h.clock.now())
    [revoke] = [r for r in await h.inlet_requests() if r["path"] == "/RevokeAccess"]
    assert at(revoke["at"]) == short
