"""POST /v1/events and /v1/events:batch: stored once, answered alike, refused clearly."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient

from service.clock import ManualClock
from service.keys import DATABASE

from ..support import BEARER, ROTATED_SECRET, START, event, signed_headers, stay


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
    paths = {p["path"] for p in (await response.json())["problems"]}
    assert {
        "booking.stays[0].guests[0].email",
        "booking.stays[0].guests[0].phone",
        "booking.stays[0].departure",
    } <= paths
    assert await count(client) == 0


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
    response = await client.post("/v1/events:batch", json={"events": [good, bad]}, headers=BEARER)
    assert response.status == 422
    problems = (await response.json())["problems"]
    assert [p["path"] for p in problems] == ["events[1].booking.stays[0].guests[0].email"]
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
    import asyncio

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
    import asyncio

    responses = await asyncio.gather(
        *(client.post("/v1/events", json=event("same"), headers=BEARER) for _ in range(10))
    )
    bodies = [await r.json() for r in responses]
    assert [r.status for r in responses] == [202] * 10
    assert all(b == bodies[0] for b in bodies)
    assert await count(client) == 1
