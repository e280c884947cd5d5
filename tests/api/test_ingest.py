"""POST /v1/events and /v1/events:batch: stored once, answered alike, refused clearly."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer

from inlet_bridge.app import create_app
from inlet_bridge.clock import ManualClock
from inlet_bridge.domain.booking import BookingEvent
from inlet_bridge.domain.decoding import decode_event
from inlet_bridge.domain.validation import ValidEvent, validate_event
from inlet_bridge.group_commit import GroupCommitter, IngestUnavailable
from inlet_bridge.keys import DATABASE
from inlet_bridge.metrics import Metrics
from inlet_bridge.store.events import AppendResult, EventStore

from ..support import (
    ADMIN_HEADERS,
    BEARER,
    DEMO_PROPERTIES,
    ROTATED_SECRET,
    SIGNING_SECRET,
    START,
    event,
    settings_for,
    signed_headers,
    stay,
)


async def count(client: TestClient, table: str = "events") -> int:
    return int(await client.app[DATABASE].pool.fetchval(f"SELECT count(*) FROM {table}"))


async def test_valid_event_is_stored_once_and_marks_its_booking(client: TestClient) -> None:
    response = await client.post("/v1/events", json=event("e1"), headers=BEARER)
    assert response.status == 202
    body = await response.json()
    assert body["event_id"] == "e1"
    assert body["position"] > 0
    assert await count(client) == 1
    row = await client.app[DATABASE].pool.fetchrow("SELECT * FROM bookings")
    assert (row["source"], row["booking_id"], row["marked_seq"], row["seen_seq"]) == (
        "demo-pms",
        "R-1001",
        1,
        0,
    )
    stored = await client.app[DATABASE].pool.fetchval("SELECT event FROM events")
    guest = json.loads(stored)["booking"]["stays"][0]["guests"][0]
    assert guest["phone"] == "+4791234567"


async def test_repeat_is_answered_like_the_first_and_stores_nothing(client: TestClient) -> None:
    first = await client.post("/v1/events", json=event("e1"), headers=BEARER)
    again = await client.post("/v1/events", json=event("e1"), headers=BEARER)
    assert again.status == first.status == 202
    assert await again.json() == await first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await count(client) == 1
    marked = await client.app[DATABASE].pool.fetchval("SELECT marked_seq FROM bookings")
    assert marked == 1


async def test_changed_body_under_the_same_id_is_refused(client: TestClient) -> None:
    await client.post("/v1/events", json=event("e1"), headers=BEARER)
    changed = event("e1", company="Acme AS")
    response = await client.post("/v1/events", json=changed, headers=BEARER)
    assert response.status == 409
    body = await response.json()
    assert body["error"] == "conflict"
    assert body["problems"] == [
        {"path": "event_id", "message": "already stored with a different body"}
    ]
    assert await count(client) == 1


async def test_every_validation_problem_is_listed_and_nothing_stored(client: TestClient) -> None:
    body = event(
        "e1",
        stays=[
            stay(
                arrival=START,
                guests=[{"name": "Ola", "email": "not-an-email", "phone": "91234567"}],
            )
        ],
    )
    body["booking"]["stays"][0]["departure"] = body["booking"]["stays"][0]["arrival"]
    response = await client.post("/v1/events", json=body, headers=BEARER)
    assert response.status == 422
    answer = await response.json()
    assert [p["path"] for p in answer["problems"]] == ["booking.stays[0].departure"]
    # What would have been dropped is listed too, so the sender can fix everything at once.
    assert [w["path"] for w in answer["warnings"]] == [
        "booking.stays[0].guests[0].email",
        "booking.stays[0].guests[0].phone",
    ]
    assert "not-an-email" not in await response.text()
    assert await count(client) == 0


async def test_a_refused_event_is_logged_with_its_booking_and_the_paths_at_fault(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Certification 6: the partner can tell from its logs which booking failed and why."""
    body = event("e-bad", booking_id="R-77")
    body["booking"]["stays"][0]["departure"] = body["booking"]["stays"][0]["arrival"]
    batch = {"events": [event("b1", booking_id="R-78"), body]}
    with caplog.at_level(logging.INFO, logger="inlet_bridge.api.ingest"):
        assert (await client.post("/v1/events", json=body, headers=BEARER)).status == 422
        assert (await client.post("/v1/events:batch", json=batch, headers=BEARER)).status == 422
        assert (await client.post("/v1/events", data=b"{", headers=BEARER)).status == 422
    single, batched, malformed = [
        vars(r) for r in caplog.records if getattr(r, "action", "") == "ingest.refused"
    ]
    assert (single["event_id"], single["booking_id"], single["paths"]) == (
        "e-bad",
        "R-77",
        ["booking.stays[0].departure"],
    )
    assert (batched["event_id"], batched["booking_id"], batched["paths"]) == (
        ["b1", "e-bad"],
        ["R-78", "R-77"],
        ["events[1].booking.stays[0].departure"],
    )
    assert (malformed["reason"], "booking_id" in malformed) == ("malformed", False)
    assert all("Ola Nordmann" not in str(vars(r)) for r in caplog.records)


async def test_structural_problems_are_listed_with_paths(client: TestClient) -> None:
    body: dict[str, Any] = event("e1")
    body["booking"]["colour"] = "blue"
    body["booking"]["stays"][0]["arrival"] = "2026-11-23T15:00:00"  # no offset
    del body["booking"]["property_id"]
    response = await client.post("/v1/events", json=body, headers=BEARER)
    assert response.status == 422
    paths = {p["path"] for p in (await response.json())["problems"]}
    assert {"booking.colour", "booking.stays[0].arrival", "booking.property_id"} <= paths
    assert await count(client) == 0


async def test_signed_request_is_accepted_with_any_current_secret(
    client: TestClient, clock: ManualClock
) -> None:
    body = json.dumps(event("e1")).encode()
    headers = signed_headers(body, at=clock.now().timestamp())
    response = await client.post("/v1/events", data=body, headers=headers)
    assert response.status == 202
    # A secret the source does not have is refused.
    body2 = json.dumps(event("e2")).encode()
    wrong = signed_headers(body2, secret=ROTATED_SECRET, at=clock.now().timestamp())
    assert (await client.post("/v1/events", data=body2, headers=wrong)).status == 401


async def test_bad_missing_or_expired_signature_is_refused(
    client: TestClient, clock: ManualClock
) -> None:
    body = json.dumps(event("e1")).encode()
    headers = signed_headers(body, at=clock.now().timestamp())
    tampered = body.replace(b"R-1001", b"R-1002")
    assert (await client.post("/v1/events", data=tampered, headers=headers)).status == 401
    assert (await client.post("/v1/events", data=body)).status == 401
    old = signed_headers(body, at=clock.now().timestamp() - 301)
    response = await client.post("/v1/events", data=body, headers=old)
    assert response.status == 401
    assert await response.json() == {
        "error": "unauthorized",
        "message": "missing or invalid credentials",
    }
    assert (
        await client.post("/v1/events", json=event("e1"), headers={"Authorization": "Bearer nope"})
    ).status == 401
    assert await count(client) == 0


async def test_source_must_match_credentials(client: TestClient) -> None:
    response = await client.post("/v1/events", json=event("e1", source="other-pms"), headers=BEARER)
    assert response.status == 403
    assert (await response.json())["problems"][0]["path"] == "source"
    assert await count(client) == 0


async def test_oversized_body_is_refused(client: TestClient) -> None:
    body = event("e1", company="x" * 30000)
    response = await client.post("/v1/events", json=body, headers=BEARER)
    assert response.status == 413
    assert await count(client) == 0


async def test_batch_with_one_bad_event_stores_none(client: TestClient) -> None:
    good = event("e1")
    bad = event("e2", booking_id="R-2")
    bad["booking"]["stays"][0]["guests"][0]["email"] = "broken@"
    bad["booking"]["stays"][0]["guests"][0]["name"] = "<b></b>"
    response = await client.post("/v1/events:batch", json={"events": [good, bad]}, headers=BEARER)
    assert response.status == 422
    answer = await response.json()
    assert [p["path"] for p in answer["problems"]] == ["events[1].booking.stays[0].guests[0].name"]
    assert [w["path"] for w in answer["warnings"]] == ["events[1].booking.stays[0].guests[0].email"]
    assert await count(client) == 0


async def test_batch_is_stored_whole_and_repeat_answers_alike(client: TestClient) -> None:
    events = [event(f"e{i}", booking_id=f"R-{i}") for i in range(5)]
    first = await client.post("/v1/events:batch", json={"events": events}, headers=BEARER)
    assert first.status == 202
    results = (await first.json())["results"]
    assert [r["event_id"] for r in results] == [f"e{i}" for i in range(5)]
    again = await client.post("/v1/events:batch", json={"events": events}, headers=BEARER)
    assert await again.json() == {"results": results}
    assert await count(client) == 5
    assert await count(client, "bookings") == 5


async def test_batch_with_a_conflicting_event_stores_none(client: TestClient) -> None:
    await client.post("/v1/events", json=event("e1"), headers=BEARER)
    batch = [event("e2", booking_id="R-2"), event("e1", company="changed")]
    response = await client.post("/v1/events:batch", json={"events": batch}, headers=BEARER)
    assert response.status == 409
    assert (await response.json())["problems"][0]["path"] == "events[1].event_id"
    assert await count(client) == 1


async def test_batch_over_500_is_refused(client: TestClient) -> None:
    events = [event(f"e{i}", booking_id=f"R-{i}") for i in range(501)]
    response = await client.post("/v1/events:batch", json={"events": events}, headers=BEARER)
    assert response.status in (413, 422)
    assert await count(client) == 0


async def test_metrics_count_accepted_and_rejected(client: TestClient) -> None:
    await client.post("/v1/events", json=event("e1"), headers=BEARER)
    await client.post("/v1/events", json=event("e2", source="x"), headers=BEARER)
    text = await (await client.get("/metrics")).text()
    assert 'inlet_bridge_events_accepted_total{source="demo-pms"} 1.0' in text
    assert 'inlet_bridge_events_rejected_total{reason="forbidden",source="demo-pms"} 1.0' in text


async def test_health_and_readiness(client: TestClient) -> None:
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["database"] == "ok"


async def test_concurrent_requests_share_commits(client: TestClient) -> None:
    responses = await asyncio.gather(
        *(
            client.post("/v1/events", json=event(f"c{i}", booking_id=f"R-{i}"), headers=BEARER)
            for i in range(60)
        )
    )
    assert [r.status for r in responses] == [202] * 60
    assert await count(client) == 60
    text = await (await client.get("/metrics")).text()
    groups = next(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("inlet_bridge_group_commit_events_count")
    )
    assert groups < 60  # at least one transaction committed several requests' events


async def test_same_new_event_in_concurrent_requests_is_stored_once(client: TestClient) -> None:
    responses = await asyncio.gather(
        *(client.post("/v1/events", json=event("same"), headers=BEARER) for _ in range(10))
    )
    bodies = [await r.json() for r in responses]
    assert [r.status for r in responses] == [202] * 10
    assert all(b == bodies[0] for b in bodies)
    assert await count(client) == 1
    # One delivery stored it; the other nine are its repeats, however the group commits fell.
    replayed = [r.headers.get("Idempotent-Replayed") for r in responses]
    assert sorted(replayed, key=str) == [None] + ["true"] * 9
    text = await (await client.get("/metrics")).text()
    assert 'inlet_bridge_events_accepted_total{source="demo-pms"} 1.0' in text
    assert 'inlet_bridge_events_duplicate_total{source="demo-pms"} 9.0' in text
    marked = await client.app[DATABASE].pool.fetchval("SELECT marked_seq FROM bookings")
    assert marked == 1


# Invalid contact details never block access: dropped, stored, answered with warnings

BAD_PHONE = "98765432"  # no country code
PHONE_WARNING = {
    "path": "booking.stays[0].guests[1].phone",
    "message": "must include the country code, e.g. +4791234567",
}


def with_bad_phone(event_id: str, *, phone: str = BAD_PHONE, **booking: Any) -> dict[str, Any]:
    """A booking whose second guest's phone has no country code."""
    status = booking.pop("status", "confirmed")
    guests = [
        {"name": "Ola Nordmann", "email": "ola@example.no", "phone": "+4791234567"},
        {"name": "Kari Nordmann", "email": "kari@example.no", "phone": phone},
    ]
    return event(event_id, stays=[stay(arrival=START, status=status, guests=guests)], **booking)


async def stored_events(client: TestClient) -> list[dict[str, Any]]:
    rows = await client.app[DATABASE].pool.fetch(
        "SELECT event_id, event::text AS event, warnings::text AS warnings"
        " FROM events ORDER BY position"
    )
    return [
        {
            "event_id": r["event_id"],
            "event": json.loads(r["event"]),
            "warnings": None if r["warnings"] is None else json.loads(r["warnings"]),
        }
        for r in rows
    ]


async def test_a_bad_phone_is_dropped_and_the_event_accepted_with_a_warning(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="inlet_bridge.api.ingest"):
        response = await client.post("/v1/events", json=with_bad_phone("e1"), headers=BEARER)

    assert response.status == 202
    answer = await response.json()
    assert answer["warnings"] == [PHONE_WARNING]
    assert "Idempotent-Replayed" not in response.headers
    (row,) = await stored_events(client)
    guests = row["event"]["booking"]["stays"][0]["guests"]
    # Never sent to Inlet, because it is not stored: the rest of the contact is.
    assert guests[1] == {"name": "Kari Nordmann", "email": "kari@example.no", "phone": None}
    assert guests[0]["phone"] == "+4791234567"
    assert row["warnings"] == [PHONE_WARNING]
    assert BAD_PHONE not in json.dumps(row)
    marked = await client.app[DATABASE].pool.fetchval("SELECT marked_seq FROM bookings")
    assert marked == 1
    (dropped,) = [r for r in caplog.records if getattr(r, "action", "") == "ingest.contact_dropped"]
    assert dropped.paths == ["booking.stays[0].guests[1].phone"]  # type: ignore[attr-defined]
    assert (dropped.event_id, dropped.booking_id) == ("e1", "R-1001")  # type: ignore[attr-defined]
    assert all(BAD_PHONE not in str(vars(r)) for r in caplog.records)


async def test_an_event_without_warnings_answers_and_stores_none(client: TestClient) -> None:
    response = await client.post("/v1/events", json=event("e1"), headers=BEARER)

    assert "warnings" not in await response.json()
    (row,) = await stored_events(client)
    assert row["warnings"] is None


async def test_a_cancellation_with_a_bad_phone_is_stored_and_marks_its_booking(
    client: TestClient, clock: ManualClock
) -> None:
    assert (await client.post("/v1/events", json=event("e1"), headers=BEARER)).status == 202
    clock.advance(timedelta(hours=1))
    cancelled = with_bad_phone("e2", occurred_at=START.replace(hour=10), status="cancelled")

    response = await client.post("/v1/events", json=cancelled, headers=BEARER)

    assert response.status == 202
    assert (await response.json())["warnings"] == [PHONE_WARNING]
    rows = await stored_events(client)
    assert [r["event_id"] for r in rows] == ["e1", "e2"]
    assert rows[1]["event"]["booking"]["stays"][0]["status"] == "cancelled"
    marked = await client.app[DATABASE].pool.fetchval("SELECT marked_seq FROM bookings")
    assert marked == 2  # the reconciler will look again, and revoke


async def test_a_repeat_with_the_same_bad_phone_is_a_repeat_and_another_is_a_conflict(
    client: TestClient,
) -> None:
    first = await client.post("/v1/events", json=with_bad_phone("e1"), headers=BEARER)
    again = await client.post("/v1/events", json=with_bad_phone("e1"), headers=BEARER)
    assert again.status == 202
    assert await again.json() == await first.json()
    assert again.headers["Idempotent-Replayed"] == "true"

    # Both normalize to the same stored event, but the body changed: not a repeat.
    other = await client.post(
        "/v1/events", json=with_bad_phone("e1", phone="98765433"), headers=BEARER
    )
    assert other.status == 409
    # Nor is the same booking without the phone at all.
    without = with_bad_phone("e1")
    del without["booking"]["stays"][0]["guests"][1]["phone"]
    assert (await client.post("/v1/events", json=without, headers=BEARER)).status == 409
    assert await count(client) == 1


async def test_an_event_stored_before_warnings_existed_is_still_repeated(
    client: TestClient,
) -> None:
    # A row as an older release stored it: the digest of the normalized event alone, no
    # warnings column value. Its repeat must still be answered as a repeat.
    body = event("old-1")
    valid = validate_event(decoded(body))
    assert isinstance(valid, ValidEvent)
    await client.app[DATABASE].pool.execute(
        "INSERT INTO events (source, event_id, booking_id, property_id, occurred_at,"
        " body_sha256, event) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        "demo-pms",
        "old-1",
        "R-1001",
        "oslo-1",
        START,
        hashlib.sha256(msgspec.json.encode(valid.event)).digest(),
        msgspec.json.encode(valid.event).decode(),
    )

    response = await client.post("/v1/events", json=body, headers=BEARER)

    assert response.status == 202
    assert response.headers["Idempotent-Replayed"] == "true"
    assert await count(client) == 1


async def test_the_timeline_shows_each_events_contact_warnings(
    client: TestClient, clock: ManualClock
) -> None:
    await client.post("/v1/events", json=event("e1"), headers=BEARER)
    clock.advance(timedelta(hours=1))
    later = START.replace(hour=10)
    await client.post("/v1/events", json=with_bad_phone("e2", occurred_at=later), headers=BEARER)

    for query in ("", "?reveal=true"):
        response = await client.get(f"/v1/bookings/demo-pms/R-1001{query}", headers=ADMIN_HEADERS)
        assert response.status == 200
        events = (await response.json())["events"]
        assert [e["event"]["event_id"] for e in events] == ["e1", "e2"]
        assert events[0]["warnings"] == []
        # Paths and our own words only: nothing in them to mask.
        assert events[1]["warnings"] == [PHONE_WARNING]
        assert events[1]["event"]["booking"]["stays"][0]["guests"][1]["phone"] is None


async def test_a_batch_answers_each_event_with_its_own_warnings(client: TestClient) -> None:
    events = [event("b1", booking_id="R-1"), with_bad_phone("b2", booking_id="R-2")]

    response = await client.post("/v1/events:batch", json={"events": events}, headers=BEARER)

    assert response.status == 202
    results = (await response.json())["results"]
    assert "warnings" not in results[0]
    assert results[1]["warnings"] == [PHONE_WARNING]  # relative to its event, no events[1].
    rows = await stored_events(client)
    assert [r["warnings"] for r in rows] == [None, [PHONE_WARNING]]


# Group commit: one delivery is "stored", every other in the group is its repeat


def decoded(body: dict[str, Any]) -> BookingEvent:
    result = decode_event(json.dumps(body).encode())
    assert isinstance(result, BookingEvent), result
    return result


def validated(body: dict[str, Any]) -> ValidEvent:
    result = validate_event(decoded(body))
    assert isinstance(result, ValidEvent), result
    return result


async def test_one_group_with_the_same_new_event_twice_stores_it_once(client: TestClient) -> None:
    store = EventStore(client.app[DATABASE])
    same = validated(event("g1"))

    units = await store.append_group(
        [[same], [same], [validated(event("g2", booking_id="R-2"))]], START
    )

    assert [u.results[0].status for u in units] == ["stored", "duplicate", "stored"]
    assert units[0].results[0].position == units[1].results[0].position
    assert await count(client) == 2


async def test_the_careful_path_also_answers_a_repeat_in_the_group_as_duplicate(
    client: TestClient,
) -> None:
    store = EventStore(client.app[DATABASE])
    await store.append_group([[validated(event("c1"))]], START)
    same = validated(event("c2", booking_id="R-2"))
    changed = validated(event("c1", company="Acme AS"))  # a conflict: the careful path

    units = await store.append_group([[same], [changed], [same]], START)

    assert [u.results[0].status for u in units] == ["stored", "conflict", "duplicate"]
    assert await count(client) == 2


async def test_a_unit_with_a_changed_body_leaves_nothing_of_the_one_statement_append(
    client: TestClient,
) -> None:
    """The one-statement append has inserted the new event and marked its booking by the time
    it meets the changed body; it must refuse itself whole, not commit half of the unit."""
    store = EventStore(client.app[DATABASE])
    await store.append_group([[validated(event("k1"))]], START)
    new = validated(event("k2", booking_id="R-NEW"))
    changed = validated(event("k1", company="Acme AS"))

    units = await store.append_group([[new, changed]], START)

    assert [r.status for r in units[0].results] == ["withheld", "conflict"]
    assert await count(client) == 1
    booking_ids = await client.app[DATABASE].pool.fetch("SELECT booking_id FROM bookings")
    assert [r["booking_id"] for r in booking_ids] == ["R-1001"]


async def test_a_repeat_beside_new_events_is_answered_with_the_first_delivery(
    client: TestClient,
) -> None:
    store = EventStore(client.app[DATABASE])
    first = await store.append_group([[validated(event("r1"))]], START)
    later = START + timedelta(minutes=5)

    units = await store.append_group(
        [[validated(event("r2", booking_id="R-2"))], [validated(event("r1"))]], later
    )

    stored, repeat = units[0].results[0], units[1].results[0]
    assert (stored.status, stored.received_at) == ("stored", later)
    assert repeat == AppendResult(
        event_id="r1",
        status="duplicate",
        position=first[0].results[0].position,
        received_at=START,
    )
    # Only the booking of the new event is marked again; the repeat's booking is not.
    marks = await client.app[DATABASE].pool.fetch(
        "SELECT booking_id, marked_seq FROM bookings ORDER BY booking_id"
    )
    assert [(r["booking_id"], r["marked_seq"]) for r in marks] == [("R-1001", 1), ("R-2", 1)]


async def test_a_booking_is_marked_once_per_group_with_its_last_events_property(
    client: TestClient,
) -> None:
    store = EventStore(client.app[DATABASE])
    events = [validated(event(f"m{i}")) for i in range(3)]

    await store.append_group([events[:2], events[2:]], START)

    row = await client.app[DATABASE].pool.fetchrow("SELECT * FROM bookings")
    assert (row["booking_id"], row["property_id"], row["marked_seq"]) == ("R-1001", "oslo-1", 1)
    assert await count(client) == 3


async def test_a_key_another_writer_stores_meanwhile_is_answered_as_its_repeat(
    client: TestClient,
) -> None:
    """The statement waits for the other writer's insert, then cannot see it in its snapshot:
    it refuses itself, and the careful path finds the row and answers a repeat."""
    db = client.app[DATABASE]
    store = EventStore(db)
    valid = validated(event("w1"))
    async with db.pool.acquire() as other, other.transaction():
        theirs = await store.append_group([[valid]], START, other)
        ours = asyncio.create_task(store.append_group([[valid]], START))
        while not await db.pool.fetchval(  # noqa: ASYNC110 (a database state, no event to await)
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND datname = current_database()"
        ):
            await asyncio.sleep(0.01)  # until our statement waits on their uncommitted key
    units = await ours

    assert units[0].results[0].status == "duplicate"
    assert units[0].results[0].position == theirs[0].results[0].position
    assert await count(client) == 1


async def test_inside_a_callers_transaction_a_refused_append_undoes_only_itself(
    client: TestClient,
) -> None:
    db = client.app[DATABASE]
    store = EventStore(db)
    await store.append_group([[validated(event("t1"))]], START)
    async with db.pool.acquire() as conn, conn.transaction():
        units = await store.append_group(
            [[validated(event("t1", company="Acme AS"))], [validated(event("t2"))]], START, conn
        )
        await conn.execute("SELECT 1")  # the transaction is still usable
    assert [u.results[0].status for u in units] == ["conflict", "stored"]
    stored = await db.pool.fetch("SELECT event_id FROM events ORDER BY event_id")
    assert [r["event_id"] for r in stored] == ["t1", "t2"]


async def test_a_request_still_queued_when_its_wait_runs_out_is_withdrawn_and_never_stored(
    client: TestClient,
) -> None:
    db = client.app[DATABASE]
    committer = GroupCommitter(EventStore(db), Metrics(), ManualClock(START), wait_seconds=0.05)
    # no writer yet: the request waits in the queue until its wait runs out
    with pytest.raises(IngestUnavailable, match="not stored in time"):
        await committer.append([validated(event("q1"))])
    assert committer.queued_events == 0

    committer.start()  # a writer now takes the withdrawn request from the queue and drops it
    try:
        unit = await committer.append([validated(event("q2", booking_id="R-2"))])
    finally:
        await committer.close()

    assert [r.status for r in unit.results] == ["stored"]
    assert [r["event_id"] for r in await db.pool.fetch("SELECT event_id FROM events")] == ["q2"]


async def test_a_cancelled_request_that_was_queued_is_still_committed_whole(
    client: TestClient,
) -> None:
    """As before: a request given up by its client is not withdrawn (its events may already be
    committing), and its cancellation leaves no timer or count behind."""
    db = client.app[DATABASE]
    committer = GroupCommitter(EventStore(db), Metrics(), ManualClock(START), wait_seconds=0.05)
    request = asyncio.create_task(committer.append([validated(event("c1"))]))
    await asyncio.sleep(0)  # queued, waiting
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    committer.start()
    try:
        await committer.append([validated(event("c2", booking_id="R-2"))])
    finally:
        await committer.close()
    assert committer.queued_events == 0
    stored = await db.pool.fetch("SELECT event_id FROM events ORDER BY event_id")
    assert [r["event_id"] for r in stored] == ["c1", "c2"]


# Signing secrets during a rotation


@pytest.fixture
async def rotating(
    database_url: str, clock: ManualClock, tmp_path: Path
) -> AsyncIterator[TestClient]:
    """The demo source with two signing secrets, as while a PMS rotates its secret."""
    demo = DEMO_PROPERTIES.read_text()
    one = 'signing_secrets = [{ env = "DEMO_PMS_WEBHOOK_SECRET" }]'
    assert one in demo
    two = 'signing_secrets = [{ env = "DEMO_PMS_WEBHOOK_SECRET" }, { env = "NEXT_SECRET" }]'
    properties = tmp_path / "properties.toml"
    properties.write_text(demo.replace(one, two))
    settings = settings_for(
        database_url, PROPERTIES_FILE=str(properties), NEXT_SECRET=ROTATED_SECRET
    )
    app = create_app(settings, clock=clock, run_workers=False)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_requests_signed_with_the_old_or_the_new_secret_are_both_accepted(
    rotating: TestClient, clock: ManualClock
) -> None:
    at = clock.now().timestamp()
    old = json.dumps(event("r1")).encode()
    new = json.dumps(event("r2")).encode()
    wrong = json.dumps(event("r3")).encode()
    other_secret = "whsec_" + "b3RoZXItc2VjcmV0LWtleQ=="  # base64("other-secret-key")

    signed_old = signed_headers(old, secret=SIGNING_SECRET, at=at)
    signed_new = signed_headers(new, secret=ROTATED_SECRET, at=at)
    assert (await rotating.post("/v1/events", data=old, headers=signed_old)).status == 202
    assert (await rotating.post("/v1/events", data=new, headers=signed_new)).status == 202
    signed_wrong = signed_headers(wrong, secret=other_secret, at=at)
    assert (await rotating.post("/v1/events", data=wrong, headers=signed_wrong)).status == 401
    assert await count(rotating) == 2
