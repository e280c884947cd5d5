"""The Python client of the PMS kit (`inlet_bridge/pms_client.py`) against the running service, and
interop with the `standardwebhooks` library in both directions."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks
from aiohttp import web
from aiohttp.test_utils import TestServer

from inlet_bridge.pms_client import BridgeClient, BridgeError, InvalidSignature, verify_webhook

from ..support import DEMO_PROPERTIES, SIGNING_SECRET, SOURCE, TOKEN, Harness, event, harness, stay

OUTBOUND = "whsec_" + "b3V0Ym91bmQtc2VjcmV0LWZvci10ZXN0cw=="


def wall() -> datetime:
    """The wall clock: the standardwebhooks library checks signatures against real time, so the
    service's clock starts at it too (read when a test starts, never at import)."""
    return datetime.now(UTC).replace(microsecond=0)


class Receiver:
    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        return web.Response(status=204)


@pytest.fixture
async def pms() -> AsyncIterator[tuple[Receiver, str]]:
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    server = TestServer(app)
    await server.start_server()
    yield hook, str(server.make_url("/hook"))
    await server.close()


@pytest.fixture
async def h(database_url: str, pms: tuple[Receiver, str], tmp_path: Path) -> AsyncIterator[Harness]:
    text = DEMO_PROPERTIES.read_text().replace(
        'signing_secrets = [{ env = "DEMO_PMS_WEBHOOK_SECRET" }]',
        'signing_secrets = [{ env = "DEMO_PMS_WEBHOOK_SECRET" }]\n'
        f'webhook_url = "{pms[1]}"\n'
        'webhook_secret = { env = "DEMO_PMS_OUTBOUND_SECRET" }\n',
    )
    properties = tmp_path / "properties.toml"
    properties.write_text(text)
    async with harness(
        database_url,
        start=wall(),
        PROPERTIES_FILE=str(properties),
        DEMO_PMS_OUTBOUND_SECRET=OUTBOUND,
    ) as running:
        yield running


def booking(event_id: str, booking_id: str = "R-2001", **extra: Any) -> dict[str, Any]:
    now = wall()
    return event(
        event_id,
        booking_id=booking_id,
        occurred_at=now,
        stays=[stay(arrival=now + timedelta(hours=3))],
        **extra,
    )


def signed_client(h: Harness, **options: Any) -> BridgeClient:
    return BridgeClient(h.service.base_url, source=SOURCE, signing_secret=SIGNING_SECRET, **options)


async def test_post_a_signed_event_read_its_access_and_verify_the_webhook(
    h: Harness, pms: tuple[Receiver, str]
) -> None:
    async with signed_client(h) as client:
        first = booking("kit-1")
        answer = await client.post_event(first)
        assert (answer.event_id, answer.replayed) == ("kit-1", False)
        assert answer.position is not None
        repeat = await client.post_event(first)
        assert (repeat.position, repeat.replayed) == (answer.position, True)
        await h.settle()
        access = await client.access("R-2001")
    (stay_access,) = access.stays
    assert stay_access.state == "active"
    assert stay_access.code_formatted is not None
    assert stay_access.access_points == ("L-101", "MAIN-ENTRANCE", "NIGHT-ENTRANCE")
    # The access webhook the service sent is verified by the kit...
    receiver, _ = pms
    (headers, body) = receiver.received[-1]
    change = verify_webhook(OUTBOUND, headers, body)
    assert (change.type, change.data.booking_id) == ("access.granted", "R-2001")
    assert change.data.code_formatted == stay_access.code_formatted
    # ...and by the standardwebhooks library (the other direction of the interop).
    lowered = {k.lower(): v for k, v in headers.items()}
    parsed = standardwebhooks.Webhook(OUTBOUND).verify(body, lowered)
    assert parsed["data"]["code_formatted"] == stay_access.code_formatted
    with pytest.raises(InvalidSignature):
        verify_webhook("whsec_" + "d3Jvbmc=", headers, body)
    with pytest.raises(InvalidSignature):
        verify_webhook(OUTBOUND, headers, body + b" ")


async def test_a_request_signed_by_the_standardwebhooks_library_is_accepted(h: Harness) -> None:
    body = json.dumps(booking("lib-1", "R-2002")).encode()
    msg_id = f"msg_{uuid.uuid4().hex}"
    signature = standardwebhooks.Webhook(SIGNING_SECRET).sign(msg_id, datetime.now(UTC), body)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(datetime.now(UTC).timestamp())),
        "webhook-signature": signature,
        "Inlet-Bridge-Source": SOURCE,
        "Content-Type": "application/json",
    }
    response = await h.service.post("/v1/events", data=body, headers=headers)
    assert response.status == 202, await response.text()
    tampered = dict(headers, **{"webhook-id": f"msg_{uuid.uuid4().hex}"})
    response = await h.service.post("/v1/events", data=body, headers=tampered)
    assert response.status == 401  # the signature covered the old id


async def test_batches_tokens_and_refusals(h: Harness) -> None:
    async with BridgeClient(h.service.base_url, source=SOURCE, token=TOKEN) as client:
        answers = await client.post_batch([booking("b-1", "R-3001"), booking("b-2", "R-3002")])
        assert [a.event_id for a in answers] == ["b-1", "b-2"]
        bad = booking("b-3", "R-3003")
        bad["booking"]["stays"][0]["departure"] = bad["booking"]["stays"][0]["arrival"]
        with pytest.raises(BridgeError) as invalid:
            await client.post_event(bad)
        assert (invalid.value.status, invalid.value.error) == (422, "invalid")
        assert "booking.stays[0].departure" in [p.path for p in invalid.value.problems]
        assert not invalid.value.retryable
        changed = booking("b-1", "R-3001", booking_type="company")
        with pytest.raises(BridgeError) as conflict:
            await client.post_event(changed)
        assert (conflict.value.status, conflict.value.error) == (409, "conflict")
        with pytest.raises(BridgeError) as missing:
            await client.access("R-9999")
        assert missing.value.status == 404
        foreign = booking("b-4", "R-3004")
        foreign["booking"]["property_id"] = "no-such-hotel"
        with pytest.raises(BridgeError) as unknown:
            await client.post_event(foreign)
        assert unknown.value.status == 422
    async with BridgeClient(h.service.base_url, source=SOURCE, token="wrong") as client:
        with pytest.raises(BridgeError) as unauthorized:
            await client.post_event(booking("b-5"))
        assert unauthorized.value.status == 401


async def test_503_and_429_are_waited_for_and_retried_with_a_new_signature() -> None:
    seen: list[dict[str, str]] = []

    async def flaky(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        if len(seen) == 1:
            return web.json_response(
                {"error": "unavailable", "message": "retry later"},
                status=503,
                headers={"Retry-After": "0"},
            )
        if len(seen) == 2:
            return web.json_response(
                {"error": "rate_limited", "message": "slow down"},
                status=429,
                headers={"Retry-After": "0"},
            )
        return web.json_response(
            {"event_id": "e-1", "position": 7, "received_at": "2026-11-23T09:00:00Z"}, status=202
        )

    app = web.Application()
    app.router.add_post("/v1/events", flaky)
    server = TestServer(app)
    await server.start_server()
    try:
        base = str(server.make_url("/")).rstrip("/")
        async with BridgeClient(base, source=SOURCE, signing_secret=SIGNING_SECRET) as client:
            answer = await client.post_event(booking("e-1"))
        assert (answer.event_id, answer.position) == ("e-1", 7)
        assert len({h["webhook-id"] for h in seen}) == 3  # each attempt signed anew
        async with BridgeClient(
            base, source=SOURCE, signing_secret=SIGNING_SECRET, attempts=1
        ) as once:
            seen.clear()
            with pytest.raises(BridgeError) as refused:
                await once.post_event(booking("e-1"))
        assert (refused.value.status, refused.value.retry_after) == (503, 0.0)
        assert refused.value.retryable
    finally:
        await server.close()


def test_a_client_needs_exactly_one_credential() -> None:
    with pytest.raises(ValueError, match="signing_secret or a token"):
        BridgeClient("http://127.0.0.1:1", source=SOURCE)
    with pytest.raises(ValueError, match="signing_secret or a token"):
        BridgeClient(
            "http://127.0.0.1:1", source=SOURCE, signing_secret=SIGNING_SECRET, token=TOKEN
        )
