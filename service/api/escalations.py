"""What needs a person, and how do they act? `/v1/escalations` (admin token required)."""

from __future__ import annotations

import msgspec
from aiohttp import web

from service.api.auth import is_admin
from service.api.responses import error, json_response, problem_from
from service.domain.booking import Problem
from service.keys import CLOCK, DATABASE, RUNTIME
from service.store.escalations import EscalationStore


class ActionBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    note: str


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/escalations", list_escalations)
    app.router.add_post("/v1/escalations/{id}/retry", retry_escalation)
    app.router.add_post("/v1/escalations/{id}/resolve", resolve_escalation)


async def list_escalations(request: web.Request) -> web.Response:
    if not is_admin(request):
        return error(401, "unauthorized", "an admin token is required")
    severity = request.query.get("severity")
    if severity is not None and severity not in ("critical", "high", "warning"):
        return error(
            422,
            "invalid",
            "bad query",
            [Problem(path="severity", message="must be critical, high or warning")],
        )
    state = request.query.get("state", "open")
    if state not in ("open", "resolved", "all"):
        return error(
            422,
            "invalid",
            "bad query",
            [Problem(path="state", message="must be open, resolved or all")],
        )
    open_only = {"open": True, "resolved": False, "all": None}[state]
    found = await EscalationStore(request.app[DATABASE]).list(
        open_only=open_only,
        severity=severity,
        operation=request.query.get("operation"),
    )
    return json_response({"escalations": found})


async def _act(request: web.Request, action: str) -> web.Response:
    if not is_admin(request):
        return error(401, "unauthorized", "an admin token is required")
    try:
        escalation_id = int(request.match_info["id"])
    except ValueError:
        return error(404, "not_found", "no such open escalation")
    try:
        body = msgspec.json.decode(await request.read() or b"{}", type=ActionBody)
    except msgspec.ValidationError as exc:
        return error(422, "invalid", "the body is not valid", [problem_from(exc)])
    except msgspec.DecodeError:
        return error(
            422,
            "invalid",
            "the body is not valid JSON",
            [Problem(path="", message="is not valid JSON")],
        )
    if not body.note.strip():
        return error(
            422,
            "invalid",
            "a note is required",
            [Problem(path="note", message="must not be empty")],
        )
    store = EscalationStore(request.app[DATABASE])
    now = request.app[CLOCK].now()
    if action == "retry":
        outcome = await store.retry(escalation_id, note=body.note, now=now)
        if RUNTIME in request.app:
            request.app[RUNTIME].wake_reconciler()
            request.app[RUNTIME].wake_calls()
    else:
        outcome = await store.resolve(escalation_id, note=body.note, now=now)
    if outcome == "not_found":
        return error(404, "not_found", "no such open escalation")
    return json_response({"id": escalation_id, "outcome": outcome})


async def retry_escalation(request: web.Request) -> web.Response:
    return await _act(request, "retry")


async def resolve_escalation(request: web.Request) -> web.Response:
    return await _act(request, "resolve")
