"""What does an apaleo account look like from the outside, faults included?

A real aiohttp server that speaks what our client uses (docs/contract.md section 4, with the
names from `mapping.py`): the token endpoint of the client credentials grant, a reservation by
id, the list by stay, the JSON Patch of the comment. It also sends webhook notifications, with
basic auth, to the receiver it is told about (`POST /_emulator/subscription`), as apaleo's
webhook service would. `/_emulator/...` lets a test or the demo change reservations, send
notifications (a given `id` repeats one), queue faults and read back the patches. State lives
under an AppKey, never global.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import aiohttp
import msgspec
from aiohttp import web

from inlet_bridge.adapters.apaleo import mapping
from inlet_bridge.adapters.spectra.client import basic_authorization
from inlet_bridge.clock import Now
from inlet_bridge.doubles.apaleo.emulator_state import AccountState, Fault, Sent, Subscription
from inlet_bridge.doubles.faults import add_fault_routes, injected
from inlet_bridge.doubles.http import basic_credentials, json_body, json_response, same
from inlet_bridge.serving import serve_until_cancelled

log = logging.getLogger(__name__)

STATE: web.AppKey[AccountState] = web.AppKey("apaleo_emulator_state", AccountState)
SESSION: web.AppKey[aiohttp.ClientSession] = web.AppKey("apaleo_emulator_session")
_CONTROL_PREFIX = "/_emulator/"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _NotifyBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    type: str
    entity_id: str
    id: str | None = None  # repeat a notification already sent
    password: str | None = None  # send with another password (a wrong one, for a test)


def _error(status: int, message: str) -> web.Response:
    return json_response({"messages": [message]}, status)


def _client_login(request: web.Request, state: AccountState) -> bool:
    given = basic_credentials(request)
    if given is None:
        return False
    login, secret = given
    id_ok = same(unquote(login), state.client_id)
    secret_ok = same(unquote(secret), state.client_secret)
    return id_ok and secret_ok


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Any queued fault, then the bearer token, for every API path (control paths are open)."""
    if request.path.startswith(_CONTROL_PREFIX):
        return await handler(request)
    state = request.app[STATE]
    answer = await injected(state.faults, request.path, _error)
    if answer is not None:
        return answer
    if request.path == mapping.TOKEN.path:
        return await handler(request)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not state.token_valid(token.strip()):
        return web.Response(status=401, headers={"WWW-Authenticate": "Bearer"})
    return await handler(request)


# --- identity and the booking API ---


async def _token(request: web.Request) -> web.Response:
    state = request.app[STATE]
    form = await request.post()
    if form.get("grant_type") != "client_credentials":
        return json_response({"error": "unsupported_grant_type"}, 400)
    if not _client_login(request, state):
        return json_response({"error": "invalid_client"}, 400)
    token, expires_in = state.issue_token()
    return json_response({"access_token": token, "expires_in": expires_in, "token_type": "Bearer"})


async def _reservation(request: web.Request) -> web.Response:
    raw = request.app[STATE].reservations.get(request.match_info["id"])
    if raw is None:
        return _error(404, "reservation not found")
    return json_response(raw)


def _time_param(request: web.Request, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(request.query[name])
    except (KeyError, ValueError):
        raise web.HTTPBadRequest(text=f"{name} must be an ISO 8601 time") from None
    if value.tzinfo is None:
        raise web.HTTPBadRequest(text=f"{name} needs a UTC offset")
    return value


async def _reservations(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if request.query.get(mapping.PARAM_DATE_FILTER) != mapping.DATE_FILTER_STAY:
        return _error(422, "the emulator lists by dateFilter=Stay only")
    if request.query.get(mapping.PARAM_PROPERTY_IDS) != state.property_id:
        return web.Response(status=204)
    found = state.listed(
        _time_param(request, mapping.PARAM_FROM), _time_param(request, mapping.PARAM_TO)
    )
    try:
        page = int(request.query.get(mapping.PARAM_PAGE_NUMBER, "1"))
        size = int(request.query.get(mapping.PARAM_PAGE_SIZE, "100"))
    except ValueError:
        return _error(400, "pageNumber and pageSize are integers")
    chosen = found[(page - 1) * size : page * size]
    if not chosen:
        return web.Response(status=204)
    return json_response({"reservations": chosen, "count": len(found)})


async def _patch(request: web.Request) -> web.Response:
    body = await json_body(request)
    if not isinstance(body, list):
        return _error(400, "a JSON Patch is a list of operations")
    try:
        found = request.app[STATE].patch_reservation(request.match_info["id"], body)
    except ValueError as exc:
        return _error(422, str(exc))
    return web.Response(status=204) if found else _error(404, "reservation not found")


# --- test control ---


async def _put_reservation(request: web.Request) -> web.Response:
    raw = await json_body(request)
    if not isinstance(raw, dict):
        return _error(400, "expected a JSON object")
    try:
        request.app[STATE].put_reservation(request.match_info["id"], raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        return _error(400, str(exc))
    return json_response(request.app[STATE].reservations[request.match_info["id"]])


async def _get_reservation(request: web.Request) -> web.Response:
    return await _reservation(request)


async def _delete_reservation(request: web.Request) -> web.Response:
    if request.app[STATE].reservations.pop(request.match_info["id"], None) is None:
        return _error(404, "reservation not found")
    return web.Response(status=204)


async def _subscribe(request: web.Request) -> web.Response:
    try:
        request.app[STATE].subscription = msgspec.convert(
            await json_body(request), Subscription, from_attributes=False
        )
    except msgspec.ValidationError as exc:
        return _error(400, str(exc))
    return web.Response(status=204)


async def send_notification(
    app: web.Application,
    event_type: str,
    entity_id: str,
    *,
    notification_id: str | None = None,
    password: str | None = None,
) -> Sent:
    """Post one notification to the subscription, with basic auth; what the receiver said."""
    state = app[STATE]
    if state.subscription is None:
        raise RuntimeError("no subscription: POST /_emulator/subscription first")
    body = state.notification(event_type, entity_id, notification_id=notification_id)
    auth = basic_authorization(
        state.subscription.username,
        password if password is not None else state.subscription.password,
    )
    status: int | None
    try:
        async with app[SESSION].post(
            state.subscription.endpoint_url,
            data=msgspec.json.encode(body),
            headers={"Authorization": auth, "Content-Type": "application/json"},
            timeout=aiohttp.ClientTimeout(total=10),
        ) as response:
            status = response.status
            await response.read()
    except (TimeoutError, aiohttp.ClientError):
        status = None
    sent = Sent(notification=body, status=status)
    state.sent.append(sent)
    return sent


async def _notify(request: web.Request) -> web.Response:
    try:
        body = msgspec.convert(await json_body(request), _NotifyBody)
        sent = await send_notification(
            request.app,
            body.type,
            body.entity_id,
            notification_id=body.id,
            password=body.password,
        )
    except (msgspec.ValidationError, RuntimeError) as exc:
        return _error(400, str(exc))
    return json_response({"notification": sent.notification, "status": sent.status})


async def _patches(request: web.Request) -> web.Response:
    return json_response(
        [{"id": rid, "operations": ops} for rid, ops in request.app[STATE].patches]
    )


async def _revoke_tokens(request: web.Request) -> web.Response:
    request.app[STATE].revoke_tokens()
    return web.Response(status=204)


async def _session(app: web.Application) -> Any:
    app[SESSION] = aiohttp.ClientSession()
    yield
    app[STATE].faults.wake_stalled()
    await app[SESSION].close()


def create_apaleo_emulator(
    *,
    client_id: str,
    client_secret: str,
    property_id: str,
    clock: Now,
    seed: int | None = None,
) -> web.Application:
    """An aiohttp app imitating one apaleo account with one property; `seed` fixes the ids."""
    app = web.Application(middlewares=[_guard])
    app[STATE] = AccountState(
        client_id=client_id,
        client_secret=client_secret,
        property_id=property_id,
        clock=clock,
        seed=seed,
    )
    app.cleanup_ctx.append(_session)
    # The paths come from mapping's templates so client and emulator cannot disagree.
    app.router.add_post(mapping.TOKEN.path, _token)
    app.router.add_get(mapping.RESERVATIONS.path, _reservations)
    app.router.add_get(mapping.RESERVATION.path, _reservation)
    app.router.add_patch(mapping.PATCH_RESERVATION.path, _patch)
    app.router.add_put("/_emulator/reservations/{id}", _put_reservation)
    app.router.add_get("/_emulator/reservations/{id}", _get_reservation)
    app.router.add_delete("/_emulator/reservations/{id}", _delete_reservation)
    app.router.add_post("/_emulator/subscription", _subscribe)
    app.router.add_post("/_emulator/notify", _notify)
    app.router.add_get("/_emulator/patches", _patches)
    app.router.add_post("/_emulator/revoke-tokens", _revoke_tokens)
    add_fault_routes(app, "/_emulator/faults", app[STATE].faults, Fault, _error)
    return app


async def run_apaleo_emulator(
    host: str, port: int, *, client_id: str, client_secret: str, property_id: str
) -> None:
    """Serve the emulator until cancelled (`inlet-bridge apaleo-emulator --port N`)."""
    from inlet_bridge.clock import SystemClock

    app = create_apaleo_emulator(
        client_id=client_id,
        client_secret=client_secret,
        property_id=property_id,
        clock=SystemClock().now,
    )
    await serve_until_cancelled(app, host, port, what="apaleo emulator")
