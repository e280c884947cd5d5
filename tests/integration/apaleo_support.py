"""An apaleo account next to the service: the emulator (which sends its notifications to the
service's receiver), an `[apaleo.osl]` connection to it, the harness, and the apaleo worker
driven by hand."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from inlet_bridge.adapters.apaleo.worker import ApaleoWorker
from inlet_bridge.domain.booking import grant_key
from inlet_bridge.doubles.apaleo.emulator import STATE, create_apaleo_emulator
from inlet_bridge.doubles.apaleo.emulator_state import AccountState

from ..support import DEMO_PROPERTIES, Harness, harness

CONNECTION = "osl"
SOURCE = f"apaleo-{CONNECTION}"
APALEO_PROPERTY = "OSL"
CLIENT_ID = "inlet-bridge-client"
CLIENT_SECRET = "apaleo-client-secret"
HOOK_USER = "apaleo-hooks"
HOOK_PASSWORD = "apaleo-hook-password"
RESERVATION = "XPGMSXGF-1"
ARRIVAL = datetime.fromisoformat("2026-11-23T15:00:00+01:00")  # START is 10:00 in Oslo


def properties_text(base_url: str, **options: Any) -> str:
    """The demo properties plus an `[apaleo.osl]` connection to the emulator at `base_url`."""
    lines = [
        DEMO_PROPERTIES.read_text(),
        "",
        f"[apaleo.{CONNECTION}]",
        'property_id = "oslo-1"',
        f"apaleo_property_id = {json.dumps(APALEO_PROPERTY)}",
        f"api_url = {json.dumps(base_url)}",
        f"identity_url = {json.dumps(base_url)}",
        'client_id = { env = "APALEO_OSL_CLIENT_ID" }',
        'client_secret = { env = "APALEO_OSL_CLIENT_SECRET" }',
        'webhook_username = { env = "APALEO_OSL_HOOK_USER" }',
        'webhook_password = { env = "APALEO_OSL_HOOK_PASSWORD" }',
    ]
    lines += [f"{key} = {json.dumps(value)}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


def reservation(**overrides: Any) -> dict[str, Any]:
    """A reservation as apaleo's API returns it (times with offsets)."""
    raw: dict[str, Any] = {
        "status": "Confirmed",
        "arrival": ARRIVAL.isoformat(),
        "departure": (ARRIVAL + timedelta(days=2, hours=-4)).isoformat(),
        "unit": {"id": "OSL-101", "name": "101", "unitGroupId": "OSL-DBL"},
        "primaryGuest": {
            "firstName": "Ola",
            "lastName": "Nordmann",
            "email": "ola@example.no",
            "phone": "+4791234567",
        },
    }
    raw.update(overrides)
    return {k: v for k, v in raw.items() if v is not None}


class _LateClock:
    def __init__(self) -> None:
        self.target: Callable[[], datetime] | None = None

    def __call__(self) -> datetime:
        assert self.target is not None, "the harness clock is not bound yet"
        return self.target()


class ApaleoAccount:
    """The emulated account, the service's apaleo worker, and the harness around both."""

    def __init__(self, h: Harness, server: TestServer, session: aiohttp.ClientSession) -> None:
        self.h = h
        self.server = server
        self.session = session
        self.base = str(server.make_url("/")).rstrip("/")
        assert h.runtime.apaleo is not None
        self.worker: ApaleoWorker = h.runtime.apaleo
        self.receiver = f"{h.service.base_url}/v1/adapters/apaleo/{CONNECTION}/webhook"

    @property
    def state(self) -> AccountState:
        return self.server.app[STATE]

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(method, self.base + path, json=body) as response:
            assert response.status < 300, f"{method} {path}: {await response.text()}"
            if response.content_type == "application/json":
                return await response.json()
            return None

    async def put(self, reservation_id: str = RESERVATION, **overrides: Any) -> dict[str, Any]:
        raw: dict[str, Any] = await self.control(
            "PUT", f"/_emulator/reservations/{reservation_id}", reservation(**overrides)
        )
        return raw

    async def notify(
        self,
        event_type: str,
        reservation_id: str = RESERVATION,
        *,
        notification_id: str | None = None,
        password: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"type": event_type, "entity_id": reservation_id}
        if notification_id is not None:
            body["id"] = notification_id
        if password is not None:
            body["password"] = password
        answer: dict[str, Any] = await self.control("POST", "/_emulator/notify", body)
        return answer

    async def fault(self, **fault: Any) -> None:
        await self.control("POST", "/_emulator/faults", fault)

    async def clear_faults(self) -> None:
        await self.control("DELETE", "/_emulator/faults")

    async def comment(self, reservation_id: str = RESERVATION) -> str | None:
        raw = await self.control("GET", f"/_emulator/reservations/{reservation_id}")
        value = raw.get("comment")
        return value if isinstance(value, str) else None

    async def work(self) -> int:
        """The worker's due notifications, then the service settles (calls, write-backs)."""
        handled = await self.worker.run_once()
        await self.h.settle()
        return handled

    async def notifications(self) -> list[dict[str, Any]]:
        return await self.h.rows(
            "SELECT notification_id, type, entity_id, state, attempts, event_id, last_error"
            " FROM apaleo_notifications ORDER BY id"
        )

    async def events(self, reservation_id: str = RESERVATION) -> list[dict[str, Any]]:
        return await self.h.rows(
            "SELECT event_id, occurred_at, event::text AS body FROM events"
            " WHERE source = $1 AND booking_id = $2 ORDER BY position",
            SOURCE,
            reservation_id,
        )

    async def inlet_grant(self, reservation_id: str = RESERVATION) -> dict[str, Any]:
        key = grant_key(SOURCE, reservation_id, reservation_id)
        found = [g for g in await self.h.grants() if g["externalId"] == key]
        assert found, f"Inlet holds no grant for {key}"
        return found[-1]

    async def inlet_calls(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in await self.h.inlet_requests() if r["path"].endswith("/" + kind)]


@asynccontextmanager
async def apaleo_account(
    database_url: str, tmp_path: Path, **options: Any
) -> AsyncIterator[ApaleoAccount]:
    """The emulator on loopback subscribed to the service's receiver, and the service."""
    clock = _LateClock()
    server = TestServer(
        create_apaleo_emulator(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            property_id=APALEO_PROPERTY,
            clock=clock,
            seed=3,
        )
    )
    await server.start_server()
    try:
        properties = tmp_path / "properties.toml"
        properties.write_text(properties_text(str(server.make_url("/")).rstrip("/"), **options))
        async with harness(
            database_url,
            PROPERTIES_FILE=str(properties),
            APALEO_OSL_CLIENT_ID=CLIENT_ID,
            APALEO_OSL_CLIENT_SECRET=CLIENT_SECRET,
            APALEO_OSL_HOOK_USER=HOOK_USER,
            APALEO_OSL_HOOK_PASSWORD=HOOK_PASSWORD,
        ) as h:
            clock.target = h.clock.now
            async with aiohttp.ClientSession() as session:
                account = ApaleoAccount(h, server, session)
                await account.control(
                    "POST",
                    "/_emulator/subscription",
                    {
                        "endpoint_url": account.receiver,
                        "username": HOOK_USER,
                        "password": HOOK_PASSWORD,
                    },
                )
                yield account
    finally:
        await server.close()
