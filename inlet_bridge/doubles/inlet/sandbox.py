"""What would Inlet answer? A real HTTP server that imitates it, for tests, the demo and the
certification run.

The Inlet endpoints speak the wire format of protocol.py (so a correction there changes the
client and the sandbox together). Under /_sandbox/ (no auth) tests read what happened
(grants, messages, requests), ask whether a code opens a door, replace locks, and arm, list
and clear faults (`GET /_sandbox/faults` answering 200 is how a certification run knows its
target is a sandbox that can inject them).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime
from typing import Any

import msgspec
from aiohttp import web

from inlet_bridge.clock import Now
from inlet_bridge.doubles.http import json_response
from inlet_bridge.doubles.inlet.sandbox_state import Answer, Fault, Readings, SandboxState
from inlet_bridge.inlet.protocol import (
    CallKind,
    GrantRequest,
    InletPaths,
    InletResponse,
    RevokeRequest,
    UpdateRequest,
)
from inlet_bridge.serving import serve_until_cancelled

SANDBOX_STATE = web.AppKey("inlet_sandbox_state", SandboxState)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_REQUEST_TYPES: dict[CallKind, type[GrantRequest | UpdateRequest | RevokeRequest]] = {
    "grant": GrantRequest,
    "update": UpdateRequest,
    "revoke": RevokeRequest,
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _readable(raw: bytes) -> Any:
    """A request body for the request log: JSON if it is JSON, else text."""
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return raw.decode("utf-8", errors="replace")


async def _pause(state: SandboxState, seconds: float) -> None:
    """Wait for an injected delay, but end it at once if the server is shutting down."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(state.stopping.wait(), seconds)


def _act(state: SandboxState, call: CallKind, raw: bytes, account: str) -> Answer:
    try:
        request = msgspec.json.decode(raw, type=_REQUEST_TYPES[call])
    except msgspec.ValidationError as exc:
        # msgspec names the field by its wire name, e.g. "missing required field `bookingId`".
        return 400, InletResponse(success=False, message=f"Invalid request: {exc}", retryable=False)
    except msgspec.DecodeError:
        return 400, InletResponse(success=False, message="Body is not valid JSON", retryable=False)
    if isinstance(request, UpdateRequest):
        return state.update(request, account)
    if isinstance(request, GrantRequest):
        return state.grant(request, account)
    return state.revoke(request.reference_id, account)


async def _answer(
    state: SandboxState, call: CallKind, request: web.Request, raw: bytes, fault: Fault | None
) -> tuple[int, InletResponse, dict[str, str]]:
    headers: dict[str, str] = {}
    if fault is not None:
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        if fault.kind in ("timeout", "latency"):
            await _pause(state, fault.seconds)
        failure = InletResponse(success=False, retryable=fault.retryable)
        if fault.kind == "timeout":
            message = fault.message or "Timed out waiting for the lock system"
            return 504, msgspec.structs.replace(failure, message=message), headers
        if fault.kind == "status":
            message = fault.message or f"Injected HTTP {fault.status}"
            return fault.status, msgspec.structs.replace(failure, message=message), headers
        if fault.kind == "success_false":
            message = fault.message or "Injected failure"
            return 200, msgspec.structs.replace(failure, message=message), headers
    account = state.account_of(request.headers.get("Authorization"))
    if account is None:
        return (
            401,
            InletResponse(success=False, message="Invalid API key", retryable=False),
            headers,
        )
    status, response = _act(state, call, raw, account)
    if fault is not None and fault.kind == "lost_answer":
        await _pause(state, fault.seconds)  # done; the answer comes too late for the client
    return status, response, headers


def _inlet_endpoint(call: CallKind) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        state = request.app[SANDBOX_STATE]
        raw = await request.read()
        index = state.begin_request(request.path, _readable(raw))
        fault = state.take_fault(call)
        kind = None if fault is None else fault.kind
        try:
            status, response, headers = await _answer(state, call, request, raw, fault)
        except asyncio.CancelledError:
            # The client gave up during an injected delay (the test server cancels handlers).
            state.finish_request(index, None, None, kind)
            raise
        state.finish_request(index, status, msgspec.to_builtins(response), kind)
        return json_response(response, status, headers)

    return handler


async def _grants(request: web.Request) -> web.Response:
    return json_response(list(request.app[SANDBOX_STATE].grants.values()))


async def _messages(request: web.Request) -> web.Response:
    return json_response(request.app[SANDBOX_STATE].messages)


async def _requests(request: web.Request) -> web.Response:
    return json_response(request.app[SANDBOX_STATE].requests)


async def _repeats(request: web.Request) -> web.Response:
    return json_response(request.app[SANDBOX_STATE].repeats)


async def _readings(request: web.Request) -> web.Response:
    return json_response(request.app[SANDBOX_STATE].readings)


async def _opens(request: web.Request) -> web.Response:
    state = request.app[SANDBOX_STATE]
    code = request.query.get("code")
    lock = request.query.get("lock")
    if not code or not lock:
        return json_response({"message": "code and lock are required"}, 400)
    at_text = request.query.get("at")
    if at_text is None:
        at = state.clock()
    else:
        try:
            at = datetime.fromisoformat(at_text)
        except ValueError:
            return json_response({"message": "at must be an ISO-8601 timestamp"}, 400)
        if at.tzinfo is None:
            return json_response({"message": "at must carry a UTC offset"}, 400)
    opens, reason = state.opens(code, lock, at)
    return json_response({"opens": opens, "reason": reason})


async def _replace_lock(request: web.Request) -> web.Response:
    lock = request.match_info["lock"]
    request.app[SANDBOX_STATE].replace_lock(lock)
    return json_response({"lock": lock, "replaced": True})


async def _arm_fault(request: web.Request) -> web.Response:
    try:
        fault = msgspec.json.decode(await request.read(), type=Fault)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        return json_response({"message": f"Invalid fault: {exc}"}, 400)
    request.app[SANDBOX_STATE].arm_fault(fault)
    return json_response({"armed": fault}, 201)


async def _armed_faults(request: web.Request) -> web.Response:
    """The faults still armed. Also how a client tells that a target can inject faults."""
    armed = request.app[SANDBOX_STATE].faults
    return json_response([{"fault": a.fault, "remaining": a.remaining} for a in armed])


async def _clear_faults(request: web.Request) -> web.Response:
    state = request.app[SANDBOX_STATE]
    cleared = len(state.faults)
    state.faults.clear()
    return json_response({"cleared": cleared})


async def _reset(request: web.Request) -> web.Response:
    request.app[SANDBOX_STATE].reset()
    return json_response({"reset": True})


async def _wake_sleepers(app: web.Application) -> None:
    app[SANDBOX_STATE].stopping.set()


def create_sandbox_app(
    *,
    api_keys: Collection[str] | None = None,
    clock: Now | None = None,
    sms_locks: Collection[str] | None = None,
    rng: random.Random | None = None,
    paths: InletPaths = InletPaths(),  # noqa: B008 - frozen Struct, safe to share
    readings: Readings | None = None,
) -> web.Application:
    """An Inlet imitation. api_keys None accepts any non-empty bearer token; clock defaults to
    real UTC time; sms_locks None makes every lock SMS-capable; pass a seeded rng for
    deterministic references, codes and fault rates; `readings` chooses how the sandbox plays
    what Inlet does not publish (each API key its own account, a new grant after a revoke)."""
    state = SandboxState(
        clock=clock or _utcnow,
        rng=rng or random.Random(),
        api_keys=api_keys,
        sms_locks=sms_locks,
        readings=readings,
    )
    app = web.Application()
    app[SANDBOX_STATE] = state
    app.router.add_post(paths.grant, _inlet_endpoint("grant"))
    app.router.add_post(paths.update, _inlet_endpoint("update"))
    app.router.add_post(paths.revoke, _inlet_endpoint("revoke"))
    app.router.add_get("/_sandbox/grants", _grants)
    app.router.add_get("/_sandbox/messages", _messages)
    app.router.add_get("/_sandbox/requests", _requests)
    app.router.add_get("/_sandbox/repeats", _repeats)
    app.router.add_get("/_sandbox/readings", _readings)
    app.router.add_get("/_sandbox/opens", _opens)
    app.router.add_post("/_sandbox/locks/{lock}/replace", _replace_lock)
    app.router.add_get("/_sandbox/faults", _armed_faults)
    app.router.add_post("/_sandbox/faults", _arm_fault)
    app.router.add_delete("/_sandbox/faults", _clear_faults)
    app.router.add_post("/_sandbox/reset", _reset)
    app.on_shutdown.append(_wake_sleepers)
    return app


async def run_sandbox(
    host: str,
    port: int,
    *,
    api_keys: Collection[str] | None = None,
    readings: Readings | None = None,
) -> None:
    """Serve the sandbox until cancelled."""
    await serve_until_cancelled(
        create_sandbox_app(api_keys=api_keys, readings=readings), host, port, what="Inlet sandbox"
    )
