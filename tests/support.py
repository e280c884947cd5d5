"""Helpers shared by the API and integration tests: settings, events, signatures, a harness."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from aiohttp.test_utils import TestClient, TestServer

from service import webhooks
from service.app import create_app
from service.clock import ManualClock
from service.inlet.client import InletClient
from service.inlet.sandbox import create_sandbox_app
from service.keys import COMMITTER, DATABASE, HOTELS, METRICS
from service.settings import Settings
from service.workers.runtime import Runtime, build_runtime

DEMO_PROPERTIES = Path(__file__).resolve().parent.parent / "service" / "demo" / "properties.toml"
SOURCE = "demo-pms"
TOKEN = "demo-pms-token"
SIGNING_SECRET = "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHM="  # base64("secret-key-for-tests")
ROTATED_SECRET = "whsec_" + "bmV3LXNlY3JldC1rZXktZm9yLXRlc3Rz"
ADMIN = "admin-token"
INLET_KEY = "inlet-key-oslo-1"
START = datetime.fromisoformat("2026-11-23T09:00:00+00:00")


def environ(database_url: str, **extra: str) -> dict[str, str]:
    env = {
        "DATABASE_URL": database_url,
        "PROPERTIES_FILE": str(DEMO_PROPERTIES),
        "DEMO_PMS_TOKEN": TOKEN,
        "DEMO_PMS_WEBHOOK_SECRET": SIGNING_SECRET,
        "INLET_API_KEY_OSLO_1": INLET_KEY,
        "ADMIN_TOKEN": ADMIN,
        "MIGRATE_ON_START": "false",
    }
    env.update(extra)
    return env


def settings_for(database_url: str, **extra: str) -> Settings:
    return Settings.from_env(environ(database_url, **extra))


def stay(
    stay_id: str = "S1",
    *,
    resource_id: str | None = "101",
    arrival: datetime,
    nights: int = 2,
    status: str = "confirmed",
    guests: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "stay_id": stay_id,
        "resource_id": resource_id,
        "arrival": arrival.isoformat(),
        "departure": (arrival + timedelta(days=nights)).isoformat(),
        "status": status,
        "guests": guests
        if guests is not None
        else [{"name": "Ola Nordmann", "email": "ola@example.no", "phone": "+4791234567"}],
    }


def event(
    event_id: str,
    *,
    booking_id: str = "R-1001",
    occurred_at: datetime = START,
    stays: list[dict[str, Any]] | None = None,
    arrival: datetime | None = None,
    source: str = SOURCE,
    **booking: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "booking_id": booking_id,
        "property_id": "oslo-1",
        "stays": stays if stays is not None else [stay(arrival=arrival or START)],
    }
    body.update(booking)
    return {
        "event_id": event_id,
        "source": source,
        "occurred_at": occurred_at.isoformat(),
        "booking": body,
    }


def signed_headers(
    body: bytes, *, secret: str = SIGNING_SECRET, at: float | None = None
) -> dict[str, str]:
    ts = int(at if at is not None else time.time())
    msg_id = f"msg_{ts}"
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": webhooks.sign(secret, msg_id, ts, body),
        "Content-Type": "application/json",
    }


BEARER = {"Authorization": f"Bearer {TOKEN}"}
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}


class Harness:
    """The service (workers driven by hand), the Inlet sandbox over HTTP, one moving clock."""

    def __init__(
        self, service: TestClient, sandbox: TestClient, runtime: Runtime, clock: ManualClock
    ) -> None:
        self.service = service
        self.sandbox = sandbox
        self.runtime = runtime
        self.clock = clock

    @property
    def db(self) -> Any:
        return self.service.app[DATABASE]

    @property
    def metrics(self) -> Any:
        return self.service.app[METRICS]

    async def post(self, body: dict[str, Any]) -> aiohttp.ClientResponse:
        return await self.service.post("/v1/events", json=body, headers=BEARER)

    async def settle(self, rounds: int = 10) -> None:
        """Run the reconciler and the call worker until neither has anything due now."""
        for _ in range(rounds):
            planned = await self.runtime.reconciler.run_once()
            called = await self.runtime.calls.run_once()
            delivered = await self.runtime.deliveries.run_once()
            if not planned and not called and not delivered:
                return
        raise AssertionError("did not settle")

    async def advance(self, delta: timedelta) -> None:
        self.clock.advance(delta)
        await self.settle()

    async def sandbox_json(self, path: str, **params: str) -> Any:
        response = await self.sandbox.get(path, params=params)
        assert response.status == 200, await response.text()
        return await response.json()

    async def grants(self) -> list[dict[str, Any]]:
        body = await self.sandbox_json("/_sandbox/grants")
        return list(body["grants"] if isinstance(body, dict) else body)

    async def inlet_requests(self) -> list[dict[str, Any]]:
        body = await self.sandbox_json("/_sandbox/requests")
        return list(body["requests"] if isinstance(body, dict) else body)

    async def opens(self, code: str, lock: str, at: datetime) -> bool:
        body = await self.sandbox_json("/_sandbox/opens", code=code, lock=lock, at=at.isoformat())
        return bool(body["opens"])

    async def fault(self, **fault: Any) -> None:
        response = await self.sandbox.post("/_sandbox/faults", json=fault)
        assert response.status in (200, 201, 204), await response.text()

    async def timeline(self, booking_id: str, reveal: bool = True) -> dict[str, Any]:
        response = await self.service.get(
            f"/v1/bookings/{SOURCE}/{booking_id}",
            params={"reveal": "true"} if reveal else {},
            headers=ADMIN_HEADERS,
        )
        assert response.status == 200, await response.text()
        return dict(await response.json())

    async def rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return [dict(r) for r in await self.db.pool.fetch(sql, *args)]


@asynccontextmanager
async def harness(
    database_url: str, *, start: datetime = START, **extra: str
) -> AsyncIterator[Harness]:
    clock = ManualClock(start)
    sandbox = TestClient(TestServer(create_sandbox_app(api_keys=[INLET_KEY], clock=clock.now)))
    await sandbox.start_server()
    base_url = str(sandbox.make_url("")).rstrip("/")
    settings = settings_for(database_url, **extra)
    hotels = settings.require_hotels()
    hotels = msgspec.structs.replace(
        hotels, inlet=msgspec.structs.replace(hotels.inlet, base_url=base_url, timeout_seconds=2.0)
    )
    settings = msgspec.structs.replace(settings, hotels=hotels)
    app = create_app(settings, clock=clock, run_workers=False)
    service = TestClient(TestServer(app))
    await service.start_server()
    session = aiohttp.ClientSession()
    client = InletClient(session, base_url=base_url, timeout_seconds=2.0)
    runtime = build_runtime(
        settings=settings,
        hotels=app[HOTELS],
        db=app[DATABASE],
        metrics=app[METRICS],
        clock=clock,
        client=client,
        session=session,
        committer=app[COMMITTER],
        owner="test-worker",
    )
    try:
        yield Harness(service, sandbox, runtime, clock)
    finally:
        await session.close()
        await service.close()
        await sandbox.close()
