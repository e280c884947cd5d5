"""Where do scenarios run? A stage: the real service, an Inlet to call, and one clock.

The service is a real aiohttp server on loopback; events go through the real ingest API. The
workers are driven by hand (`settle`). Against the in-process sandbox, time moves only when a
scenario moves the clock: a 60-minute retry rule is shown in milliseconds. Against any other
Inlet (a sandbox process, Inlet's test environment) the clock is the wall clock: moving it
means waiting, with the workers settling as time passes, so a run there keeps every wait
short (retries every few seconds, set for the run). A Spectra emulator runs beside them on the
same clock, with a connection `[spectra.emulator]` to it for the demo hotel, polled by hand too
(`poll_spectra`), and an apaleo emulator whose notifications reach the service's receiver
(`[apaleo.emulator]`, fetched by hand: `work_apaleo`). Tests use the same stage.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import aiohttp
import msgspec
from aiohttp import web

from inlet_bridge.adapters.spectra.poller import PollReport, SpectraPoller
from inlet_bridge.app import create_app
from inlet_bridge.clock import Clock, ManualClock, SystemClock
from inlet_bridge.domain.config import (
    ApaleoConnection,
    HotelsConfig,
    RetryPolicy,
    SpectraConnection,
)
from inlet_bridge.domain.secret import Secret
from inlet_bridge.doubles.apaleo.emulator import create_apaleo_emulator
from inlet_bridge.doubles.inlet.sandbox import create_sandbox_app
from inlet_bridge.doubles.inlet.sandbox_state import Readings
from inlet_bridge.doubles.spectra.emulator import create_spectra_emulator
from inlet_bridge.inlet.client import InletClient
from inlet_bridge.keys import COMMITTER, DATABASE, HOTELS, METRICS
from inlet_bridge.metrics import Metrics
from inlet_bridge.serving import start_on_loopback
from inlet_bridge.settings import Settings
from inlet_bridge.store.db import Database
from inlet_bridge.workers.runtime import Runtime, build_runtime

# The Spectra emulator's hotel: the demo hotel's rooms, made-up credentials for loopback only.
SPECTRA_CONNECTION = "emulator"
SPECTRA_PROPERTY = "oslo-1"
SPECTRA_HOTEL_CODE = "FJD"
SPECTRA_USERNAME = "inlet"
SPECTRA_PASSWORD = "stage-spectra-password"  # noqa: S105 - the emulator's own, on loopback
# The apaleo emulator's account: the demo hotel as apaleo property OSL, made-up credentials.
APALEO_CONNECTION = "emulator"
APALEO_PROPERTY_ID = "OSL"
APALEO_CLIENT_ID = "stage-client"
APALEO_CLIENT_SECRET = "stage-apaleo-secret"  # noqa: S105 - the emulator's own, on loopback
APALEO_HOOK_USER = "stage-apaleo-hooks"
APALEO_HOOK_PASSWORD = "stage-apaleo-hook-password"  # noqa: S105 - likewise
# On the wall clock, how often the workers look while a scenario waits: a retry comes at most
# this much after it is due, so a run's retry rule holds within it.
WALL_CLOCK_STEP_SECONDS = 0.05
# The client's timeout against a sandbox (in-process or its own process): faults that delay
# answers are shown in seconds.
SANDBOX_TIMEOUT_SECONDS = 2.0
# The longest a scenario may wait on the wall clock: a run there never waits for hours.
MAX_WALL_CLOCK_WAIT = timedelta(minutes=5)


class HttpClient:
    """Requests to one server by path; every response is released when the stage closes."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self._session = session
        self.base_url = base_url
        self._responses: list[aiohttp.ClientResponse] = []

    async def request(self, method: str, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        response = await self._session.request(method, self.base_url + path, **kwargs)
        self._responses.append(response)
        return response

    async def get(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self.request("PUT", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self.request("DELETE", path, **kwargs)

    def release(self) -> None:
        for response in self._responses:
            response.release()
        self._responses.clear()


class CallRecorder:
    """Every Inlet request and answer, seen from our side (works against any Inlet)."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.calls: list[dict[str, Any]] = []
        self._clock = clock

    def trace(self) -> aiohttp.TraceConfig:
        config = aiohttp.TraceConfig()
        config.on_request_start.append(self._start)
        config.on_request_chunk_sent.append(self._sent)
        config.on_request_end.append(self._end)
        config.on_response_chunk_received.append(self._received)
        return config

    async def _start(self, _: Any, ctx: Any, params: aiohttp.TraceRequestStartParams) -> None:
        ctx.record = {
            "seq": len(self.calls) + 1,
            "at": self._clock().isoformat(),
            "path": params.url.path,
            "body": None,
            "status": None,
            "response": None,
        }
        ctx.sent = b""
        ctx.received = b""
        self.calls.append(ctx.record)

    async def _sent(self, _: Any, ctx: Any, params: aiohttp.TraceRequestChunkSentParams) -> None:
        ctx.sent += params.chunk
        ctx.record["body"] = _json_or_text(ctx.sent)

    async def _end(self, _: Any, ctx: Any, params: aiohttp.TraceRequestEndParams) -> None:
        ctx.record["status"] = params.response.status

    async def _received(
        self, _: Any, ctx: Any, params: aiohttp.TraceResponseChunkReceivedParams
    ) -> None:
        ctx.received += params.chunk
        ctx.record["response"] = _json_or_text(ctx.received)


def _json_or_text(raw: bytes) -> Any:
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return raw.decode(errors="replace")


class Stage:
    """The service (workers driven by hand), an Inlet over HTTP, one clock.

    `sandbox` is the target's own test endpoints (`/_sandbox/...`): the in-process sandbox, or
    a sandbox process. Against Inlet's test environment there are none (`has_sandbox` False).
    """

    def __init__(
        self,
        *,
        service: HttpClient,
        sandbox: HttpClient | None,
        app: web.Application,
        runtime: Runtime,
        clock: ManualClock | SystemClock,
        source_token: str,
        admin_token: str,
        recorder: CallRecorder,
        spectra: HttpClient | None = None,
        inlet_url: str = "",
        apaleo: HttpClient | None = None,
    ) -> None:
        self.service = service
        self._sandbox = sandbox
        self.spectra = spectra  # the emulator's control endpoints (None: no emulator hotel)
        self.apaleo = apaleo  # the apaleo emulator's control endpoints (None: none)
        self.app = app
        self.runtime = runtime
        self.clock = clock
        self.recorder = recorder
        self.inlet_url = inlet_url  # where the service's Inlet calls go
        self.source_headers = {"Authorization": f"Bearer {source_token}"}
        self.admin_headers = {"Authorization": f"Bearer {admin_token}"}

    @property
    def sandbox(self) -> HttpClient:
        if self._sandbox is None:
            raise RuntimeError("the Inlet of this stage has no sandbox endpoints")
        return self._sandbox

    @property
    def has_sandbox(self) -> bool:
        """Whether the Inlet answers the sandbox's test endpoints (and can inject faults)."""
        return self._sandbox is not None

    @property
    def wall_clock(self) -> bool:
        """True when time cannot be moved, only waited for (any Inlet but the in-process one)."""
        return not isinstance(self.clock, ManualClock)

    def restart_clock(self) -> None:
        """Set a simulated clock back to the wall time (a scenario starts from the real now, so
        the events it sends are never stamped ahead of the database's `received_at`)."""
        if isinstance(self.clock, ManualClock):
            self.clock.set(datetime.now(UTC))

    @property
    def db(self) -> Database:
        return self.app[DATABASE]

    @property
    def metrics(self) -> Metrics:
        return self.app[METRICS]

    async def post(self, body: dict[str, Any]) -> aiohttp.ClientResponse:
        return await self.service.post("/v1/events", json=body, headers=self.source_headers)

    async def settle(self, rounds: int = 10) -> None:
        """Run the reconciler, the call worker and the deliveries until nothing is due now."""
        for _ in range(rounds):
            planned = await self.runtime.reconciler.run_once()
            called = await self.runtime.calls.run_once()
            delivered = await self.runtime.deliveries.run_once()
            if not planned and not called and not delivered:
                return
        raise RuntimeError("the service did not settle")

    @property
    def spectra_poller(self) -> SpectraPoller | None:
        """The poller of the emulator's connection (None when the hotel is not configured)."""
        for poller in self.runtime.pollers:
            if poller.name == SPECTRA_CONNECTION:
                return poller
        return None

    async def poll_spectra(self) -> PollReport:
        """One poll of the emulator's hotel, then the service settles (calls, write-backs)."""
        poller = self.spectra_poller
        if poller is None:
            raise RuntimeError(f"the properties have no property {SPECTRA_PROPERTY!r}")
        report = await poller.poll_once()
        await self.settle()
        return report

    async def work_apaleo(self) -> int:
        """The apaleo notifications due now are fetched, then the service settles."""
        if self.runtime.apaleo is None:
            raise RuntimeError("the runtime has no apaleo worker")
        handled = await self.runtime.apaleo.run_once()
        await self.settle()
        return handled

    async def advance(self, delta: timedelta) -> None:
        """Let `delta` pass: at once on a simulated clock; on the wall clock by waiting, with
        the workers looking every few milliseconds, so what falls due is done on time."""
        if isinstance(self.clock, ManualClock):
            self.clock.advance(delta)
            await self.settle()
            return
        if delta > MAX_WALL_CLOCK_WAIT:
            raise RuntimeError(
                f"a scenario may not wait {delta} on the wall clock (at most"
                f" {MAX_WALL_CLOCK_WAIT}); place its bookings relative to now instead"
            )
        deadline = time.monotonic() + delta.total_seconds()
        while True:
            await self.settle()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(WALL_CLOCK_STEP_SECONDS, left))

    async def sandbox_json(self, path: str, **params: str) -> Any:
        response = await self.sandbox.get(path, params=params)
        if response.status != 200:
            raise RuntimeError(f"sandbox {path}: HTTP {response.status}")
        return await response.json()

    async def grants(self) -> list[dict[str, Any]]:
        return list(await self.sandbox_json("/_sandbox/grants"))

    async def messages(self) -> list[dict[str, Any]]:
        return list(await self.sandbox_json("/_sandbox/messages"))

    async def inlet_requests(self) -> list[dict[str, Any]]:
        """Every Inlet call made so far: path, body, status and answer."""
        return list(self.recorder.calls)

    async def opens(self, code: str, lock: str, at: datetime) -> bool:
        body = await self.sandbox_json("/_sandbox/opens", code=code, lock=lock, at=at.isoformat())
        return bool(body["opens"])

    async def fault(self, **fault: Any) -> None:
        response = await self.sandbox.post("/_sandbox/faults", json=fault)
        if response.status not in (200, 201, 204):
            raise RuntimeError(f"sandbox fault refused: HTTP {response.status}")

    async def clear_faults(self) -> None:
        response = await self.sandbox.delete("/_sandbox/faults")
        if response.status != 200:
            raise RuntimeError(f"sandbox faults not cleared: HTTP {response.status}")

    async def timeline(self, source: str, booking_id: str, reveal: bool = True) -> dict[str, Any]:
        response = await self.service.get(
            f"/v1/bookings/{source}/{booking_id}",
            params={"reveal": "true"} if reveal else {},
            headers=self.admin_headers,
        )
        if response.status != 200:
            raise RuntimeError(f"timeline of {booking_id}: HTTP {response.status}")
        return dict(await response.json())


S = TypeVar("S", bound=Stage)


@contextlib.asynccontextmanager
async def stage(
    settings: Settings,
    *,
    start: datetime | None = None,
    source_token: str,
    admin_token: str,
    inlet_api_keys: list[str] | None = None,
    inlet_url: str | None = None,
    inlet_sandbox_endpoints: bool = False,
    retry: RetryPolicy | None = None,
    kind: type[S] = Stage,  # type: ignore[assignment]
    readings: Readings | None = None,
) -> AsyncIterator[S]:
    """Start the service (workers off) and what it talks to; yield the stage; stop everything.

    Without `inlet_url`: the in-process sandbox, on a simulated clock starting at `start`
    (default: now). With it: that Inlet (a sandbox process, Inlet's test environment) on the
    wall clock; `inlet_sandbox_endpoints` says it answers the sandbox's test endpoints.
    `retry` replaces the properties file's `[retry]` (a wall-clock run retries in seconds).
    """
    clock: ManualClock | SystemClock
    sandbox_runner = None
    if inlet_url is None:
        clock = ManualClock(start or datetime.now(UTC))
        sandbox_runner, sandbox_url = await start_on_loopback(
            create_sandbox_app(api_keys=inlet_api_keys, clock=clock.now, readings=readings)
        )
        target_url, timeout = sandbox_url, SANDBOX_TIMEOUT_SECONDS
    else:
        clock = SystemClock()
        target_url = inlet_url.rstrip("/")
        sandbox_url = target_url if inlet_sandbox_endpoints else ""
        timeout = (
            SANDBOX_TIMEOUT_SECONDS
            if sandbox_url
            else settings.require_hotels().inlet.timeout_seconds
        )
    hotels = settings.require_hotels()
    spectra_runner, spectra_url = await _spectra_emulator(hotels, clock)
    apaleo_runner, apaleo_url = await _apaleo_emulator(hotels, clock)
    hotels = msgspec.structs.replace(
        hotels,
        inlet=msgspec.structs.replace(hotels.inlet, base_url=target_url, timeout_seconds=timeout),
        # every property's calls go to the target, whatever environment the file names
        properties={
            name: msgspec.structs.replace(prop, inlet_base_url=None)
            for name, prop in hotels.properties.items()
        },
        retry=retry or hotels.retry,
        spectra=_with_emulator(hotels, spectra_url),
        apaleo=_with_apaleo(hotels, apaleo_url),
    )
    settings = msgspec.structs.replace(settings, hotels=hotels)
    app = create_app(settings, clock=clock, run_workers=False)
    service_runner, service_url = await start_on_loopback(app)
    session = aiohttp.ClientSession()
    recorder = CallRecorder(clock.now)
    inlet_session = aiohttp.ClientSession(trace_configs=[recorder.trace()])
    runtime = build_runtime(
        settings=settings,
        hotels=app[HOTELS],
        db=app[DATABASE],
        metrics=app[METRICS],
        clock=clock,
        client=InletClient(inlet_session, base_url=target_url, timeout_seconds=timeout),
        session=session,
        committer=app[COMMITTER],
        owner="stage-worker",
    )
    service = HttpClient(session, service_url)
    sandbox = HttpClient(session, sandbox_url) if sandbox_url else None
    spectra = HttpClient(session, spectra_url) if spectra_url else None
    apaleo = HttpClient(session, apaleo_url) if apaleo_url else None
    if apaleo is not None:  # the emulator's notifications go to the service's receiver
        subscribed = await apaleo.post(
            "/_emulator/subscription",
            json={
                "endpoint_url": f"{service_url}/v1/adapters/apaleo/{APALEO_CONNECTION}/webhook",
                "username": APALEO_HOOK_USER,
                "password": APALEO_HOOK_PASSWORD,
            },
        )
        if subscribed.status != 204:
            raise RuntimeError(f"apaleo emulator subscription: HTTP {subscribed.status}")
    try:
        yield kind(
            service=service,
            sandbox=sandbox,
            app=app,
            runtime=runtime,
            clock=clock,
            source_token=source_token,
            admin_token=admin_token,
            recorder=recorder,
            spectra=spectra,
            inlet_url=target_url,
            apaleo=apaleo,
        )
    finally:
        for client in (service, sandbox, spectra, apaleo):
            if client is not None:
                client.release()
        await session.close()
        await inlet_session.close()
        await service_runner.cleanup()
        if sandbox_runner is not None:
            await sandbox_runner.cleanup()
        if spectra_runner is not None:
            await spectra_runner.cleanup()
        if apaleo_runner is not None:
            await apaleo_runner.cleanup()


async def _spectra_emulator(hotels: HotelsConfig, clock: Clock) -> tuple[web.AppRunner | None, str]:
    """The emulator on loopback, in the demo hotel's zone; none if that hotel is not there."""
    prop = hotels.properties.get(SPECTRA_PROPERTY)
    if prop is None or SPECTRA_CONNECTION in hotels.spectra:
        return None, ""
    app = create_spectra_emulator(
        username=SPECTRA_USERNAME,
        password=SPECTRA_PASSWORD,
        hotel_code=SPECTRA_HOTEL_CODE,
        timezone=prop.timezone.key,
        clock=clock.now,
        seed=1,
    )
    return await start_on_loopback(app)


def _with_emulator(hotels: HotelsConfig, url: str) -> dict[str, SpectraConnection]:
    if not url:
        return dict(hotels.spectra)
    connection = SpectraConnection(
        property_id=SPECTRA_PROPERTY,
        base_url=url,
        username=Secret(SPECTRA_USERNAME),
        password=Secret(SPECTRA_PASSWORD),
        hotel_code=SPECTRA_HOTEL_CODE,
        timeout_seconds=2.0,
    )
    return {**hotels.spectra, SPECTRA_CONNECTION: connection}


async def _apaleo_emulator(hotels: HotelsConfig, clock: Clock) -> tuple[web.AppRunner | None, str]:
    """The apaleo emulator on loopback for the demo hotel; none if that hotel is not there."""
    if SPECTRA_PROPERTY not in hotels.properties or APALEO_CONNECTION in hotels.apaleo:
        return None, ""
    app = create_apaleo_emulator(
        client_id=APALEO_CLIENT_ID,
        client_secret=APALEO_CLIENT_SECRET,
        property_id=APALEO_PROPERTY_ID,
        clock=clock.now,
        seed=1,
    )
    return await start_on_loopback(app)


def _with_apaleo(hotels: HotelsConfig, url: str) -> dict[str, ApaleoConnection]:
    if not url:
        return dict(hotels.apaleo)
    connection = ApaleoConnection(
        property_id=SPECTRA_PROPERTY,
        apaleo_property_id=APALEO_PROPERTY_ID,
        api_url=url,
        identity_url=url,
        client_id=Secret(APALEO_CLIENT_ID),
        client_secret=Secret(APALEO_CLIENT_SECRET),
        webhook_username=Secret(APALEO_HOOK_USER),
        webhook_password=Secret(APALEO_HOOK_PASSWORD),
        timeout_seconds=2.0,
    )
    return {**hotels.apaleo, APALEO_CONNECTION: connection}
