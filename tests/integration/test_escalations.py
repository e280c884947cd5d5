"""What needs a person, and what happens when they act: the escalations API and CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

from ..support import ADMIN_HEADERS, START, Harness, environ, event

HOUR = timedelta(hours=1)


async def escalate_a_grant(h: Harness) -> int:
    await h.fault(kind="success_false", retryable=False, message="Lock L-101 unknown", count=1)
    await h.post(event("e1", arrival=START + 2 * HOUR))
    await h.settle()
    listed = await (await h.service.get("/v1/escalations", headers=ADMIN_HEADERS)).json()
    [escalation] = listed["escalations"]
    assert escalation["reason"] == "permanent_error"
    assert escalation["operation"] == "grant"
    assert "Lock L-101 unknown" in escalation["message"]
    return int(escalation["id"])


async def test_retry_replans_from_the_current_booking_and_resolves(h: Harness) -> None:
    escalation_id = await escalate_a_grant(h)
    assert await h.grants() == []
    response = await h.service.post(
        f"/v1/escalations/{escalation_id}/retry",
        json={"note": "lock added in Inlet"},
        headers=ADMIN_HEADERS,
    )
    assert response.status == 200
    assert await response.json() == {
        "id": escalation_id,
        "outcome": "retried",
        "follow": f"/v1/escalations/{escalation_id}",
    }
    planning = await (
        await h.service.get(f"/v1/escalations/{escalation_id}", headers=ADMIN_HEADERS)
    ).json()
    assert planning["retry"]["state"] == "planning"
    assert planning["retry"]["retried_by"] == "ADMIN_TOKEN"
    await h.settle()
    done = await (
        await h.service.get(f"/v1/escalations/{escalation_id}", headers=ADMIN_HEADERS)
    ).json()
    assert done["retry"]["state"] == "succeeded"
    assert done["retry"]["call"]["operation"] == "grant"
    assert len(await h.grants()) == 1
    [row] = await h.rows("SELECT resolved_at, resolved_note FROM escalations")
    assert row["resolved_at"] is not None
    assert row["resolved_note"] == "retried: lock added in Inlet"
    still_open = await (await h.service.get("/v1/escalations", headers=ADMIN_HEADERS)).json()
    assert still_open == {"escalations": []}
    again = await h.service.post(
        f"/v1/escalations/{escalation_id}/retry", json={"note": "x"}, headers=ADMIN_HEADERS
    )
    assert again.status == 404


async def test_resolve_needs_a_note_and_an_admin(h: Harness) -> None:
    escalation_id = await escalate_a_grant(h)
    path = f"/v1/escalations/{escalation_id}/resolve"
    assert (await h.service.post(path, json={"note": "done"})).status == 401
    empty = await h.service.post(path, json={"note": " "}, headers=ADMIN_HEADERS)
    assert empty.status == 422
    missing = await h.service.post(path, json={}, headers=ADMIN_HEADERS)
    assert (await missing.json())["problems"] == [{"path": "note", "message": "is required"}]
    done = await h.service.post(path, json={"note": "granted by hand"}, headers=ADMIN_HEADERS)
    assert await done.json() == {"id": escalation_id, "outcome": "resolved"}
    await h.advance(timedelta(minutes=10))
    # Resolved without a retry: the booking is looked at again only when it changes.
    resolved = await (
        await h.service.get("/v1/escalations?state=resolved", headers=ADMIN_HEADERS)
    ).json()
    assert [e["resolved_note"] for e in resolved["escalations"]] == ["granted by hand"]
    bad = await h.service.get("/v1/escalations?severity=loud", headers=ADMIN_HEADERS)
    assert bad.status == 422


async def test_cli_lists_and_resolves(h: Harness, database_url: str) -> None:
    escalation_id = await escalate_a_grant(h)
    env = {"PATH": os.environ.get("PATH", ""), **environ(database_url)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603
            [sys.executable, "-m", "inlet_bridge", "escalations", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    listed = cli("list")
    assert listed.returncode == 0, listed.stderr
    assert f"#{escalation_id} high" in listed.stdout
    assert "permanent_error" in listed.stdout
    assert "1 escalation(s)" in listed.stdout
    resolved = cli("resolve", str(escalation_id), "--note", "handled at the desk")
    assert resolved.returncode == 0
    assert "resolved" in resolved.stdout
    assert "0 escalation(s)" in cli("list").stdout
    assert cli("retry", str(escalation_id), "--note", "x").returncode == 1


async def test_a_retry_that_fails_again_names_the_new_escalation(h: Harness) -> None:
    escalation_id = await escalate_a_grant(h)
    await h.fault(kind="success_false", retryable=False, message="Lock L-101 unknown", count=1)
    retried = await h.service.post(
        f"/v1/escalations/{escalation_id}/retry", json={"note": "try again"}, headers=ADMIN_HEADERS
    )
    assert retried.status == 200
    await h.settle()
    body = await (
        await h.service.get(f"/v1/escalations/{escalation_id}", headers=ADMIN_HEADERS)
    ).json()
    assert body["retry"]["state"] == "failed_again"
    [again] = await h.rows("SELECT id FROM escalations WHERE resolved_at IS NULL")
    assert body["retry"]["escalation_id"] == again["id"] != escalation_id
    assert "Lock L-101 unknown" in body["retry"]["call"]["last_message"]
    viewer_blind = await h.service.get("/v1/escalations/999999", headers=ADMIN_HEADERS)
    assert viewer_blind.status == 404
