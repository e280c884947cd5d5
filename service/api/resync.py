"""How does an operator (or Inlet, through one) re-sync access? `POST /v1/resync`, progress by id.

A dry run (the default) only counts the active grants the selector matches; `dry_run: false`
queues a regenerating UpdateAccess for each, and `GET /v1/resync/{id}` follows them.
"""

from __future__ import annotations

import logging

import msgspec
from aiohttp import web

from service.api.auth import is_admin
from service.api.responses import error, json_response, problem_from
from service.domain.booking import Problem
from service.keys import CLOCK, DATABASE, RUNTIME
from service.store.resync import ResyncSelector, ResyncStore

log = logging.getLogger(__name__)


class ResyncRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    selector: ResyncSelector
    dry_run: bool = True
    note: str | None = None


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/resync", start_resync)
    app.router.add_get("/v1/resync/{resync_id}", resync_progress)


async def start_resync(request: web.Request) -> web.Response:
    if not is_admin(request):
        return error(401, "unauthorized", "an admin token is required")
    try:
        body = msgspec.json.decode(await request.read(), type=ResyncRequest)
    except msgspec.ValidationError as exc:
        return error(422, "invalid", "the re-sync request is not valid", [problem_from(exc)])
    except msgspec.DecodeError:
        return error(
            422,
            "invalid",
            "the body is not valid JSON",
            [Problem(path="", message="is not valid JSON")],
        )
    if body.selector.is_empty():
        return error(
            422,
            "invalid",
            "a re-sync needs at least one filter",
            [
                Problem(
                    path="selector",
                    message="give property_id, access_points, resource_ids or bookings",
                )
            ],
        )
    store = ResyncStore(request.app[DATABASE])
    if body.dry_run:
        return json_response({"dry_run": True, "matched": await store.count(body.selector)})
    started = await store.start(
        body.selector, requested_by="api", now=request.app[CLOCK].now(), note=body.note
    )
    log.warning(
        "re-sync started",
        extra={
            "action": "resync.started",
            "resync_id": started.resync_id,
            "matched": started.matched,
            "queued": started.queued,
        },
    )
    if RUNTIME in request.app:
        request.app[RUNTIME].wake_calls()
    return json_response(started, status=202)


async def resync_progress(request: web.Request) -> web.Response:
    if not is_admin(request):
        return error(401, "unauthorized", "an admin token is required")
    try:
        resync_id = int(request.match_info["resync_id"])
    except ValueError:
        return error(404, "not_found", "no such re-sync")
    progress = await ResyncStore(request.app[DATABASE]).progress(resync_id)
    if progress is None:
        return error(404, "not_found", "no such re-sync")
    body = msgspec.to_builtins(progress)
    body["done"] = progress.done
    return json_response(body)
