"""What does the service do, in one command? The demo: a hotel, sample bookings, working access.

Starts the embedded PostgreSQL, the Inlet sandbox, a Spectra PMS emulator, an apaleo emulator
and the service with the demo hotel, posts three bookings through the ingest API (one arriving
today, one next week, one cancelled), puts two reservations in the emulated Spectra (one arriving
today, one in four days) that the service polls through its `[spectra.fjord]` connection, makes
one apaleo reservation arriving today whose webhook notification the service receives through
its `[apaleo.fjord]` connection (then fetches the reservation), and prints what access each gets
as the service converges, and the code it writes back to the Spectra and apaleo reservations.
The service's own JSON logs go to `<data dir>/demo.log`. The guests and codes shown are the
demo's made-up data.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import aiohttp
import msgspec
from aiohttp import web

from inlet_bridge import signing
from inlet_bridge.app import create_app
from inlet_bridge.clock import SystemClock
from inlet_bridge.domain.config import ApaleoConnection, HotelsConfig, SpectraConnection
from inlet_bridge.domain.secret import Secret
from inlet_bridge.doubles.apaleo.emulator import create_apaleo_emulator
from inlet_bridge.doubles.inlet.sandbox import create_sandbox_app
from inlet_bridge.doubles.spectra.emulator import create_spectra_emulator
from inlet_bridge.logs import JsonFormatter, Masker
from inlet_bridge.serving import start_on_loopback
from inlet_bridge.settings import Settings

PROPERTIES = Path(__file__).resolve().parent / "properties.toml"
TOKEN = "demo-pms-token"  # noqa: S105 - the demo source's made-up token
WEBHOOK_SECRET = "whsec_ZGVtby1wbXMtb3V0Ym91bmQtc2VjcmV0"  # noqa: S105 - the demo's own
ADMIN = "demo-admin-token"
# The emulated Spectra hotel: its connection, as `[spectra.fjord]` in a properties file would be.
SPECTRA = "fjord"
SPECTRA_SOURCE = f"spectra-{SPECTRA}"
SPECTRA_HOTEL = "FJD"
SPECTRA_USER = "inlet"
SPECTRA_PASSWORD = "demo-spectra-password"  # noqa: S105 - the demo emulator's made-up password
SPECTRA_POLL_SECONDS = 2.0
# The emulated apaleo account: the demo hotel as apaleo property FJD, notifying the service.
APALEO = "fjord"
APALEO_SOURCE = f"apaleo-{APALEO}"
APALEO_PROPERTY = "FJD"
APALEO_CLIENT = "inlet-bridge-demo"
APALEO_SECRET = "demo-apaleo-client-secret"  # noqa: S105 - the demo emulator's made-up secret
APALEO_HOOK_USER = "apaleo"
APALEO_HOOK_PASSWORD = "demo-apaleo-hook-password"  # noqa: S105 - likewise


class Watched(NamedTuple):
    """A demo booking and the access it should end with."""

    source: str
    booking_id: str
    expect: str  # how its description starts once converged
    spectra_guid: str | None = None  # a Spectra reservation: its code is written back there
    apaleo_id: str | None = None  # an apaleo reservation: its code is written to its comment


def demo_environ(environ: Mapping[str, str], port: int) -> dict[str, str]:
    env = dict(environ)
    env.setdefault("PROPERTIES_FILE", str(PROPERTIES))
    env.setdefault("DEMO_PMS_TOKEN", TOKEN)
    env.setdefault("DEMO_PMS_WEBHOOK_SECRET", "whsec_ZGVtby1zaWduaW5nLXNlY3JldA==")
    env.setdefault("INLET_API_KEY_OSLO_1", "demo-inlet-key")
    env.setdefault("ADMIN_TOKEN", ADMIN)
    env["PORT"] = str(port)
    env.setdefault("HOST", "127.0.0.1")
    return env


def sample_bookings(now: datetime) -> list[dict[str, Any]]:
    run = uuid.uuid4().hex[:6]
    today = now + timedelta(hours=2)
    next_week = now + timedelta(days=7)

    def booking(
        number: str, arrival: datetime, room: str, status: str, guest: dict[str, str]
    ) -> dict[str, Any]:
        return {
            "event_id": f"demo-{run}-{number}",
            "source": "demo-pms",
            "occurred_at": now.isoformat(),
            "booking": {
                "booking_id": f"DEMO-{run}-{number}",
                "property_id": "oslo-1",
                "booking_type": "private",
                "stays": [
                    {
                        "stay_id": f"DEMO-{run}-{number}-1",
                        "resource_id": room,
                        "arrival": arrival.isoformat(timespec="seconds"),
                        "departure": (arrival + timedelta(days=2)).isoformat(timespec="seconds"),
                        "status": status,
                        "guests": [guest],
                    }
                ],
            },
        }

    return [
        booking(
            "1",
            today,
            "101",
            "confirmed",
            {"name": "Ola Nordmann", "email": "ola@example.no", "phone": "+4791234567"},
        ),
        booking(
            "2",
            next_week,
            "201",
            "confirmed",
            {"name": "Kari Nordmann", "email": "kari@example.no", "phone": "+4791234568"},
        ),
        booking("3", today, "102", "cancelled", {"name": "Per Hansen", "email": "per@example.no"}),
    ]


def sample_reservations(now: datetime, zone: ZoneInfo) -> list[tuple[str, dict[str, Any]]]:
    """Two reservations as Spectra holds them (hotel wall-clock times): today, in four days."""
    run = uuid.uuid4().hex[:6]

    def wall(at: datetime) -> str:
        return at.astimezone(zone).replace(tzinfo=None).isoformat(timespec="seconds")

    def reservation(number: str, arrival: datetime, room: str, guest: dict[str, str]) -> Any:
        return {
            "reservationNumber": f"SP-{run}-{number}",
            "status": "Confirmed",
            "arrival": wall(arrival),
            "departure": wall(arrival + timedelta(days=2)),
            "roomNumber": room,
            "guests": [guest],
        }

    today = (now + timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    return [
        (
            str(uuid.uuid4()),
            reservation(
                "1",
                today,
                "202",
                {
                    "firstName": "Nora",
                    "lastName": "Dahl",
                    "email": "nora@example.no",
                    "mobile": "+4791234570",
                },
            ),
        ),
        (
            str(uuid.uuid4()),
            reservation(
                "2",
                today + timedelta(days=4),
                "102",
                {"firstName": "Emil", "lastName": "Berg", "email": "emil@example.no"},
            ),
        ),
    ]


def with_spectra(hotels: HotelsConfig, base_url: str) -> HotelsConfig:
    """The demo hotel polled from the emulator every few seconds, codes written back."""
    connection = SpectraConnection(
        property_id="oslo-1",
        base_url=base_url,
        username=Secret(SPECTRA_USER),
        password=Secret(SPECTRA_PASSWORD),
        hotel_code=SPECTRA_HOTEL,
        poll_interval_seconds=SPECTRA_POLL_SECONDS,
        timeout_seconds=5.0,
    )
    return msgspec.structs.replace(hotels, spectra={**hotels.spectra, SPECTRA: connection})


def with_apaleo(hotels: HotelsConfig, base_url: str) -> HotelsConfig:
    """The demo hotel on the apaleo emulator: notified by webhook, codes written back."""
    connection = ApaleoConnection(
        property_id="oslo-1",
        apaleo_property_id=APALEO_PROPERTY,
        api_url=base_url,
        identity_url=base_url,
        client_id=Secret(APALEO_CLIENT),
        client_secret=Secret(APALEO_SECRET),
        webhook_username=Secret(APALEO_HOOK_USER),
        webhook_password=Secret(APALEO_HOOK_PASSWORD),
        timeout_seconds=5.0,
    )
    return msgspec.structs.replace(hotels, apaleo={**hotels.apaleo, APALEO: connection})


def sample_apaleo_reservation(now: datetime) -> tuple[str, dict[str, Any]]:
    """One apaleo reservation arriving today (apaleo's times carry their offset)."""
    run = uuid.uuid4().hex[:6].upper()
    arrival = (now + timedelta(hours=4)).replace(minute=0, second=0, microsecond=0)
    return f"AP{run}-1", {
        "status": "Confirmed",
        "arrival": arrival.isoformat(),
        "departure": (arrival + timedelta(days=2)).isoformat(),
        "unit": {"id": "FJD-201", "name": "201"},
        "primaryGuest": {
            "firstName": "Sofie",
            "lastName": "Larsen",
            "email": "sofie@example.no",
            "phone": "+4791234571",
        },
        "comment": "Arrives by train",
    }


async def run_demo(
    environ: Mapping[str, str],
    *,
    once: bool,
    timeout: float,  # noqa: ASYNC109 - a deadline for --once, not a call timeout
    port: int,
    inlet_port: int,
) -> int:
    settings = Settings.from_env(demo_environ(environ, port))
    hook, hook_runner, hook_url = await _demo_pms_receiver()
    hotels = settings.require_hotels()
    # The demo PMS receives signed webhooks for every access change.
    source = msgspec.structs.replace(
        hotels.sources["demo-pms"], webhook_url=hook_url, webhook_secret=Secret(WEBHOOK_SECRET)
    )
    hotels = msgspec.structs.replace(
        hotels,
        inlet=msgspec.structs.replace(hotels.inlet, base_url=f"http://127.0.0.1:{inlet_port}"),
        sources={**hotels.sources, "demo-pms": source},
    )
    zone = hotels.properties["oslo-1"].timezone
    spectra_app = create_spectra_emulator(
        username=SPECTRA_USER,
        password=SPECTRA_PASSWORD,
        hotel_code=SPECTRA_HOTEL,
        timezone=zone.key,
    )
    spectra_runner, spectra_url = await start_on_loopback(spectra_app)
    hotels = with_spectra(hotels, spectra_url)
    apaleo_app = create_apaleo_emulator(
        client_id=APALEO_CLIENT,
        client_secret=APALEO_SECRET,
        property_id=APALEO_PROPERTY,
        clock=SystemClock().now,
    )
    apaleo_runner, apaleo_url = await start_on_loopback(apaleo_app)
    hotels = with_apaleo(hotels, apaleo_url)
    settings = msgspec.structs.replace(settings, hotels=hotels)
    _log_to_file(settings.data_dir / "demo.log", settings.log_level, Masker(settings.log_mask_key))
    print(f"inlet-bridge demo: data in {settings.data_dir.resolve()}, logs in demo.log there")

    sandbox = web.AppRunner(create_sandbox_app())
    await sandbox.setup()
    await web.TCPSite(sandbox, "127.0.0.1", inlet_port).start()
    service = web.AppRunner(create_app(settings), shutdown_timeout=5)
    await service.setup()
    await web.TCPSite(service, settings.host, port).start()
    base = f"http://127.0.0.1:{port}"
    print(
        f"service on {base}  (Inlet sandbox on http://127.0.0.1:{inlet_port},"
        f" Spectra emulator on {spectra_url}, polled every {SPECTRA_POLL_SECONDS:g} s,"
        f" apaleo emulator on {apaleo_url})"
    )
    try:
        async with aiohttp.ClientSession() as http:
            now = datetime.now(UTC)
            bookings = sample_bookings(now)
            watched: list[Watched] = []
            for body, expect in zip(bookings, ("active", "waiting", "no access"), strict=True):
                async with http.post(
                    f"{base}/v1/events", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
                ) as response:
                    answer = await response.json()
                    print(
                        f"posted {body['booking']['booking_id']}: HTTP {response.status} {answer}"
                    )
                watched.append(Watched("demo-pms", body["booking"]["booking_id"], expect))
            for (guid, raw), expect in zip(
                sample_reservations(now, zone), ("active", "waiting"), strict=True
            ):
                async with http.put(
                    f"{spectra_url}/_emulator/reservations/{guid}", json=raw
                ) as response:
                    print(
                        f"Spectra reservation {raw['reservationNumber']} created in the emulator:"
                        f" HTTP {response.status}"
                    )
                watched.append(Watched(SPECTRA_SOURCE, raw["reservationNumber"], expect, guid))
            watched.append(await _apaleo_booking(http, apaleo_url, base, now))
            converged = await _watch(
                http, base, spectra_url, apaleo_url, watched, once=once, timeout=timeout
            )
    finally:
        await service.cleanup()
        await sandbox.cleanup()
        await hook_runner.cleanup()
        await spectra_runner.cleanup()
        await apaleo_runner.cleanup()
    print(f"the demo PMS received {len(hook.received)} signed webhook(s)")
    return 0 if converged or not once else 1


async def _apaleo_booking(
    http: aiohttp.ClientSession, apaleo_url: str, base: str, now: datetime
) -> Watched:
    """An apaleo reservation made in the emulator, which notifies the service's receiver."""
    async with http.post(
        f"{apaleo_url}/_emulator/subscription",
        json={
            "endpoint_url": f"{base}/v1/adapters/apaleo/{APALEO}/webhook",
            "username": APALEO_HOOK_USER,
            "password": APALEO_HOOK_PASSWORD,
        },
    ) as response:
        response.raise_for_status()
    reservation_id, raw = sample_apaleo_reservation(now)
    async with http.put(f"{apaleo_url}/_emulator/reservations/{reservation_id}", json=raw) as r:
        r.raise_for_status()
    async with http.post(
        f"{apaleo_url}/_emulator/notify", json={"type": "created", "entity_id": reservation_id}
    ) as response:
        sent = await response.json()
    print(
        f"apaleo reservation {reservation_id} created in the emulator; its notification was"
        f" answered HTTP {sent['status']} by the service"
    )
    return Watched(APALEO_SOURCE, reservation_id, "active", apaleo_id=reservation_id)


class _DemoPms:
    """A PMS's webhook endpoint: verifies each signature and prints what it was told."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        ok = signing.verify(
            [WEBHOOK_SECRET],
            msg_id=request.headers.get("webhook-id", ""),
            timestamp=request.headers.get("webhook-timestamp", ""),
            signature_header=request.headers.get("webhook-signature", ""),
            body=body,
            now=datetime.now(UTC),
        )
        change = msgspec.json.decode(body)
        data = change["data"]
        self.received.append(change)
        print(
            f"  demo PMS webhook ({'signature ok' if ok else 'BAD SIGNATURE'}): {change['type']}"
            f" {data['booking_id']} stay {data['stay_id']}: code {data.get('code_formatted')},"
            f" link {data.get('link')}"
        )
        return web.Response(status=204 if ok else 401)


async def _demo_pms_receiver() -> tuple[_DemoPms, web.AppRunner, str]:
    pms = _DemoPms()
    app = web.Application()
    app.router.add_post("/inlet-bridge/webhooks", pms.handle)
    runner, base = await start_on_loopback(app)
    return pms, runner, f"{base}/inlet-bridge/webhooks"


async def _watch(
    http: aiohttp.ClientSession,
    base: str,
    spectra_url: str,
    apaleo_url: str,
    watched: list[Watched],
    *,
    once: bool,
    timeout: float,  # noqa: ASYNC109 - a deadline for --once, not a call timeout
) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    shown: dict[str, str] = {}
    while True:
        async with http.get(f"{spectra_url}/_emulator/codes") as response:
            written: dict[str, dict[str, list[str]]] = await response.json()
        converged = True
        for booking in watched:
            label = f"{booking.source} {booking.booking_id}"
            state, code = await _describe(http, base, booking.source, booking.booking_id)
            done = state.startswith(booking.expect)
            if booking.spectra_guid is not None:
                posted = written.get(booking.spectra_guid, {}).get("posted", [])
                if posted:
                    state += f"; code written back to the Spectra reservation: {posted[-1]}"
                # An active Spectra stay has converged once its code is in the reservation.
                done = done and (code is None or (bool(posted) and posted[-1] == code))
            if booking.apaleo_id is not None:
                comment = await _apaleo_comment(http, apaleo_url, booking.apaleo_id)
                if comment is not None:
                    state += f"; code written back to the apaleo reservation's comment: {comment}"
                done = done and (code is None or comment == code)
            converged = converged and done
            if shown.get(label) != state:
                shown[label] = state
                print(f"  {label}: {state}")
        if converged and once:
            print("converged: every demo booking has the access it should")
            return True
        if once and loop.time() > deadline:
            print("timed out before the demo bookings converged", file=sys.stderr)
            return False
        await asyncio.sleep(0.5)


async def _apaleo_comment(
    http: aiohttp.ClientSession, apaleo_url: str, reservation_id: str
) -> str | None:
    """The code line the service wrote to the apaleo reservation's comment, if any."""
    async with http.get(f"{apaleo_url}/_emulator/reservations/{reservation_id}") as response:
        raw = await response.json()
    for line in str(raw.get("comment") or "").splitlines():
        if line.startswith("Inlet access code: "):
            return line.removeprefix("Inlet access code: ")
    return None


async def _describe(
    http: aiohttp.ClientSession, base: str, source: str, booking_id: str
) -> tuple[str, str | None]:
    """What access a booking has, and its active keypad code (None when it has none)."""
    async with http.get(
        f"{base}/v1/bookings/{source}/{booking_id}",
        params={"reveal": "true"},
        headers={"Authorization": f"Bearer {ADMIN}"},
    ) as response:
        if response.status != 200:
            return "not yet reconciled", None
        timeline = await response.json()
    grants = timeline["grants"]
    active = [g for g in grants if g["state"] == "active"]
    if active:
        g = active[0]
        return (
            f"active: code {g['code_formatted']} on {', '.join(g['access_points'])}"
            f" from {g['valid_from']} to {g['valid_to']} (Inlet reference {g['reference_id']})"
        ), g["code_formatted"]
    desired = timeline["desired"]["grants"]
    if desired and not timeline["calls"]:
        return f"waiting for the send window: access is sent after {desired[0]['send_after']}", None
    if not desired:
        revoked = any(g["state"] == "revoked" for g in grants)
        return "no access (cancelled" + (", revoked at Inlet)" if revoked else ")"), None
    return "calls in progress", None


def _log_to_file(path: Path, level: str, masker: Masker) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(JsonFormatter(masker))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
