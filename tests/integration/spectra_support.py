"""A Spectra hotel next to the service: the emulator, a `[spectra.osl]` connection to it, the
harness, and the connection's poller driven by hand."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from inlet_bridge.adapters.spectra.poller import PollReport, SpectraPoller
from inlet_bridge.domain.booking import grant_key
from inlet_bridge.doubles.spectra.emulator import STATE, create_spectra_emulator
from inlet_bridge.doubles.spectra.emulator_state import EmulatorState

from ..support import DEMO_PROPERTIES, Harness, harness

CONNECTION = "osl"
SOURCE = f"spectra-{CONNECTION}"
HOTEL_CODE = "OSL"
USERNAME = "inlet"
PASSWORD = "spectra-password"


def properties_text(base_url: str, **options: Any) -> str:
    """The demo properties plus a `[spectra.osl]` connection to `base_url`."""
    lines = [
        DEMO_PROPERTIES.read_text(),
        "",
        f"[spectra.{CONNECTION}]",
        'property_id = "oslo-1"',
        f"base_url = {json.dumps(base_url)}",
        'username = { env = "SPECTRA_OSL_USERNAME" }',
        'password = { env = "SPECTRA_OSL_PASSWORD" }',
        f"hotel_code = {json.dumps(HOTEL_CODE)}",
    ]
    # JSON spells booleans, numbers and strings the way TOML does.
    lines += [f"{key} = {json.dumps(value)}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


class _LateClock:
    """The emulator's clock: the harness's clock, which exists only once the harness is up
    (and the harness needs the emulator's URL first)."""

    def __init__(self) -> None:
        self.target: Callable[[], datetime] | None = None

    def __call__(self) -> datetime:
        assert self.target is not None, "the harness clock is not bound yet"
        return self.target()


def reservation(**overrides: Any) -> dict[str, Any]:
    """A reservation as Spectra sends it (hotel-local times, no offset)."""
    raw: dict[str, Any] = {
        "reservationNumber": "R-1001",
        "status": "Confirmed",
        "arrival": "2026-11-23T15:00:00",
        "departure": "2026-11-25T11:00:00",
        "roomNumber": "101",
        "guests": [
            {
                "firstName": "Ola",
                "lastName": "Nordmann",
                "email": "ola@example.no",
                "mobile": "+4791234567",
            }
        ],
    }
    raw.update(overrides)
    return raw


class SpectraHotel:
    """The emulated hotel, the service's poller for it, and the harness around both."""

    def __init__(
        self, h: Harness, server: TestServer, session: aiohttp.ClientSession, poller: SpectraPoller
    ) -> None:
        self.h = h
        self.server = server
        self.session = session
        self.poller = poller
        self.base = str(server.make_url("/")).rstrip("/")

    @property
    def state(self) -> EmulatorState:
        return self.server.app[STATE]

    # --- the emulator's control endpoints ---

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(method, self.base + path, json=body) as response:
            assert response.status < 300, f"{method} {path}: {await response.text()}"
            if response.content_type == "application/json":
                return await response.json()
            return None

    async def put_reservation(self, guid: str, **overrides: Any) -> None:
        await self.control("PUT", f"/_emulator/reservations/{guid}", reservation(**overrides))

    async def set_status(self, guid: str, status: str) -> None:
        await self.control("POST", f"/_emulator/reservations/{guid}/status", {"status": status})

    async def delete_reservation(self, guid: str) -> None:
        await self.control("DELETE", f"/_emulator/reservations/{guid}")

    async def put_conference(self, guid: str, body: dict[str, Any]) -> None:
        await self.control("PUT", f"/_emulator/conferences/{guid}", body)

    async def put_balance(self, guid: str, balance: float) -> None:
        await self.control(
            "PUT", f"/_emulator/balance/{guid}", {"balance": balance, "currency": "NOK"}
        )

    async def set_room_status(self, number: str, status: str) -> None:
        await self.control("POST", f"/_emulator/rooms/{number}/status", {"status": status})

    async def fault(self, **fault: Any) -> None:
        await self.control("POST", "/_emulator/faults", fault)

    async def clear_faults(self) -> None:
        await self.control("DELETE", "/_emulator/faults")

    async def codes(self, guid: str) -> dict[str, list[str]]:
        codes: dict[str, dict[str, list[str]]] = await self.control("GET", "/_emulator/codes")
        return codes.get(guid, {"posted": [], "disabled": []})

    # --- the service ---

    async def poll(self) -> PollReport:
        """One poll, then the reconciler, the calls and the write-back until nothing is due."""
        report = await self.poller.poll_once()
        await self.h.settle()
        return report

    async def events(self, stay_id: str) -> list[dict[str, Any]]:
        """The logged events of this connection that mention the stay, in log order."""
        return await self.h.rows(
            "SELECT event_id, booking_id, occurred_at, event::text AS body FROM events"
            " WHERE source = $1 AND event -> 'booking' -> 'stays'"
            " @> jsonb_build_array(jsonb_build_object('stay_id', $2::text))"
            " ORDER BY position",
            SOURCE,
            stay_id,
        )

    async def stored_grant(self, booking_id: str, stay_id: str) -> dict[str, Any] | None:
        rows = await self.h.rows(
            "SELECT * FROM grants WHERE grant_key = $1", grant_key(SOURCE, booking_id, stay_id)
        )
        return rows[0] if rows else None

    async def inlet_grant(self, booking_id: str, stay_id: str) -> dict[str, Any]:
        """The grant the Inlet sandbox holds for the stay (its latest, active or not)."""
        key = grant_key(SOURCE, booking_id, stay_id)
        found = [g for g in await self.h.grants() if g["externalId"] == key]
        assert found, f"Inlet holds no grant for {key}"
        return found[-1]

    async def inlet_requests_all(self) -> list[dict[str, Any]]:
        """Every request the Inlet sandbox received, in order."""
        return await self.h.inlet_requests()

    async def inlet_calls(self, kind: str) -> list[dict[str, Any]]:
        """The requests to one Inlet endpoint ("GrantAccess", "UpdateAccess", "RevokeAccess")."""
        return [r for r in await self.h.inlet_requests() if r["path"].endswith("/" + kind)]

    async def deliveries(self) -> list[dict[str, Any]]:
        return await self.h.rows(
            "SELECT sink, state, attempts FROM deliveries WHERE sink = $1 ORDER BY id",
            f"spectra:{CONNECTION}",
        )


@asynccontextmanager
async def spectra_hotel(
    database_url: str, tmp_path: Path, **options: Any
) -> AsyncIterator[SpectraHotel]:
    """The emulator on loopback, the service configured for it, and the connection's poller.

    `options` are extra keys of the `[spectra.osl]` table (hold_unpaid, timeout_seconds, ...).
    """
    clock = _LateClock()
    server = TestServer(
        create_spectra_emulator(
            username=USERNAME, password=PASSWORD, hotel_code=HOTEL_CODE, clock=clock, seed=7
        )
    )
    await server.start_server()
    try:
        properties = tmp_path / "properties.toml"
        properties.write_text(properties_text(str(server.make_url("/")).rstrip("/"), **options))
        async with harness(
            database_url,
            PROPERTIES_FILE=str(properties),
            SPECTRA_OSL_USERNAME=USERNAME,
            SPECTRA_OSL_PASSWORD=PASSWORD,
        ) as h:
            clock.target = h.clock.now
            (poller,) = [p for p in h.runtime.pollers if p.name == CONNECTION]
            async with aiohttp.ClientSession() as session:
                yield SpectraHotel(h, server, session, poller)
    finally:
        await server.close()
