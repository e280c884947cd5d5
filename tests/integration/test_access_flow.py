"""Bookings become working access: the reconciler and the call worker against the Inlet sandbox
over HTTP, on a real PostgreSQL, with a clock the test moves."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from ..support import BEARER, START, Harness, event, harness, stay
from .process_support import wait_until

HOUR = timedelta(hours=1)


async def grant_calls(h: Harness, path: str = "/GrantAccess") -> list[dict]:
    return [r for r in await h.inlet_requests() if r["path"] == path]


async def test_booking_arriving_soon_gets_one_grant_with_every_required_field(h: Harness) -> None:
    arrival = START + 2 * HOUR
    assert (await h.post(event("e1", arrival=arrival))).status == 202
    await h.settle()
    calls = await grant_calls(h)
    assert len(calls) == 1
    sent = calls[0]["body"]
    assert sent["partner"] == "Inlet Bridge Demo"
    assert sent["bookingId"] == "R-1001"
    assert sent["externalId"] == "demo-pms:R-1001:S1"
    assert sent["locks"] == ["L-101", "MAIN-ENTRANCE", "NIGHT-ENTRANCE"]
    assert sent["email"] == "ola@example.no"
    assert (sent["phoneNumber"], sent["countryCode"]) == ("91234567", "47")
    assert sent["start"].startswith("2026-11-23T11:00:00")
    grants = await h.grants()
    assert len(grants) == 1
    assert grants[0]["state"] == "active"
    stored = await h.rows("SELECT * FROM grants")
    assert stored[0]["reference_id"] == grants[0]["ReferenceId"]
    assert stored[0]["code"] == grants[0]["code"]
    assert stored[0]["code_formatted"] == grants[0]["codeFormatted"]
    assert stored[0]["link"] == grants[0]["link"]
    # The code opens the room during the stay, not before it.
    assert await h.opens(grants[0]["code"], "L-101", arrival + HOUR)
    assert not await h.opens(grants[0]["code"], "L-101", arrival - HOUR)
    # A repeat of the same event makes no call.
    assert (await h.post(event("e1", arrival=arrival))).status == 202
    await h.settle()
    assert len(await h.inlet_requests()) == 1


async def test_booking_in_100_hours_waits_for_its_window(h: Harness) -> None:
    await h.post(event("e1", arrival=START + 100 * HOUR))
    await h.settle()
    assert await h.inlet_requests() == []
    due = await h.rows("SELECT due_at FROM bookings")
    assert due[0]["due_at"] == START + 76 * HOUR  # 24 h window before arrival
    await h.advance(75 * HOUR)
    assert await h.inlet_requests() == []
    await h.advance(HOUR + timedelta(seconds=1))
    assert len(await grant_calls(h)) == 1


async def test_date_change_updates_the_same_reference_and_cancel_revokes(h: Harness) -> None:
    arrival = START + 2 * HOUR
    await h.post(event("e1", arrival=arrival))
    await h.settle()
    reference = (await h.grants())[0]["ReferenceId"]
    later = event("e2", arrival=arrival + 3 * HOUR, occurred_at=START + timedelta(minutes=1))
    await h.post(later)
    await h.settle()
    updates = await grant_calls(h, "/UpdateAccess")
    assert len(updates) == 1
    assert updates[0]["body"]["ReferenceId"] == reference
    assert len(await grant_calls(h)) == 1
    grants = await h.grants()
    assert len(grants) == 1
    assert grants[0]["start"].startswith("2026-11-23T14:00:00")
    code = grants[0]["code"]
    cancelled = event(
        "e3",
        occurred_at=START + timedelta(minutes=2),
        stays=[stay(arrival=arrival + 3 * HOUR, status="cancelled")],
    )
    await h.post(cancelled)
    await h.settle()
    revokes = await grant_calls(h, "/RevokeAccess")
    assert len(revokes) == 1
    assert revokes[0]["body"]["ReferenceId"] == reference
    assert not await h.opens(code, "L-101", arrival + 4 * HOUR)
    assert (await h.rows("SELECT state FROM grants"))[0]["state"] == "revoked"


async def test_out_of_order_events_converge_to_the_latest(h: Harness) -> None:
    arrival = START + 2 * HOUR
    newest = event("e2", occurred_at=START + timedelta(minutes=5), arrival=arrival + HOUR)
    older = event("e1", occurred_at=START, arrival=arrival)
    await h.post(newest)
    await h.post(older)
    await h.settle()
    grants = await h.grants()
    assert len(grants) == 1
    assert grants[0]["start"].startswith("2026-11-23T12:00:00")
    assert await grant_calls(h, "/UpdateAccess") == []


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "status", "status": 500},
        {"kind": "status", "status": 429},
        {"kind": "success_false", "retryable": True, "message": "Lock gateway busy"},
        {"kind": "timeout", "seconds": 5},
    ],
    ids=["5xx", "429", "success-false-retryable", "timeout"],
)
async def test_temporary_failures_are_retried_every_5_minutes_until_inlet_recovers(
    h: Harness, fault: dict
) -> None:
    await h.fault(count=2, **fault)
    await h.post(event("e1", arrival=START + 5 * HOUR))
    await h.settle()
    call = (await h.rows("SELECT * FROM inlet_calls"))[0]
    assert call["state"] == "pending"
    assert call["attempts"] == 1
    assert call["next_attempt_at"] == START + timedelta(minutes=5)
    await h.advance(timedelta(minutes=4))
    assert (await h.rows("SELECT attempts FROM inlet_calls"))[0]["attempts"] == 1
    await h.advance(timedelta(minutes=1))
    assert (await h.rows("SELECT attempts FROM inlet_calls"))[0]["attempts"] == 2
    await h.advance(timedelta(minutes=5))
    call = (await h.rows("SELECT * FROM inlet_calls"))[0]
    assert call["state"] == "succeeded"
    assert call["attempts"] == 3
    assert len(await h.grants()) == 1
    timeline = await h.timeline("R-1001")
    attempts = timeline["calls"][0]["attempt_log"]
    assert [a["outcome"] for a in attempts] == ["temporary", "temporary", "success"]


async def test_permanent_failure_is_escalated_at_once_with_inlets_message(h: Harness) -> None:
    await h.fault(kind="success_false", retryable=False, message="Lock L-101 is not known", count=1)
    await h.post(event("e1", arrival=START + 5 * HOUR))
    await h.settle()
    call = (await h.rows("SELECT * FROM inlet_calls"))[0]
    assert call["state"] == "failed"
    assert call["attempts"] == 1
    escalations = await h.rows("SELECT * FROM escalations")
    assert len(escalations) == 1
    assert escalations[0]["reason"] == "permanent_error"
    assert "Lock L-101 is not known" in escalations[0]["message"]
    # The escalated call is not blindly repeated by the next look.
    await h.advance(timedelta(minutes=30))
    assert len(await h.rows("SELECT * FROM inlet_calls")) == 1


async def test_a_second_refused_call_of_a_grant_is_escalated_too_and_not_repeated(
    h: Harness,
) -> None:
    """An update refused (escalated), the booking changed, the next update refused too: one
    open escalation per grant and reason, now about the last call, so the plan does not send
    that refused update again and again; a revocation then refused makes it critical."""
    await h.post(event("e1", arrival=START + 5 * HOUR))
    await h.settle()
    await h.fault(kind="success_false", retryable=False, message="Lock offline", count=2)
    for minute, room in ((1, "102"), (2, "201")):
        await h.post(
            event(
                f"e{minute + 1}",
                occurred_at=START + timedelta(minutes=minute),
                stays=[stay(arrival=START + 5 * HOUR, resource_id=room)],
            )
        )
        await h.settle()
    await h.advance(timedelta(minutes=30))

    updates = [r for r in await h.inlet_requests() if r["path"] == "/UpdateAccess"]
    assert len(updates) == 2  # each refused once, neither repeated
    (escalation,) = await h.rows("SELECT * FROM escalations WHERE resolved_at IS NULL")
    (last,) = await h.rows(
        "SELECT id FROM inlet_calls WHERE operation = 'update' ORDER BY id DESC LIMIT 1"
    )
    assert (escalation["call_id"], escalation["severity"]) == (last["id"], "high")

    await h.fault(kind="success_false", retryable=False, message="Lock offline", count=1)
    await h.post(
        event(
            "e9",
            occurred_at=START + timedelta(minutes=3),
            stays=[stay(arrival=START + 5 * HOUR, resource_id="201", status="cancelled")],
        )
    )
    await h.settle()
    (escalation,) = await h.rows("SELECT * FROM escalations WHERE resolved_at IS NULL")
    assert (escalation["operation"], escalation["severity"]) == ("revoke", "critical")
    revokes = [r for r in await h.inlet_requests() if r["path"] == "/RevokeAccess"]
    assert len(revokes) == 1


async def test_sixty_minutes_of_failures_escalate(h: Harness) -> None:
    await h.fault(kind="status", status=503)
    await h.post(event("e1", arrival=START + 20 * HOUR))
    await h.settle()
    for _ in range(14):
        await h.advance(timedelta(minutes=5))
    call = (await h.rows("SELECT * FROM inlet_calls"))[0]
    assert call["state"] == "failed"
    assert call["attempts"] == 13  # t=0, 5, ..., 60 min
    escalation = (await h.rows("SELECT * FROM escalations"))[0]
    assert (escalation["reason"], escalation["severity"]) == ("max_duration", "high")
    timeline = await h.timeline("R-1001")
    assert len(timeline["calls"][0]["attempt_log"]) == 13


async def test_thirty_attempts_escalate_when_that_limit_comes_first(database_url: str) -> None:
    async with harness(database_url) as h:
        policy = h.runtime.calls._hotels.retry
        import msgspec

        h.runtime.calls._hotels = msgspec.structs.replace(
            h.runtime.calls._hotels,
            retry=msgspec.structs.replace(policy, interval_minutes=1, max_minutes=600),
        )
        await h.fault(kind="status", status=502)
        await h.post(event("e1", arrival=START + 20 * HOUR))
        await h.settle()
        for _ in range(35):
            await h.advance(timedelta(minutes=1))
        call = (await h.rows("SELECT * FROM inlet_calls"))[0]
        assert (call["state"], call["attempts"]) == ("failed", 30)
        assert (await h.rows("SELECT reason FROM escalations"))[0]["reason"] == "max_attempts"


async def test_failed_revocation_is_escalated_as_critical(h: Harness) -> None:
    await h.post(event("e1", arrival=START + 2 * HOUR))
    await h.settle()
    await h.fault(kind="status", status=500, operations=["revoke"])
    await h.post(
        event(
            "e2",
            occurred_at=START + timedelta(minutes=1),
            stays=[stay(arrival=START + 2 * HOUR, status="cancelled")],
        )
    )
    await h.settle()
    failing = await h.service.get("/metrics")
    assert 'inlet_bridge_calls_failing{operation="revoke"} 1.0' in await failing.text()
    for _ in range(13):
        await h.advance(timedelta(minutes=5))
    escalation = (await h.rows("SELECT * FROM escalations"))[0]
    assert (escalation["operation"], escalation["severity"]) == ("revoke", "critical")
    text = await (await h.service.get("/metrics")).text()
    assert (
        'inlet_bridge_escalations_open{operation="revoke",property="oslo-1",severity="critical"} 1.0'
        in text
    )


async def test_retries_that_would_pass_the_start_escalate_early(h: Harness) -> None:
    await h.fault(kind="status", status=500)
    await h.post(event("e1", arrival=START + timedelta(minutes=18)))
    await h.settle()
    for _ in range(3):
        await h.advance(timedelta(minutes=5))
    escalations = await h.rows("SELECT * FROM escalations")
    assert [(e["reason"], e["severity"]) for e in escalations] == [("late_for_arrival", "warning")]
    call = (await h.rows("SELECT * FROM inlet_calls"))[0]
    assert call["state"] == "pending"  # retries go on
    await h.sandbox.delete("/_sandbox/faults")
    await h.advance(timedelta(minutes=5))
    assert (await h.rows("SELECT state FROM inlet_calls"))[0]["state"] == "succeeded"
    assert (await h.rows("SELECT resolved_at FROM escalations"))[0]["resolved_at"] is not None


async def test_worker_killed_between_call_and_commit_does_not_duplicate(h: Harness) -> None:
    await h.post(event("e1", arrival=START + 2 * HOUR))
    await h.runtime.reconciler.run_once()
    # A worker claims the call, calls Inlet, and dies before recording the outcome.
    dead = h.runtime.calls._store
    claimed = await dead.claim(owner="dead-worker", now=h.clock.now(), limit=1, lease_seconds=60)
    assert len(claimed) == 1
    from inlet_bridge.workers.calls import grant_request

    assert claimed[0].desired is not None
    request = grant_request(claimed[0].desired, "Inlet Bridge Demo")
    result = await h.runtime.calls._client.grant_access("inlet-key-oslo-1", request)
    assert result.outcome == "success"
    # Before the lease expires, nobody else takes the call.
    assert await h.runtime.calls.run_once() == 0
    await h.advance(timedelta(seconds=61))
    call = (await h.rows("SELECT * FROM inlet_calls"))[0]
    assert call["state"] == "succeeded"
    assert call["attempts"] == 2
    grants = await h.grants()
    assert len(grants) == 1
    assert (await h.rows("SELECT reference_id FROM grants"))[0]["reference_id"] == grants[0][
        "ReferenceId"
    ]


async def test_access_is_revoked_when_the_stay_ends(h: Harness) -> None:
    await h.post(event("e1", arrival=START + 2 * HOUR))  # two nights
    await h.settle()
    await h.advance(2 * HOUR + 48 * HOUR)
    assert len(await grant_calls(h, "/RevokeAccess")) == 1
    assert (await h.rows("SELECT due_at FROM bookings"))[0]["due_at"] is None


async def test_timeline_masks_codes_unless_revealed(h: Harness) -> None:
    await h.post(event("e1", arrival=START + 2 * HOUR))
    await h.settle()
    masked = await h.timeline("R-1001", reveal=False)
    code = (await h.grants())[0]["code"]
    assert masked["grants"][0]["code"].startswith("<masked:")
    assert "ola@example.no" not in str(masked)
    revealed = await h.timeline("R-1001")
    assert revealed["grants"][0]["code"] == code
    assert revealed["desired"]["grants"][0]["access_points"][0] == "L-101"
    refused = await h.service.get("/v1/bookings/demo-pms/R-1001")
    assert refused.status == 401


async def until_the_sandbox_holds_a_grant(h: Harness) -> None:
    """The sandbox acts after its injected latency, in real time, after the client gave up."""

    async def held() -> bool:
        return len(await h.grants()) == 1

    await wait_until(held, "the timed-out GrantAccess to reach the sandbox", timeout=10)


async def lose_the_answer_to_a_grant(h: Harness, arrival: datetime, earlier: str) -> None:
    """Book a stay whose GrantAccess reaches Inlet but whose answer is lost; with `escalated`,
    the retry is refused for good. Returns once the sandbox holds the grant."""
    # Longer than the client's 2 s timeout: Inlet makes the grant, the answer never arrives.
    await h.fault(kind="latency", seconds=3, count=1, operations=["grant"])
    if earlier == "escalated":
        await h.fault(
            kind="success_false",
            retryable=False,
            message="Lock offline",
            count=1,
            operations=["grant"],
        )
    await h.post(event("e1", arrival=arrival))
    await h.settle()
    await until_the_sandbox_holds_a_grant(h)


@pytest.mark.parametrize("earlier", ["superseded", "escalated"])
async def test_a_lost_grant_then_a_date_change_ends_with_the_new_dates_at_inlet(
    h: Harness, earlier: str
) -> None:
    """A GrantAccess whose answer was lost made the grant; the next GrantAccess (new dates) gets
    that grant back unchanged, so the service records it unverified and sends UpdateAccess."""
    arrival = START + 2 * HOUR
    await lose_the_answer_to_a_grant(h, arrival, earlier)
    assert [c["attempts"] for c in await h.rows("SELECT attempts FROM inlet_calls")] == [1]
    if earlier == "escalated":
        await h.advance(timedelta(minutes=5))
        escalations = await h.rows("SELECT reason, resolved_at FROM escalations")
        assert [e["reason"] for e in escalations] == ["permanent_error"]
    assert await h.rows("SELECT * FROM grants") == []  # the service has seen no success yet

    later = arrival + 3 * HOUR
    await h.post(event("e2", arrival=later, occurred_at=START + timedelta(minutes=1)))
    await h.settle()

    paths = [r["path"] for r in await h.inlet_requests()]
    expected = ["/GrantAccess"] * (3 if earlier == "escalated" else 2) + ["/UpdateAccess"]
    assert paths == expected
    held = await h.grants()
    assert len(held) == 1
    assert datetime.fromisoformat(held[0]["start"]) == later
    assert datetime.fromisoformat(held[0]["end"]) == later + 48 * HOUR
    stored = (await h.rows("SELECT * FROM grants"))[0]
    assert (stored["valid_from"], stored["valid_to"]) == (later, later + 48 * HOUR)
    assert stored["reference_id"] == held[0]["ReferenceId"]
    assert stored["code"] == held[0]["code"]
    assert stored["access_points"] == held[0]["locks"]
    desired = (await h.timeline("R-1001"))["desired"]["grants"][0]
    assert stored["fingerprint"] == desired["fingerprint"]
    assert await h.opens(held[0]["code"], "L-101", later + HOUR)
    assert not await h.opens(held[0]["code"], "L-101", arrival + HOUR)
    assert all(e["resolved_at"] is not None for e in await h.rows("SELECT * FROM escalations"))
    # Converged: another look sends nothing.
    await h.advance(timedelta(minutes=10))
    assert len(await h.inlet_requests()) == len(expected)


async def test_a_repeated_grant_with_the_same_content_is_not_followed_by_an_update(
    h: Harness,
) -> None:
    """A lost answer retried with the same content: the grant Inlet kept is the one sent."""
    await h.fault(kind="latency", seconds=3, count=1, operations=["grant"])
    await h.post(event("e1", arrival=START + 2 * HOUR))
    await h.settle()
    await until_the_sandbox_holds_a_grant(h)
    await h.advance(timedelta(minutes=5))
    assert [r["path"] for r in await h.inlet_requests()] == ["/GrantAccess"] * 2
    stored = (await h.rows("SELECT fingerprint FROM grants"))[0]
    desired = (await h.timeline("R-1001"))["desired"]["grants"][0]
    assert stored["fingerprint"] == desired["fingerprint"]


async def test_a_stay_cancelled_before_its_window_has_no_access(h: Harness) -> None:
    arrival = START + 100 * HOUR
    await h.post(event("e1", arrival=arrival))
    await h.settle()
    path = "/v1/bookings/demo-pms/R-1001/access"
    before = (await (await h.service.get(path, headers=BEARER)).json())["stays"][0]
    assert before["state"] == "pending"
    assert datetime.fromisoformat(before["send_after"]) == START + 76 * HOUR

    await h.post(
        event(
            "e2",
            occurred_at=START + timedelta(minutes=1),
            stays=[stay(arrival=arrival, status="cancelled")],
        )
    )
    await h.settle()

    response = await h.service.get(path, headers=BEARER)
    assert response.status == 200
    after = (await response.json())["stays"][0]
    assert after["state"] == "none"
    assert (after["send_after"], after["valid_from"], after["code"]) == (None, None, None)
    await h.advance(100 * HOUR)
    assert await h.inlet_requests() == []


async def test_an_update_of_a_stay_under_way_that_fails_is_not_late_for_arrival(
    h: Harness,
) -> None:
    arrival = START - 2 * HOUR  # the guest arrived two hours ago
    await h.post(event("e1", arrival=arrival))
    await h.settle()
    await h.fault(kind="status", status=500, count=1, operations=["update"])
    await h.post(
        event(
            "e2", stays=[stay(arrival=arrival, nights=3)], occurred_at=START + timedelta(minutes=1)
        )
    )
    await h.settle()

    update = (await h.rows("SELECT * FROM inlet_calls WHERE operation = 'update'"))[0]
    assert (update["state"], update["attempts"], update["deadline"]) == ("pending", 1, None)
    assert await h.rows("SELECT * FROM escalations") == []
    await h.advance(timedelta(minutes=5))
    assert (await h.rows("SELECT state FROM inlet_calls WHERE id = $1", update["id"]))[0][
        "state"
    ] == "succeeded"
    assert await h.rows("SELECT * FROM escalations") == []


async def cancel(h: Harness, arrival: datetime, minutes: int = 1) -> None:
    cancelled = stay(arrival=arrival, status="cancelled")
    await h.post(
        event("e-cancel", occurred_at=START + timedelta(minutes=minutes), stays=[cancelled])
    )
    await h.settle()


@pytest.mark.parametrize("earlier", ["queued", "escalated"])
async def test_a_lost_grant_of_a_stay_then_cancelled_is_recovered_and_revoked(
    h: Harness, earlier: str
) -> None:
    """The grant exists at Inlet, the service never got its ReferenceId, the stay is cancelled:
    a GrantAccess without email or phone gets the grant back, and a RevokeAccess ends it."""
    arrival = START + 2 * HOUR
    await lose_the_answer_to_a_grant(h, arrival, earlier)
    if earlier == "escalated":
        await h.advance(timedelta(minutes=5))
        escalations = await h.rows("SELECT reason FROM escalations")
        assert [e["reason"] for e in escalations] == ["permanent_error"]
    assert await h.rows("SELECT * FROM grants") == []  # no ReferenceId known
    held = (await h.grants())[0]
    assert await h.opens(held["code"], "L-101", arrival + HOUR)
    messages = await h.messages()
    assert {m["channel"] for m in messages} == {"email", "sms"}  # from the lost grant

    await cancel(h, arrival)

    requests = await h.inlet_requests()
    grants_sent = 2 if earlier == "escalated" else 1
    assert [r["path"] for r in requests] == ["/GrantAccess"] * (grants_sent + 1) + ["/RevokeAccess"]
    recovery, revoke = requests[-2]["body"], requests[-1]["body"]
    assert recovery["externalId"] == held["externalId"]
    assert not {"email", "phoneNumber", "countryCode"} & set(recovery)
    assert revoke["ReferenceId"] == held["ReferenceId"]
    assert [g["state"] for g in await h.grants()] == ["revoked"]
    assert not await h.opens(held["code"], "L-101", arrival + HOUR)
    assert await h.messages() == messages  # the recovery told the guest nothing
    stored = await h.rows("SELECT state, reference_id, code FROM grants")
    assert stored == [{"state": "revoked", "reference_id": held["ReferenceId"], "code": None}]
    calls = await h.rows("SELECT operation, reason, state FROM inlet_calls ORDER BY id")
    assert calls == [
        {
            "operation": "grant",
            "reason": "booking",
            "state": "superseded" if earlier == "queued" else "failed",
        },
        {"operation": "grant", "reason": "recover", "state": "succeeded"},
        {"operation": "revoke", "reason": "booking", "state": "succeeded"},
    ]
    access = await h.service.get("/v1/bookings/demo-pms/R-1001/access", headers=BEARER)
    assert [s["state"] for s in (await access.json())["stays"]] == ["revoked"]
    assert all(e["resolved_at"] is not None for e in await h.rows("SELECT * FROM escalations"))
    # Converged: a sweep and another look at the booking plan nothing more.
    assert await h.runtime.reconciler.sweep() == 0
    await h.rows("UPDATE bookings SET marked_seq = marked_seq + 1")
    await h.advance(timedelta(minutes=30))
    assert len(await h.inlet_requests()) == len(requests)
    assert len(await h.rows("SELECT id FROM inlet_calls")) == len(calls)


@pytest.mark.parametrize("status", [400, 429])
async def test_a_grant_refused_with_a_4xx_then_cancelled_is_withdrawn_without_recovery(
    h: Harness, status: int
) -> None:
    arrival = START + 2 * HOUR
    await h.fault(kind="status", status=status, count=1, operations=["grant"])
    await h.post(event("e1", arrival=arrival))
    await h.settle()

    await cancel(h, arrival)
    await h.advance(timedelta(minutes=30))

    assert [r["path"] for r in await h.inlet_requests()] == ["/GrantAccess"]
    assert await h.grants() == []
    states = [c["state"] for c in await h.rows("SELECT state FROM inlet_calls")]
    assert states == ["failed" if status == 400 else "superseded"]


async def test_a_failed_recovery_is_escalated_like_a_failed_revocation(h: Harness) -> None:
    arrival = START + 2 * HOUR
    await h.fault(kind="latency", seconds=3, count=1, operations=["grant"])
    await h.post(event("e1", arrival=arrival))
    await h.settle()
    await until_the_sandbox_holds_a_grant(h)
    await h.fault(
        kind="success_false", retryable=False, message="Lock offline", count=1, operations=["grant"]
    )

    await cancel(h, arrival)

    escalations = await h.rows("SELECT operation, severity, reason FROM escalations")
    assert escalations == [
        {"operation": "revoke", "severity": "critical", "reason": "permanent_error"}
    ]
    text = await (await h.service.get("/metrics")).text()
    assert (
        'inlet_bridge_escalations_open{operation="revoke",property="oslo-1",severity="critical"} 1.0'
        in text
    )
    # The escalated recovery is not repeated blindly; the grant is still at Inlet for a person.
    await h.advance(timedelta(minutes=30))
    assert [r["path"] for r in await h.inlet_requests()] == ["/GrantAccess"] * 2
    assert [g["state"] for g in await h.grants()] == ["active"]
