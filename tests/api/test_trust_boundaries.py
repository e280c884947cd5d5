"""Trust boundaries over HTTP: a source touches only its own hotels, reads and webhooks cannot be
replayed, operators act within their role and leave an audit trail, bad input gets a 4xx."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from inlet_bridge.app import create_app
from inlet_bridge.clock import ManualClock
from inlet_bridge.keys import DATABASE

from ..support import (
    ADMIN_HEADERS,
    AUDITOR,
    BEARER,
    OSLO_OPERATOR,
    OTHER_SOURCE,
    OTHER_TOKEN,
    SOURCE,
    TWO_HOTELS_ENV,
    VIEWER,
    bearer,
    event,
    settings_for,
    signed_headers,
    signed_read,
    two_hotels_properties,
)


async def serve(database_url: str, clock: ManualClock, tmp_path: Path) -> TestClient:
    settings = settings_for(
        database_url, PROPERTIES_FILE=str(two_hotels_properties(tmp_path)), **TWO_HOTELS_ENV
    )
    client = TestClient(TestServer(create_app(settings, clock=clock, run_workers=False)))
    await client.start_server()
    return client


@pytest.fixture
async def client(
    database_url: str, clock: ManualClock, tmp_path: Path
) -> AsyncIterator[TestClient]:
    """The demo hotel and Bergen, each with its own source, and operators of every role."""
    test_client = await serve(database_url, clock, tmp_path)
    yield test_client
    await test_client.close()


async def count(client: TestClient, table: str = "events") -> int:
    return int(await client.app[DATABASE].pool.fetchval(f"SELECT count(*) FROM {table}"))


def bergen(event_id: str, **booking: Any) -> dict[str, Any]:
    body = event(event_id, source=OTHER_SOURCE, **booking)
    body["booking"]["property_id"] = "bergen-1"
    return body


# -- sources serve their own properties -------------------------------------------------------


async def test_an_event_for_a_hotel_the_source_does_not_serve_is_refused(
    client: TestClient,
) -> None:
    response = await client.post(
        "/v1/events", json=bergen("e1", booking_id="B-1") | {"source": SOURCE}, headers=BEARER
    )
    assert response.status == 403
    body = await response.json()
    assert body["problems"] == [
        {"path": "booking.property_id", "message": "is not served by this source"}
    ]
    mixed = {"events": [event("e2"), {**bergen("e3"), "source": SOURCE}]}
    response = await client.post("/v1/events:batch", json=mixed, headers=BEARER)
    assert response.status == 403
    assert [p["path"] for p in (await response.json())["problems"]] == [
        "events[1].booking.property_id"
    ]
    assert await count(client) == 0
    assert await count(client, "bookings") == 0
    # Its own hotel is fine, and the other source posts for Bergen.
    assert (await client.post("/v1/events", json=event("e4"), headers=BEARER)).status == 202
    other = await client.post("/v1/events", json=bergen("e5"), headers=bearer(OTHER_TOKEN))
    assert other.status == 202
    assert await count(client) == 2


async def test_an_event_for_a_property_that_is_not_configured_is_refused(
    client: TestClient,
) -> None:
    unknown = event("e1")
    unknown["booking"]["property_id"] = "tromso-1"
    response = await client.post("/v1/events", json=unknown, headers=BEARER)
    assert response.status == 422
    assert (await response.json())["problems"] == [
        {"path": "booking.property_id", "message": "no such property is configured"}
    ]
    response = await client.post(
        "/v1/events:batch", json={"events": [event("e2"), unknown]}, headers=BEARER
    )
    assert response.status == 422
    assert (await response.json())["problems"][0]["path"] == "events[1].booking.property_id"
    assert await count(client) == 0


async def test_the_access_api_answers_only_for_the_sources_own_properties(
    client: TestClient, tmp_path: Path, database_url: str, clock: ManualClock
) -> None:
    assert (await client.post("/v1/events", json=event("e1"), headers=BEARER)).status == 202
    access = f"/v1/bookings/{SOURCE}/R-1001/access"
    assert (await client.get(access, headers=BEARER)).status == 200
    assert (await client.get(access, headers=bearer(OTHER_TOKEN))).status == 404
    # The same booking once the source no longer serves oslo-1 (the file changed): 404.
    narrowed = tmp_path / "narrowed"
    narrowed.mkdir()
    path = two_hotels_properties(narrowed)
    path.write_text(
        path.read_text().replace('properties = ["oslo-1"]', 'properties = ["bergen-1"]', 1)
    )
    settings = settings_for(database_url, PROPERTIES_FILE=str(path), **TWO_HOTELS_ENV)
    async with TestClient(
        TestServer(create_app(settings, clock=clock, run_workers=False))
    ) as other:
        assert (await other.get(access, headers=BEARER)).status == 404


# -- reads and webhooks that cannot be replayed ------------------------------------------------


async def test_a_signed_read_covers_method_and_path_and_is_used_once(
    client: TestClient, clock: ManualClock
) -> None:
    for booking_id in ("R-1001", "R-1002"):
        body = event(f"e-{booking_id}", booking_id=booking_id)
        assert (await client.post("/v1/events", json=body, headers=BEARER)).status == 202
    path = f"/v1/bookings/{SOURCE}/R-1001/access"
    headers = signed_read("GET", path, at=clock.now().timestamp())
    first = await client.get(path, headers=headers)
    assert first.status == 200, await first.text()
    assert (await first.json())["booking_id"] == "R-1001"
    replayed = await client.get(path, headers=headers)
    assert replayed.status == 409
    assert (await replayed.json())["error"] == "replayed"
    # Captured headers read no other booking: the path is signed.
    other = signed_read("GET", path, at=clock.now().timestamp())
    moved = await client.get(f"/v1/bookings/{SOURCE}/R-1002/access", headers=other)
    assert moved.status == 401
    # A signature over an empty body (the old way) no longer reads anything.
    empty = signed_headers(b"", at=clock.now().timestamp())
    assert (await client.get(path, headers=empty)).status == 401


async def test_a_replayed_webhook_id_is_refused_and_a_refused_request_frees_it(
    client: TestClient, clock: ManualClock, database_url: str, tmp_path: Path
) -> None:
    at = clock.now().timestamp()
    bad = json.dumps(event("e1", booking_id="R:1")).encode()
    response = await client.post(
        "/v1/events", data=bad, headers=signed_headers(bad, at=at, msg_id="msg_1")
    )
    assert response.status == 422
    good = json.dumps(event("e1")).encode()
    headers = signed_headers(good, at=at, msg_id="msg_1")
    assert (await client.post("/v1/events", data=good, headers=headers)).status == 202
    again = await client.post("/v1/events", data=good, headers=headers)
    assert again.status == 409
    assert (await again.json())["error"] == "replayed"
    # Another replica refuses it too: the ids seen are in PostgreSQL.
    second = tmp_path / "second"
    second.mkdir()
    replica = await serve(database_url, clock, second)
    try:
        assert (await replica.post("/v1/events", data=good, headers=headers)).status == 409
    finally:
        await replica.close()
    # Once the timestamp is too old the request is refused anyway, and the id is forgotten.
    clock.advance(timedelta(minutes=6))
    assert (await client.post("/v1/events", data=good, headers=headers)).status == 401
    seen = client.app[DATABASE].pool
    from inlet_bridge.store.replay import SeenWebhookIds

    assert await SeenWebhookIds(client.app[DATABASE]).purge(clock.now()) == 1
    assert await seen.fetchval("SELECT count(*) FROM seen_webhook_ids") == 0


async def test_a_signed_request_names_its_source(client: TestClient, clock: ManualClock) -> None:
    body = json.dumps(event("e1")).encode()
    unnamed = signed_headers(body, at=clock.now().timestamp(), source=None)
    response = await client.post("/v1/events", data=body, headers=unnamed)
    assert response.status == 401
    assert "Inlet-Bridge-Source" in (await response.json())["message"]
    # Naming another source tries only that source's secrets.
    wrong = signed_headers(body, at=clock.now().timestamp(), source=OTHER_SOURCE)
    assert (await client.post("/v1/events", data=body, headers=wrong)).status == 401
    assert await count(client) == 0


# -- rate limits ----------------------------------------------------------------------------


async def test_a_source_beyond_its_rate_limit_gets_429_with_retry_after(
    client: TestClient, clock: ManualClock
) -> None:
    other = bearer(OTHER_TOKEN)
    answers = [
        (await client.post("/v1/events", json=bergen(f"e{i}"), headers=other)).status
        for i in range(2)
    ]
    assert answers == [202, 202]
    limited = await client.post("/v1/events", json=bergen("e3"), headers=other)
    assert limited.status == 429
    assert limited.headers["Retry-After"] == "1"
    assert (await limited.json())["error"] == "rate_limited"
    # Another source is not starved by it.
    assert (await client.post("/v1/events", json=event("d1"), headers=BEARER)).status == 202
    clock.advance(timedelta(seconds=1))
    assert (await client.post("/v1/events", json=bergen("e3"), headers=other)).status == 202
    assert await count(client) == 4


# -- operators: roles, properties, the audit trail ---------------------------------------------


async def open_escalation(
    client: TestClient, property_id: str = "oslo-1", source: str = SOURCE
) -> int:
    escalation_id: int = await client.app[DATABASE].pool.fetchval(
        "INSERT INTO escalations (grant_key, source, booking_id, property_id, operation, severity,"
        " reason, message, created_at) VALUES ($1, $2, 'R-1001', $3, 'grant', 'high',"
        " 'max_attempts', 'Inlet: guest ola@example.no (+4791234567) refused', now())"
        " RETURNING id",
        f"{source}:R-1001:S1",
        source,
        property_id,
    )
    return escalation_id


async def test_a_viewer_reads_masked_but_may_not_reveal_retry_resolve_or_resync(
    client: TestClient,
) -> None:
    assert (await client.post("/v1/events", json=event("e1"), headers=BEARER)).status == 202
    escalation = await open_escalation(client)
    viewer = bearer(VIEWER)
    timeline = await client.get(f"/v1/bookings/{SOURCE}/R-1001", headers=viewer)
    assert timeline.status == 200
    guest = (await timeline.json())["events"][0]["event"]["booking"]["stays"][0]["guests"][0]
    assert guest["email"].startswith("<masked:")
    reveal = await client.get(f"/v1/bookings/{SOURCE}/R-1001?reveal=true", headers=viewer)
    assert reveal.status == 403
    for action in ("retry", "resolve"):
        response = await client.post(
            f"/v1/escalations/{escalation}/{action}", json={"note": "tried"}, headers=viewer
        )
        assert response.status == 403, action
        assert (await response.json())["message"] == f"the role viewer may not {action} escalations"
    start = {"selector": {"property_id": "oslo-1"}, "dry_run": False}
    assert (await client.post("/v1/resync", json=start, headers=viewer)).status == 403
    dry_run = {"selector": {"property_id": "oslo-1"}}
    assert (await client.post("/v1/resync", json=dry_run, headers=viewer)).status == 200
    assert (await client.get("/v1/audit", headers=viewer)).status == 403
    still_open = await client.app[DATABASE].pool.fetchval(
        "SELECT resolved_at IS NULL FROM escalations WHERE id = $1", escalation
    )
    assert still_open
    assert await count(client, "audit_log") == 0
    assert (await client.get("/v1/escalations")).status == 401


async def test_a_reveal_and_each_action_leave_an_audit_row(client: TestClient) -> None:
    assert (await client.post("/v1/events", json=event("e1"), headers=BEARER)).status == 202
    operator = {**bearer(OSLO_OPERATOR), "X-Request-Id": "req-reveal-1"}
    revealed = await client.get(f"/v1/bookings/{SOURCE}/R-1001?reveal=true", headers=operator)
    assert revealed.status == 200
    guest = (await revealed.json())["events"][0]["event"]["booking"]["stays"][0]["guests"][0]
    assert guest["email"] == "ola@example.no"
    escalation = await open_escalation(client)
    resolved = await client.post(
        f"/v1/escalations/{escalation}/resolve", json={"note": "key card given"}, headers=operator
    )
    assert resolved.status == 200
    start = {"selector": {"property_id": "oslo-1"}, "dry_run": False, "note": "lock swap"}
    assert (await client.post("/v1/resync", json=start, headers=operator)).status == 202

    trail = await client.get("/v1/audit", headers=bearer(AUDITOR))
    assert trail.status == 200
    entries = (await trail.json())["entries"]
    assert [(e["operator"], e["role"], e["action"]) for e in entries] == [
        ("olav", "operator", "resync"),
        ("olav", "operator", "resolve"),
        ("olav", "operator", "reveal"),
    ]
    reveal = entries[2]
    assert (reveal["source"], reveal["booking_id"], reveal["property_id"]) == (
        SOURCE,
        "R-1001",
        "oslo-1",
    )
    assert reveal["request_id"] == "req-reveal-1"
    assert reveal["at"]
    assert entries[1]["escalation_id"] == escalation
    assert entries[1]["note"] == "key card given"
    assert entries[0]["detail"]["selector"]["property_id"] == "oslo-1"
    by_booking = await client.get(
        "/v1/audit?source=demo-pms&booking_id=R-1001&action=reveal", headers=ADMIN_HEADERS
    )
    assert [e["id"] for e in (await by_booking.json())["entries"]] == [reveal["id"]]
    # Append-only: the database itself refuses to change the trail.
    pool = client.app[DATABASE].pool
    with pytest.raises(Exception, match="append-only"):
        await pool.execute("UPDATE audit_log SET operator = 'someone else'")
    with pytest.raises(Exception, match="append-only"):
        await pool.execute("DELETE FROM audit_log")


async def test_an_operator_limited_to_a_property_sees_and_acts_on_it_alone(
    client: TestClient,
) -> None:
    assert (
        await client.post(
            "/v1/events", json=bergen("b1", booking_id="B-1"), headers=bearer(OTHER_TOKEN)
        )
    ).status == 202
    oslo = await open_escalation(client)
    in_bergen = await open_escalation(client, property_id="bergen-1", source=OTHER_SOURCE)
    operator = bearer(OSLO_OPERATOR)
    assert (await client.get(f"/v1/bookings/{OTHER_SOURCE}/B-1", headers=operator)).status == 404
    assert (
        await client.get(f"/v1/bookings/{OTHER_SOURCE}/B-1", headers=ADMIN_HEADERS)
    ).status == 200
    listed = await client.get("/v1/escalations", headers=operator)
    assert [e["id"] for e in (await listed.json())["escalations"]] == [oslo]
    retry = await client.post(
        f"/v1/escalations/{in_bergen}/retry", json={"note": "again"}, headers=operator
    )
    assert retry.status == 404
    foreign = {"selector": {"property_id": "bergen-1"}}
    response = await client.post("/v1/resync", json=foreign, headers=operator)
    assert response.status == 403
    assert (await response.json())["problems"][0]["path"] == "selector.property_id"


async def test_inlets_messages_are_scrubbed_in_the_escalation_list(client: TestClient) -> None:
    await open_escalation(client)
    listed = await client.get("/v1/escalations", headers=ADMIN_HEADERS)
    (escalation,) = (await listed.json())["escalations"]
    message = escalation["message"]
    assert "ola@example.no" not in message
    assert "4791234567" not in message
    assert message.startswith("Inlet: guest <masked:")


# -- no 500 from input ----------------------------------------------------------------------


async def raw_request(client: TestClient, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send bytes as they are (a client library would refuse some of these headers)."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    length = f"Content-Length: {len(body)}\r\n".encode()
    writer.write(head + length + b"Connection: close\r\n\r\n" + body)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    status = int(answer.split(b" ", 2)[1])
    return status, answer


async def test_malformed_credentials_get_401_not_500(
    client: TestClient, clock: ManualClock
) -> None:
    body = json.dumps(event("e1")).encode()
    headers = signed_headers(body, at=clock.now().timestamp())
    huge_timestamp = {**headers, "webhook-timestamp": "9" * 400}
    assert (await client.post("/v1/events", data=body, headers=huge_timestamp)).status == 401
    status, _ = await raw_request(
        client,
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + b"webhook-id: "
        + headers["webhook-id"].encode()
        + b"\r\n"
        + b"webhook-timestamp: "
        + headers["webhook-timestamp"].encode()
        + b"\r\n"
        + b"Inlet-Bridge-Source: demo-pms\r\n"
        + "webhook-signature: v1,ÆØÅ\r\n".encode(),
        body,
    )
    assert status == 401
    status, _ = await raw_request(
        client,
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\xc3\x28\r\n",
        body,
    )
    assert status == 401
    status, _ = await raw_request(
        client, b"GET /v1/escalations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n"
    )
    assert status == 401
    assert await count(client) == 0


async def test_deeply_nested_json_gets_422(client: TestClient) -> None:
    deep = b"[" * 50_000 + b"]" * 50_000
    for path in ("/v1/events", "/v1/events:batch"):
        response = await client.post(path, data=deep, headers=BEARER)
        assert response.status == 422, path
        assert (await response.json())["problems"] == [
            {"path": "", "message": "is nested too deeply"}
        ]
    escalation = await open_escalation(client)
    nested_note = b'{"note": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    response = await client.post(
        f"/v1/escalations/{escalation}/resolve", data=nested_note, headers=ADMIN_HEADERS
    )
    assert response.status == 422
    response = await client.post("/v1/resync", data=deep, headers=ADMIN_HEADERS)
    assert response.status == 422


async def test_ids_beyond_bigint_get_404(client: TestClient) -> None:
    huge = str(2**63)
    for path in (
        f"/v1/escalations/{huge}/retry",
        f"/v1/escalations/{huge}/resolve",
        "/v1/escalations/0/retry",
        "/v1/escalations/-1/retry",
    ):
        response = await client.post(path, json={"note": "x"}, headers=ADMIN_HEADERS)
        assert response.status == 404, path
    for resync in (huge, "99999999999999999999999", "abc"):
        response = await client.get(f"/v1/resync/{resync}", headers=ADMIN_HEADERS)
        assert response.status == 404, resync


async def test_nul_bytes_get_422_naming_the_field(client: TestClient) -> None:
    escalation = await open_escalation(client)
    response = await client.post(
        f"/v1/escalations/{escalation}/resolve", json={"note": "a\x00b"}, headers=ADMIN_HEADERS
    )
    assert response.status == 422
    assert (await response.json())["problems"][0]["path"] == "note"
    for selector, path in (
        ({"property_id": "oslo\x00"}, "selector.property_id"),
        ({"access_points": ["L-101", "L\x00"]}, "selector.access_points[1]"),
        ({"bookings": ["demo-pms:\x00"]}, "selector.bookings[0]"),
    ):
        response = await client.post(
            "/v1/resync", json={"selector": selector}, headers=ADMIN_HEADERS
        )
        assert response.status == 422, selector
        assert (await response.json())["problems"][0]["path"] == path
    response = await client.get("/v1/escalations?operation=gr%00ant", headers=ADMIN_HEADERS)
    assert response.status == 422
    assert (await response.json())["problems"][0]["path"] == "operation"
    for path in ("/v1/bookings/demo%00pms/R-1", "/v1/bookings/demo-pms/R%00"):
        assert (await client.get(path, headers=ADMIN_HEADERS)).status == 404, path
        assert (await client.get(path + "/access", headers=BEARER)).status == 404, path
    assert await count(client, "audit_log") == 0


async def test_request_ids_are_kept_when_well_formed_and_replaced_otherwise(
    client: TestClient,
) -> None:
    kept = await client.get("/healthz", headers={"X-Request-Id": "pms-42.retry:1"})
    assert kept.headers["X-Request-Id"] == "pms-42.retry:1"
    for bad in ("x" * 8000, "x" * 129, "a b", "<script>", "ola@example.no"):
        response = await client.get("/healthz", headers={"X-Request-Id": bad})
        echoed = response.headers["X-Request-Id"]
        assert echoed != bad
        assert len(echoed) == 32
        assert echoed.isalnum()


async def test_a_large_batch_is_validated_off_the_loop_with_the_same_answers(
    client: TestClient,
) -> None:
    from inlet_bridge.api.ingest import OFF_LOOP_BYTES

    events = [event(f"e{i}", booking_id=f"R-{i}") for i in range(400)]
    events[123]["booking"]["stays"][0]["departure"] = "2026-11-20T10:00:00+01:00"
    body = json.dumps({"events": events}).encode()
    assert len(body) > OFF_LOOP_BYTES
    refused = await client.post("/v1/events:batch", data=body, headers=BEARER)
    assert refused.status == 422
    assert [p["path"] for p in (await refused.json())["problems"]] == [
        "events[123].booking.stays[0].departure"
    ]
    events[123] = event("e123", booking_id="R-123")
    events[7]["booking"]["property_id"] = "bergen-1"
    foreign = await client.post("/v1/events:batch", json={"events": events}, headers=BEARER)
    assert foreign.status == 403
    assert (await foreign.json())["problems"][0]["path"] == "events[7].booking.property_id"
    assert await count(client) == 0
    events[7] = event("e7", booking_id="R-7")
    accepted = await client.post("/v1/events:batch", json={"events": events}, headers=BEARER)
    assert accepted.status == 202
    assert len((await accepted.json())["results"]) == 400
    assert await count(client) == 400
