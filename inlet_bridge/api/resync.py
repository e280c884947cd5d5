"""How does an operator (or Inlet, through one) re-sync access? `POST /v1/resync`, progress by id.

A dry run (the default) only counts the active grants the selector matches, and any operator
role may ask for it; `dry_run: false` queues a regenerating UpdateAccess for each (roles
operator and admin), written to the audit trail in the same transaction, and
`GET /v1/resync/{id}` follows them. An operator limited to some properties must name one of
them as `selector.property_id`, and follows only such re-syncs.
"""

from __future__ import annotations

import logging

import msgspec
from aiohttp import web

from inlet_bridge.api.auth import OperatorIdentity, require_operator
from inlet_bridge.api.escalations import note_problem, row_id
from inlet_bridge.api.responses import error, json_response, problem_from
from inlet_bridge.domain.booking import Problem
from inlet_bridge.keys import CLOCK, DATABASE, RUNTIME
from inlet_bridge.store.audit import Actor
from inlet_bridge.store.resync import ResyncSelector, ResyncStarted, ResyncStore

log = logging.getLogger(__name__)


class ResyncRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    selector: ResyncSelector
    dry_run: bool = True
    note: str | None = None


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/resync", start_resync)
    app.router.add_get("/v1/resync/{resync_id}", resync_progress)


def _invalid(message: str, path: str, problem: str) -> web.Response:
    return error(422, "invalid", message, [Problem(path=path, message=problem)])


async def start_resync(request: web.Request) -> web.Response:
    operator = require_operator(request, "read", "count grants to re-sync")
    if isinstance(operator, web.Response):
        return operator
    try:
        body = msgspec.json.decode(await request.read(), type=ResyncRequest)
    except msgspec.ValidationError as exc:
        return error(422, "invalid", "the re-sync request is not valid", [problem_from(exc)])
    except (msgspec.DecodeError, RecursionError):
        return _invalid("the body is not valid JSON", "", "is not valid JSON")
    if body.selector.is_empty():
        return _invalid(
            "a re-sync needs at least one filter",
            "selector",
            "give property_id, access_points, resource_ids or bookings",
        )
    if body.note is not None and (problem := note_problem(body.note)):
        return _invalid("the note is not valid", "note", problem)
    if not in_scope(operator, body.selector):
        return error(
            403,
            "forbidden",
            "re-sync a property you look after",
            [Problem(path="selector.property_id", message="must be one of your properties")],
        )
    store = ResyncStore(request.app[DATABASE])
    if body.dry_run:
        return json_response({"dry_run": True, "matched": await store.count(body.selector)})
    if not operator.may("act"):
        return error(403, "forbidden", f"the role {operator.role} may not start a re-sync")
    started = await start(request.app, body.selector, actor=operator.actor(request), note=body.note)
    return json_response(started, status=202)


def in_scope(operator: OperatorIdentity, selector: ResyncSelector) -> bool:
    """An operator limited to some properties re-syncs only by naming one of them."""
    return operator.properties is None or selector.property_id in operator.properties


async def start(
    app: web.Application, selector: ResyncSelector, *, actor: Actor, note: str | None
) -> ResyncStarted:
    """Queue a re-sync (API and console alike; the caller has checked role and scope)."""
    started = await ResyncStore(app[DATABASE]).start(
        selector, actor=actor, now=app[CLOCK].now(), note=note
    )
    log.warning(
        "re-sync started",
        extra={
            "action": "resync.started",
            "resync_id": started.resync_id,
            "matched": started.matched,
            "queued": started.queued,
            "operator": actor.operator,
        },
    )
    if RUNTIME in app:
        app[RUNTIME].wake_calls()
    return started


async def resync_progress(request: web.Request) -> web.Response:
    operator = require_operator(request, "read", "follow re-syncs")
    if isinstance(operator, web.Response):
        return operator
    resync_id = row_id(request.match_info["resync_id"])
    progress = None
    if resync_id is not None:
        progress = await ResyncStore(request.app[DATABASE]).progress(resync_id)
    if progress is None or not in_scope(operator, progress.selector):
        return error(404, "not_found", "no such re-sync")
    body = msgspec.to_builtins(progress)
    body["done"] = progress.done
    return json_response(body)
