"""Codes back to the PMS: signed webhooks for every access change, delivered in order through
failures, and the access read API scoped to the owning source."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from inlet_bridge import signing

from ..support import BEARER, DEMO_PROPERTIES, START, Harness, event, harness, stay

HOUR = timedelta(hours=1)
OUTBOUND = "whsec_" + "b3V0Ym91bmQtc2VjcmV0LWZvci10ZXN0cw=="  # base64("outbound-secret-for-tests")
OTHER_TOKEN = "other-pms-token"


class Receiver:
    """A PMS's webhook endpoint: records what it gets, fails the first `failures` deliveries."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.failures = 0
        self.attempts = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        body = await request.read()
        if self.failures > 0:
            self.failures -= 1
            return web.Response(status=503)
        self.received.append({"headers": dict(request.headers), "body": body})
        return web.Response(status=204)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    server = TestServer(app)
    await server.start_server()
    yield hook, str(server.make_url("/hook"))
    await server.close()


@pytest.fixture
async def h(
    database_url: str, receiver: tuple[Receiver, str], tmp_path: Path
) -> AsyncIterator[Harness]:
    _, url = receiver
    text = DEMO_PROPERTIES.read_text().replace(
        'signing_secrets = [{ env = "DEMO_PMS_WEBHOOK_SECRET" }]',
        'signing_secrets = [{ env = "DEMO_PMS_WEBHOOK_SECRET" }]\n'
        f'webhook_url = "{url}"\n'
        'webhook_secret = { env = "DEMO_PMS_OUTBOUND_SECRET" }\n\n'
        '[sources.other-pms]\nproperties = ["oslo-1"]\ntoken = { env = "OTHER_PMS_TOKEN" }',
    )
    properties = tmp_path / "properties.toml"
    properties.write_text(text)
    async with harness(
        database_url,
        PROPERTIES_FILE=str(properties),
        DEMO_PMS_OUTBOUND_SECRET=OUTBOUND,
        OTHER_PMS_TOKEN=OTHER_TOKEN,
    ) as running:
        yield running


def verified(delivery: dict[str, Any], now: float) -> dict[str, Any]:
    headers = {k.lower(): v for k, v in delivery["headers"].items()}
    assert signing.verify(
        [OUTBOUND],
        msg_id=headers["webhook-id"],
        timestamp=headers["webhook-timestamp"],
        signature_header=headers["webhook-signature"],
        body=delivery["body"],
        now=_at(now),
    )
    import json

    return dict(json.loads(delivery["body"]))


def _at(ts: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC)


async def test_grant_update_revoke_and_escalation_each_deliver_one_signed_webhook(
    h: Harness, receiver: tuple[Receiver, str]
) -> None:
    hook, _ = receiver
    now = h.clock.now().timestamp()
    await h.post(event("e1", arrival=START + HOUR))
    await h.settle()
    assert len(hook.received) == 1
    granted = verified(hook.received[0], now)
    assert granted["type"] == "access.granted"
    data = granted["data"]
    stored = (await h.rows("SELECT * FROM grants"))[0]
    assert (data["booking_id"], data["stay_id"], data["code"], data["code_formatted"]) == (
        "R-1001",
        "S1",
        stored["code"],
        stored["code_formatted"],
    )
    assert data["link"] == stored["link"]
    assert data["reference_id"] == stored["reference_id"]

    # A lock replacement and a re-sync give a new code: access.updated carries it.
    await h.sandbox.post("/_sandbox/locks/L-101/replace")
    await h.service.post(
        "/v1/resync",
        json={"selector": {"bookings": ["demo-pms:R-1001"]}, "dry_run": False},
        headers={"Authorization": "Bearer admin-token"},
    )
    await h.settle()
    assert len(hook.received) == 2
    updated = verified(hook.received[1], now)
    assert updated["type"] == "access.updated"
    assert updated["data"]["code_formatted"] != data["code_formatted"]
    assert updated["data"]["previous_code_formatted"] == data["code_formatted"]

    await h.post(
        event(
            "e2",
            occurred_at=START + timedelta(minutes=1),
            stays=[stay(arrival=START + HOUR, status="cancelled")],
        )
    )
    await h.settle()
    assert len(hook.received) == 3
    revoked = verified(hook.received[2], now)
    assert (revoked["type"], revoked["data"]["state"]) == ("access.revoked", "revoked")

    # A permanent failure on another booking escalates and says so.
    await h.fault(kind="success_false", retryable=False, message="Lock offline", count=1)
    await h.post(event("e3", booking_id="R-2", arrival=START + HOUR))
    await h.settle()
    assert len(hook.received) == 4
    failed = verified(hook.received[3], now)
    assert (failed["type"], failed["data"]["state"]) == ("access.grant_failed", "grant_failed")
    assert failed["data"]["booking_id"] == "R-2"
    assert "Lock offline" in failed["data"]["message"]
    ids = {d["headers"]["webhook-id"] for d in hook.received}
    assert len(ids) == 4


async def test_failing_receiver_gets_the_events_in_order_once_it_recovers(
    h: Harness, receiver: tuple[Receiver, str]
) -> None:
    hook, _ = receiver
    hook.failures = 3
    await h.post(event("e1", arrival=START + HOUR))
    await h.settle()
    await h.post(event("e2", occurred_at=START + timedelta(minutes=1), arrival=START + 2 * HOUR))
    await h.settle()
    assert hook.received == []
    assert hook.attempts == 1
    for _ in range(8):
        await h.advance(timedelta(seconds=40))
    assert hook.attempts == 5  # three failures, then the two changes
    kinds = [verified(d, h.clock.now().timestamp())["type"] for d in hook.received]
    assert kinds == ["access.granted", "access.updated"]
    states = await h.rows("SELECT state, attempts FROM deliveries ORDER BY id")
    assert states == [{"state": "delivered", "attempts": 4}, {"state": "delivered", "attempts": 1}]


async def test_receiver_down_for_an_hour_is_escalated(
    h: Harness, receiver: tuple[Receiver, str]
) -> None:
    hook, _ = receiver
    hook.failures = 10_000
    await h.post(event("e1", arrival=START + HOUR))
    await h.settle()
    for _ in range(14):
        await h.advance(timedelta(minutes=5))
    assert (await h.rows("SELECT state FROM deliveries"))[0]["state"] == "failed"
    escalation = (await h.rows("SELECT operation, reason, severity FROM escalations"))[0]
    assert escalation == {"operation": "webhook", "reason": "webhook_failed", "severity": "high"}


async def test_access_is_readable_by_its_source_only(h: Harness) -> None:
    await h.post(event("e1", arrival=START + HOUR))
    await h.post(event("e2", booking_id="R-LATER", arrival=START + 100 * HOUR))
    await h.settle()
    response = await h.service.get("/v1/bookings/demo-pms/R-1001/access", headers=BEARER)
    assert response.status == 200
    body = await response.json()
    stored = (await h.rows("SELECT * FROM grants"))[0]
    [stay_access] = body["stays"]
    assert stay_access["state"] == "active"
    assert stay_access["code"] == stored["code"]
    assert stay_access["code_formatted"] == stored["code_formatted"]
    assert stay_access["access_points"] == ["L-101", "MAIN-ENTRANCE", "NIGHT-ENTRANCE"]
    later = await (
        await h.service.get("/v1/bookings/demo-pms/R-LATER/access", headers=BEARER)
    ).json()
    assert later["stays"][0]["state"] == "pending"
    assert later["stays"][0]["send_after"].startswith("2026-11-26T13:00:00")
    other = await h.service.get(
        "/v1/bookings/demo-pms/R-1001/access", headers={"Authorization": f"Bearer {OTHER_TOKEN}"}
    )
    assert other.status == 404
    assert (await h.service.get("/v1/bookings/demo-pms/R-1001/access")).status == 401


async def test_a_failed_revocation_tells_the_pms_the_code_may_still_open_its_doors(
    h: Harness, receiver: tuple[Receiver, str]
) -> None:
    """A revocation that gives up is never reported as access gone: the PMS hears
    access.revoke_failed with the doors, the end of access and the code that may still open
    them, the access API says revoke_failed; once an operator's retry succeeds, access.revoked."""
    hook, _ = receiver
    now = h.clock.now().timestamp()
    await h.post(event("e1", arrival=START + HOUR))
    await h.settle()
    granted = verified(hook.received[0], now)["data"]

    await h.fault(kind="success_false", retryable=False, message="Lock offline", count=1)
    await h.post(
        event(
            "e2",
            occurred_at=START + timedelta(minutes=1),
            stays=[stay(arrival=START + HOUR, status="cancelled")],
        )
    )
    await h.settle()

    failed = verified(hook.received[1], now)
    data = failed["data"]
    assert (failed["type"], data["state"]) == ("access.revoke_failed", "revoke_failed")
    assert data["access_points"] == ["L-101", "MAIN-ENTRANCE", "NIGHT-ENTRANCE"]
    assert data["access_points"] == granted["access_points"]
    assert (data["valid_from"], data["valid_to"]) == (granted["valid_from"], granted["valid_to"])
    assert (data["code"], data["code_formatted"]) == (granted["code"], granted["code_formatted"])
    assert data["reason"] == "revoke:permanent_error"
    # ... and it is true: the code still opens the room at the sandbox.
    assert await h.opens(granted["code"], "L-101", START + 2 * HOUR)

    access = await h.service.get("/v1/bookings/demo-pms/R-1001/access", headers=BEARER)
    (stay_access,) = (await access.json())["stays"]
    assert stay_access["state"] == "revoke_failed"
    assert stay_access["code"] == granted["code"]
    assert stay_access["access_points"] == granted["access_points"]
    assert stay_access["escalation"] == "revoke: permanent_error"

    assert await grants_gauge(h, "revoke_failed") == 1
    assert await grants_gauge(h, "active") == 0

    (escalation,) = (
        await (await h.service.get("/v1/escalations", headers=h.admin_headers)).json()
    )["escalations"]
    assert escalation["severity"] == "critical"
    retried = await h.service.post(
        f"/v1/escalations/{escalation['id']}/retry",
        json={"note": "lock back online"},
        headers=h.admin_headers,
    )
    assert retried.status == 200
    await h.settle()

    revoked = verified(hook.received[2], now)
    assert (revoked["type"], revoked["data"]["state"]) == ("access.revoked", "revoked")
    assert not await h.opens(granted["code"], "L-101", START + 2 * HOUR)
    access = await h.service.get("/v1/bookings/demo-pms/R-1001/access", headers=BEARER)
    (stay_access,) = (await access.json())["stays"]
    assert (stay_access["state"], stay_access["code"]) == ("revoked", None)
    assert await grants_gauge(h, "revoke_failed") == 0
    assert await grants_gauge(h, "revoked") == 1


async def grants_gauge(h: Harness, state: str) -> float:
    """inlet_bridge_grants{state} as /metrics exports it."""
    text = await (await h.service.get("/metrics")).text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "inlet_bridge_grants" and sample.labels == {"state": state}:
                return sample.value
    raise AssertionError(f"no inlet_bridge_grants sample for state {state!r}")
