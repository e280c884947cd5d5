"""Helpers shared by the API and integration tests: settings, events, signatures, a harness."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from inlet_bridge import signing
from inlet_bridge.certify.stage import Stage, stage
from inlet_bridge.doubles.inlet.sandbox_state import Readings
from inlet_bridge.settings import Settings
from inlet_bridge.store.successes import Recorded, SuccessStore

DEMO_PROPERTIES = (
    Path(__file__).resolve().parent.parent / "inlet_bridge" / "demo" / "properties.toml"
)
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
    body: bytes,
    *,
    secret: str = SIGNING_SECRET,
    at: float | None = None,
    source: str | None = SOURCE,
    msg_id: str | None = None,
) -> dict[str, str]:
    """Standard Webhooks headers (a new webhook-id each time), naming `source` (None: not)."""
    ts = int(at if at is not None else time.time())
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": signing.sign(secret, msg_id, ts, body),
        "Content-Type": "application/json",
    }
    if source is not None:
        headers["Inlet-Bridge-Source"] = source
    return headers


def signed_read(
    method: str, path: str, *, at: float, secret: str = SIGNING_SECRET, msg_id: str | None = None
) -> dict[str, str]:
    """Headers of a signed read: the signature covers `{METHOD} {path}` (our extension)."""
    headers = signed_headers(
        signing.read_content(method, path), secret=secret, at=at, source=None, msg_id=msg_id
    )
    del headers["Content-Type"]
    return headers


BEARER = {"Authorization": f"Bearer {TOKEN}"}
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}


class Harness(Stage):
    """The stage of inlet_bridge.certify, plus what only tests may do (raw SQL, fixed tokens)."""

    async def timeline(self, booking_id: str, reveal: bool = True) -> dict[str, Any]:  # type: ignore[override]
        return await super().timeline(SOURCE, booking_id, reveal)

    async def rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return [dict(r) for r in await self.db.pool.fetch(sql, *args)]


@asynccontextmanager
async def harness(
    database_url: str,
    *,
    start: datetime = START,
    inlet_api_keys: list[str] | None = None,
    readings: Readings | None = None,
    **extra: str,
) -> AsyncIterator[Harness]:
    """The stage with the demo hotel; `readings`: how the sandbox plays what Inlet does not
    publish (one account per API key and a new grant after a revoke, unless told otherwise)."""
    async with stage(
        settings_for(database_url, **extra),
        start=start,
        source_token=TOKEN,
        admin_token=ADMIN,
        inlet_api_keys=inlet_api_keys or [INLET_KEY],
        readings=readings,
        kind=Harness,
    ) as running:
        yield running


_event_ids = itertools.count(1)


async def send(h: Harness, booking_id: str, stays: list[dict[str, Any]], **booking: Any) -> None:
    """Post the booking as the PMS sees it now, then let the service act on it."""
    body = event(
        f"evt-{next(_event_ids)}",
        booking_id=booking_id,
        occurred_at=h.clock.now(),
        stays=stays,
        **booking,
    )
    response = await h.post(body)
    assert response.status == 202, await response.text()
    await h.settle()


async def bodies(h: Harness, path: str) -> list[dict[str, Any]]:
    """The bodies of the Inlet calls made to `path`, in order."""
    return [r["body"] for r in await h.inlet_requests() if r["path"] == path]


# Two hotels, two sources, operators of each role: the trust boundaries between them.
OTHER_SOURCE = "other-pms"
OTHER_TOKEN = "other-pms-token"
VIEWER = "viewer-token"
OSLO_OPERATOR = "oslo-operator-token"
AUDITOR = "auditor-token"
TWO_HOTELS_EXTRA = f"""
[sources.{OTHER_SOURCE}]
properties = ["bergen-1"]
token = {{ env = "OTHER_PMS_TOKEN" }}
rate_limit = {{ per_second = 1, burst = 2 }}

[properties.bergen-1]
name = "Demo Hotel Bergen"
timezone = "Europe/Oslo"
inlet_api_key = {{ env = "INLET_API_KEY_OSLO_1" }}
common_doors = ["MAIN-ENTRANCE"]

[properties.bergen-1.resources."101"]
access_points = ["B-101"]

[operators.vera]
token = {{ env = "VIEWER_TOKEN" }}
role = "viewer"

[operators.olav]
token = {{ env = "OSLO_OPERATOR_TOKEN" }}
role = "operator"
properties = ["oslo-1"]

[operators.aud]
token = {{ env = "AUDITOR_TOKEN" }}
role = "admin"
"""
TWO_HOTELS_ENV = {
    "OTHER_PMS_TOKEN": OTHER_TOKEN,
    "VIEWER_TOKEN": VIEWER,
    "OSLO_OPERATOR_TOKEN": OSLO_OPERATOR,
    "AUDITOR_TOKEN": AUDITOR,
}


def two_hotels_properties(folder: Path, demo_rate_limit: str | None = None) -> Path:
    """The demo hotel (oslo-1, demo-pms) and Bergen (bergen-1, other-pms), with operators."""
    text = DEMO_PROPERTIES.read_text()
    if demo_rate_limit is not None:
        text = text.replace("rate_limit = { per_second = 50, burst = 100 }", demo_rate_limit)
    path = folder / "properties.toml"
    path.write_text(text + TWO_HOTELS_EXTRA)
    return path


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def held_recording(monkeypatch: pytest.MonkeyPatch) -> tuple[asyncio.Event, asyncio.Event]:
    """Successes' recording held open: `recording` is set when a record starts, which then
    waits for `release` (to look at what happens while an outcome is being recorded)."""
    recording, release = asyncio.Event(), asyncio.Event()
    original = SuccessStore.record

    async def held(self: SuccessStore, *args: Any, **kwargs: Any) -> list[Recorded]:
        recording.set()
        await release.wait()
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(SuccessStore, "record", held)
    return recording, release
