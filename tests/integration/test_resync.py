"""Re-sync (certification 3.5): after a lock replacement old codes stop working; a re-sync
sends UpdateAccess for the affected grants, stores the new codes, and the new codes work."""

from __future__ import annotations

from datetime import timedelta

from ..support import ADMIN_HEADERS, START, Harness, event, stay

HOUR = timedelta(hours=1)


async def two_bookings(h: Harness) -> None:
    await h.post(event("e1", booking_id="R-1", arrival=START + HOUR))
    await h.post(
        event("e2", booking_id="R-2", stays=[stay("S2", resource_id="201", arrival=START + HOUR)])
    )
    await h.settle()


async def test_lock_replacement_then_resync_gives_working_new_codes(h: Harness) -> None:
    await two_bookings(h)
    during = START + 3 * HOUR
    before = {g["externalId"]: g for g in await h.grants()}
    old = before["demo-pms:R-1:S1"]["code"]
    assert await h.opens(old, "L-101", during)
    assert (await h.sandbox.post("/_sandbox/locks/L-101/replace")).status in (200, 204)
    assert not await h.opens(old, "L-101", during)

    dry = await h.service.post(
        "/v1/resync", json={"selector": {"access_points": ["L-101"]}}, headers=ADMIN_HEADERS
    )
    assert dry.status == 200
    assert await dry.json() == {"dry_run": True, "matched": 1}
    assert not [r for r in await h.inlet_requests() if r["path"] == "/UpdateAccess"]

    started = await h.service.post(
        "/v1/resync",
        json={"selector": {"access_points": ["L-101"]}, "dry_run": False, "note": "lock swap"},
        headers=ADMIN_HEADERS,
    )
    assert started.status == 202
    body = await started.json()
    assert (body["matched"], body["queued"]) == (1, 1)
    await h.settle()

    updates = [r for r in await h.inlet_requests() if r["path"] == "/UpdateAccess"]
    assert len(updates) == 1
    assert updates[0]["body"]["ReferenceId"] == before["demo-pms:R-1:S1"]["ReferenceId"]
    assert updates[0]["body"]["regenerate"] is True
    after = {g["externalId"]: g for g in await h.grants()}
    new = after["demo-pms:R-1:S1"]["code"]
    assert new != old
    assert await h.opens(new, "L-101", during)
    stored = await h.rows("SELECT code FROM grants WHERE grant_key = 'demo-pms:R-1:S1'")
    assert stored[0]["code"] == new
    # The other booking was not touched.
    assert after["demo-pms:R-2:S2"]["code"] == before["demo-pms:R-2:S2"]["code"]

    progress = await h.service.get(f"/v1/resync/{body['resync_id']}", headers=ADMIN_HEADERS)
    report = await progress.json()
    assert (report["succeeded"], report["pending"], report["done"]) == (1, 0, True)
    # Settled: the reconciler finds nothing more to do.
    await h.settle()
    assert len([r for r in await h.inlet_requests() if r["path"] == "/UpdateAccess"]) == 1


async def test_failed_resync_is_escalated_as_its_own_series(h: Harness) -> None:
    await two_bookings(h)
    await h.fault(
        kind="success_false", retryable=False, message="Lock offline", operations=["update"]
    )
    response = await h.service.post(
        "/v1/resync",
        json={"selector": {"property_id": "oslo-1"}, "dry_run": False},
        headers=ADMIN_HEADERS,
    )
    assert (await response.json())["queued"] == 2
    await h.settle()
    escalations = await h.rows("SELECT operation, severity, reason FROM escalations")
    assert (
        escalations
        == [{"operation": "resync", "severity": "high", "reason": "permanent_error"}] * 2
    )
    text = await (await h.service.get("/metrics")).text()
    assert (
        'inlet_bridge_escalations_open{operation="resync",property="oslo-1",severity="high"} 2.0'
        in text
    )


async def test_resync_needs_a_filter_and_an_admin(h: Harness) -> None:
    empty = await h.service.post("/v1/resync", json={"selector": {}}, headers=ADMIN_HEADERS)
    assert empty.status == 422
    assert (await empty.json())["problems"][0]["path"] == "selector"
    anonymous = await h.service.post("/v1/resync", json={"selector": {"property_id": "oslo-1"}})
    assert anonymous.status == 401


async def test_resync_of_a_stay_under_way_has_no_deadline_and_no_late_escalation(
    h: Harness,
) -> None:
    # R-1 arrived two hours ago; R-2 arrives in five hours.
    await h.post(event("e1", booking_id="R-1", arrival=START - 2 * HOUR))
    await h.post(
        event(
            "e2", booking_id="R-2", stays=[stay("S2", resource_id="201", arrival=START + 5 * HOUR)]
        )
    )
    await h.settle()
    await h.fault(kind="status", status=503, count=2, operations=["update"])
    response = await h.service.post(
        "/v1/resync",
        json={"selector": {"property_id": "oslo-1"}, "dry_run": False},
        headers=ADMIN_HEADERS,
    )
    assert (await response.json())["queued"] == 2
    await h.settle()

    calls = await h.rows(
        "SELECT booking_id, state, attempts, deadline FROM inlet_calls"
        " WHERE reason = 'resync' ORDER BY booking_id"
    )
    assert calls == [
        {"booking_id": "R-1", "state": "pending", "attempts": 1, "deadline": None},
        {"booking_id": "R-2", "state": "pending", "attempts": 1, "deadline": START + 5 * HOUR},
    ]
    assert await h.rows("SELECT * FROM escalations") == []
    await h.advance(timedelta(minutes=5))
    states = await h.rows("SELECT state FROM inlet_calls WHERE reason = 'resync'")
    assert [c["state"] for c in states] == ["succeeded"] * 2
    assert await h.rows("SELECT * FROM escalations") == []
