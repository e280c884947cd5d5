"""What does a small hotel's Spectra API look like from the outside, faults included?

A real aiohttp server that speaks the endpoints our client uses (docs/contract.md section 3,
with the same assumed names, taken from `mapping.py`), for the demo, the tests and local
runs. Basic auth guards the API; `/_emulator/...` lets a test change the hotel, queue
faults and read back the codes the bridge wrote. State lives under an AppKey, never global.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta

import msgspec
from aiohttp import web

from inlet_bridge.adapters.spectra import mapping
from inlet_bridge.adapters.spectra.mapping import (
    SpectraBalance,
    SpectraCodeBody,
    SpectraPayloadError,
)
from inlet_bridge.clock import Now
from inlet_bridge.doubles.faults import add_fault_routes, injected
from inlet_bridge.doubles.http import basic_credentials, json_body, json_response, same
from inlet_bridge.doubles.spectra.emulator_state import FEED_RETENTION, EmulatorState, Fault
from inlet_bridge.serving import serve_until_cancelled

log = logging.getLogger(__name__)

STATE: web.AppKey[EmulatorState] = web.AppKey("spectra_emulator_state", EmulatorState)

_CONTROL_PREFIX = "/_emulator/"
# Balances are Decimals; Spectra sends them as JSON numbers ({"balance": 123.45}).
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _StatusBody(msgspec.Struct, frozen=True, kw_only=True):
    status: str


def _error(status: int, message: str) -> web.Response:
    return json_response({"message": message}, status)


def _authorized(request: web.Request, state: EmulatorState) -> bool:
    given = basic_credentials(request)
    if given is None:
        return False
    user_ok = same(given[0], state.username)
    password_ok = same(given[1], state.password)
    return user_ok and password_ok


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Basic auth, then any queued fault, for every API path (control paths are open)."""
    if request.path.startswith(_CONTROL_PREFIX):
        return await handler(request)
    state = request.app[STATE]
    if not _authorized(request, state):
        return web.Response(
            status=401, text="unauthorized", headers={"WWW-Authenticate": 'Basic realm="Spectra"'}
        )
    answer = await injected(state.faults, request.path, _error)
    if answer is not None:
        return answer
    return await handler(request)


# --- the Spectra API ---


async def _rooms(request: web.Request) -> web.Response:
    return json_response(request.app[STATE].rooms)


async def _hotel_settings(request: web.Request) -> web.Response:
    return json_response([request.app[STATE].hotel])


def _date_param(request: web.Request, name: str) -> date | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be YYYY-MM-DD") from None


def _int_param(request: web.Request, name: str, default: int) -> int:
    try:
        value = int(request.query.get(name, default))
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be an integer") from None
    if value < 1:
        raise web.HTTPBadRequest(text=f"{name} must be at least 1")
    return value


async def _reservations(request: web.Request) -> web.Response:
    state = request.app[STATE]
    first = _date_param(request, mapping.PARAM_ARRIVAL_FROM)
    last = _date_param(request, mapping.PARAM_ARRIVAL_TO)
    page = _int_param(request, mapping.PARAM_PAGE, 1)
    size = _int_param(request, mapping.PARAM_PAGE_SIZE, 100)
    selected: list[tuple[str, str]] = []
    for parsed in state.parsed_reservations():
        arrival = (parsed.arrival or "")[:10]
        if first is not None and arrival < first.isoformat():
            continue
        if last is not None and arrival > last.isoformat():
            continue
        selected.append((arrival, parsed.reservation_guid))
    selected.sort()
    chosen = selected[(page - 1) * size : page * size]
    return json_response([state.reservations[guid] for _, guid in chosen])


async def _reservation(request: web.Request) -> web.Response:
    raw = request.app[STATE].reservations.get(request.match_info["guid"])
    if raw is None:
        return _error(404, "reservation not found")
    return json_response(raw)


async def _post_code(request: web.Request) -> web.Response:
    state = request.app[STATE]
    guid = request.match_info["guid"]
    if guid not in state.reservations:
        return _error(404, "reservation not found")
    try:
        body = mapping.decode(await json_body(request), SpectraCodeBody)
    except SpectraPayloadError as exc:
        return _error(400, str(exc))
    state.post_code(guid, body.code)
    return web.Response(status=204)


async def _disable_code(request: web.Request) -> web.Response:
    state = request.app[STATE]
    guid = request.match_info["guid"]
    if guid not in state.reservations:
        return _error(404, "reservation not found")
    if not state.disable_code(guid, request.match_info["code"]):
        return _error(404, "code not found")
    return web.Response(status=204)


async def _events(request: web.Request) -> web.Response:
    try:
        since = datetime.fromisoformat(request.match_info["sync_time"])
    except ValueError:
        return _error(400, "SyncTime must be ISO-8601")
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return json_response(request.app[STATE].feed_since(since))


async def _conferences(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if request.match_info["hotel_code"].lower() != state.hotel_code.lower():
        return _error(404, "hotel not found")
    return json_response(list(state.conferences.values()))


async def _balance(request: web.Request) -> web.Response:
    balance = request.app[STATE].balances.get(request.match_info["guid"])
    if balance is None:
        return _error(404, "reservation not found")
    return json_response(balance)


# --- test control ---


async def _put_reservation(request: web.Request) -> web.Response:
    raw = await json_body(request)
    if not isinstance(raw, dict):
        return _error(400, "expected a JSON object")
    try:
        changed = request.app[STATE].put_reservation(request.match_info["guid"], raw)
    except SpectraPayloadError as exc:
        return _error(400, str(exc))
    return json_response({"changed": changed})


async def _set_status(request: web.Request) -> web.Response:
    try:
        body = msgspec.convert(await json_body(request), _StatusBody)
    except msgspec.ValidationError as exc:
        return _error(400, str(exc))
    if not request.app[STATE].set_status(request.match_info["guid"], body.status):
        return _error(404, "reservation not found")
    return json_response({"changed": True})


async def _set_room_status(request: web.Request) -> web.Response:
    try:
        body = msgspec.convert(await json_body(request), _StatusBody)
    except msgspec.ValidationError as exc:
        return _error(400, str(exc))
    if not request.app[STATE].set_room_status(request.match_info["number"], body.status):
        return _error(404, "room not found")
    return json_response({"changed": True})


async def _delete_reservation(request: web.Request) -> web.Response:
    if not request.app[STATE].delete_reservation(request.match_info["guid"]):
        return _error(404, "reservation not found")
    return web.Response(status=204)


async def _put_conference(request: web.Request) -> web.Response:
    raw = await json_body(request)
    if not isinstance(raw, dict):
        return _error(400, "expected a JSON object")
    try:
        request.app[STATE].put_conference(request.match_info["guid"], raw)
    except SpectraPayloadError as exc:
        return _error(400, str(exc))
    return web.Response(status=204)


async def _put_balance(request: web.Request) -> web.Response:
    state = request.app[STATE]
    guid = request.match_info["guid"]
    if guid not in state.reservations:
        return _error(404, "reservation not found")
    try:
        state.balances[guid] = mapping.decode(await json_body(request), SpectraBalance)
    except SpectraPayloadError as exc:
        return _error(400, str(exc))
    return web.Response(status=204)


async def _codes(request: web.Request) -> web.Response:
    codes = request.app[STATE].codes
    return json_response(
        {guid: {"posted": r.posted, "disabled": r.disabled} for guid, r in codes.items()}
    )


async def _seed_demo(request: web.Request) -> web.Response:
    return json_response(request.app[STATE].seed_demo())


async def _wake_on_shutdown(app: web.Application) -> None:
    app[STATE].faults.wake_stalled()


def create_spectra_emulator(
    *,
    username: str,
    password: str,
    hotel_code: str,
    timezone: str = "Europe/Oslo",
    clock: Now | None = None,
    seed: int | None = None,
    feed_retention: timedelta | None = FEED_RETENTION,
) -> web.Application:
    """An aiohttp app imitating one hotel's Spectra API; `seed` fixes every random choice.

    The change feed forgets items older than `feed_retention` (None: it keeps them all).
    """
    app = web.Application(middlewares=[_guard])
    app[STATE] = EmulatorState(
        username=username,
        password=password,
        hotel_code=hotel_code,
        timezone=timezone,
        clock=clock,
        seed=seed,
        feed_retention=feed_retention,
    )
    # The paths come from mapping's templates so client and emulator cannot disagree.
    routes: list[tuple[mapping.Endpoint, Handler]] = [
        (mapping.ROOMS, _rooms),
        (mapping.HOTEL_SETTINGS, _hotel_settings),
        (mapping.RESERVATIONS, _reservations),
        (mapping.RESERVATION, _reservation),
        (mapping.POST_CODE, _post_code),
        (mapping.DISABLE_CODE, _disable_code),
        (mapping.EVENTS, _events),
        (mapping.CONFERENCES, _conferences),
        (mapping.BALANCE, _balance),
    ]
    for endpoint, handler in routes:
        app.router.add_route(endpoint.method, endpoint.path, handler)
    app.router.add_put("/_emulator/reservations/{guid}", _put_reservation)
    app.router.add_post("/_emulator/reservations/{guid}/status", _set_status)
    app.router.add_delete("/_emulator/reservations/{guid}", _delete_reservation)
    app.router.add_post("/_emulator/rooms/{number}/status", _set_room_status)
    app.router.add_put("/_emulator/conferences/{guid}", _put_conference)
    app.router.add_put("/_emulator/balance/{guid}", _put_balance)
    app.router.add_get("/_emulator/codes", _codes)
    add_fault_routes(app, "/_emulator/faults", app[STATE].faults, Fault, _error)
    app.router.add_post("/_emulator/seed-demo", _seed_demo)
    app.on_shutdown.append(_wake_on_shutdown)
    return app


async def run_spectra_emulator(
    host: str,
    port: int,
    *,
    username: str,
    password: str,
    hotel_code: str,
    timezone: str = "Europe/Oslo",
    clock: Now | None = None,
    seed: int | None = None,
) -> None:
    """Serve the emulator until cancelled (`inlet-bridge spectra-emulator --port N`)."""
    app = create_spectra_emulator(
        username=username,
        password=password,
        hotel_code=hotel_code,
        timezone=timezone,
        clock=clock,
        seed=seed,
    )
    await serve_until_cancelled(app, host, port, what="Spectra emulator")
