"""How does an operator act from the console? Escalations (retry, then follow the call; resolve
with a note) and re-syncs (choose, preview, confirm, follow).

The actions are the API's own (`act_on_escalation`, `resync.start`), with the same role and
scope checks and the same audit rows; the pages that follow a retry or a re-sync reload
themselves every `FOLLOW_SECONDS` until there is nothing more to wait for.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from aiohttp import web

from inlet_bridge.api import resync as resync_api
from inlet_bridge.api.escalations import act_on_escalation, note_problem, row_id
from inlet_bridge.console.pages import render, zone_of
from inlet_bridge.console.session import ConsoleUser, guard, page_error, see_other
from inlet_bridge.keys import CLOCK, DATABASE, HOTELS, SETTINGS
from inlet_bridge.logs import Masker
from inlet_bridge.store.oncall import OnCallStore
from inlet_bridge.store.resync import ResyncSelector, ResyncStore

FOLLOW_SECONDS = 1
PREVIEW_ROWS = 50
SEVERITIES = ("critical", "high", "warning")
_SPLIT = re.compile(r"[\s,]+")


async def escalations(request: web.Request) -> web.Response:
    user = await guard(request, "read", "list escalations")
    if isinstance(user, web.Response):
        return user
    query = request.query
    state = query.get("state", "open")
    open_only = {"open": True, "resolved": False, "all": None}.get(state, True)
    severity = query.get("severity") if query.get("severity") in SEVERITIES else None
    prop = (
        query.get("property") if query.get("property") in request.app[HOTELS].properties else None
    )
    found = await OnCallStore(request.app[DATABASE]).escalations(
        open_only=open_only,
        severity=severity,
        property_id=prop,
        properties=user.operator.properties,
    )
    masker = Masker(request.app[SETTINGS].log_mask_key)
    rows = [
        {
            "e": e,
            "last_message": masker.scrub(e.last_message or ""),
            "age": request.app[CLOCK].now() - e.created_at,
            "zone": zone_of(request, e.property_id),
        }
        for e in found
    ]
    return render(
        request,
        "escalations.html",
        user,
        rows=rows,
        state=state,
        severity=severity,
        prop=prop,
        severities=SEVERITIES,
        properties=sorted(request.app[HOTELS].properties),
        names={pid: p.name for pid, p in request.app[HOTELS].properties.items()},
    )


async def escalation(request: web.Request) -> web.Response:
    user = await guard(request, "read", "list escalations")
    if isinstance(user, web.Response):
        return user
    return await _escalation_page(request, user)


async def _escalation_page(
    request: web.Request, user: ConsoleUser, *, problem: str | None = None, note: str = ""
) -> web.Response:
    escalation_id = row_id(request.match_info["id"])
    store = OnCallStore(request.app[DATABASE])
    found = None if escalation_id is None else await store.followed(escalation_id)
    if escalation_id is None or found is None or not user.operator.sees(found[0]):
        return page_error(request, 404, "No such escalation that you may see.")
    [detail] = await store.escalations(open_only=None, escalation_id=escalation_id)
    progress = found[1]
    masker = Masker(request.app[SETTINGS].log_mask_key)
    following = progress.state != "not_retried" and not progress.finished
    return render(
        request,
        "escalation.html",
        user,
        status=422 if problem else 200,
        e=detail,
        last_message=masker.scrub(detail.last_message or ""),
        progress=progress,
        call_message=masker.scrub(progress.call.last_message or "") if progress.call else "",
        age=request.app[CLOCK].now() - detail.created_at,
        zone=zone_of(request, detail.property_id),
        refresh=FOLLOW_SECONDS if following else None,
        may_act=user.operator.may("act") and detail.resolved_at is None,
        problem=problem,
        note=note,
        hotel=request.app[HOTELS].properties.get(detail.property_id),
    )


async def retry(request: web.Request) -> web.Response:
    return await _act(request, "retry")


async def resolve(request: web.Request) -> web.Response:
    return await _act(request, "resolve")


async def _act(request: web.Request, action: Any) -> web.Response:
    user = await guard(request, "act", f"{action} escalations")
    if isinstance(user, web.Response):
        return user
    escalation_id = row_id(request.match_info["id"])
    if escalation_id is None:
        return page_error(request, 404, "No such escalation.")
    note = (await request.post()).get("note")
    note = note if isinstance(note, str) else ""
    if problem := note_problem(note):
        return await _escalation_page(request, user, problem=f"The note {problem}.", note=note)
    outcome = await act_on_escalation(
        request.app,
        escalation_id,
        action,
        note=note,
        actor=user.operator.actor(request),
        properties=user.operator.properties,
    )
    if outcome == "not_found":
        return page_error(request, 404, "No such open escalation: someone may have acted on it.")
    return see_other(f"/console/escalations/{escalation_id}")


def _selector(values: Any) -> tuple[ResyncSelector | None, list[str]]:
    """The selector a re-sync form describes, checked as the API checks it."""

    def listed(name: str) -> list[str] | None:
        text = values.get(name, "")
        items = [item for item in _SPLIT.split(text.strip()) if item] if text else []
        return items or None

    raw = {
        "property_id": values.get("property") or None,
        "access_points": listed("access_points"),
        "resource_ids": listed("resource_ids"),
        "bookings": listed("bookings"),
    }
    try:
        selector = msgspec.convert({k: v for k, v in raw.items() if v}, type=ResyncSelector)
    except msgspec.ValidationError as exc:
        return None, [str(exc)]
    if selector.is_empty():
        return None, ["Choose a property, access points, resources or bookings."]
    return selector, []


async def resync_page(request: web.Request) -> web.Response:
    """The form; with `preview=1`, how many grants and which bookings (the first 50)."""
    user = await guard(request, "read", "count grants to re-sync")
    if isinstance(user, web.Response):
        return user
    context: dict[str, Any] = {
        "form": dict(request.query),
        "properties": sorted(request.app[HOTELS].properties),
        "may_act": user.operator.may("act"),
        "preview": None,
        "problems": [],
    }
    if request.query.get("preview") == "1":
        selector, problems = _selector(request.query)
        if selector is not None and not resync_api.in_scope(user.operator, selector):
            selector, problems = None, ["Re-sync a property you look after: choose it."]
        context["problems"] = problems
        if selector is not None:
            context["preview"] = {
                "matched": await ResyncStore(request.app[DATABASE]).count(selector),
                "bookings": await OnCallStore(request.app[DATABASE]).resync_preview(
                    selector, PREVIEW_ROWS
                ),
                "rows": PREVIEW_ROWS,
            }
    return render(
        request, "resync.html", user, status=422 if context["problems"] else 200, **context
    )


async def resync_start(request: web.Request) -> web.Response:
    user = await guard(request, "act", "start a re-sync")
    if isinstance(user, web.Response):
        return user
    form = await request.post()
    selector, problems = _selector(form)
    note = form.get("note")
    note = note.strip() if isinstance(note, str) and note.strip() else None
    if note is not None and (problem := note_problem(note)):
        problems.append(f"The note {problem}.")
    if selector is not None and not resync_api.in_scope(user.operator, selector):
        return page_error(request, 403, "Re-sync a property you look after.")
    if selector is None or problems:
        return page_error(request, 422, " ".join(problems))
    started = await resync_api.start(
        request.app, selector, actor=user.operator.actor(request), note=note
    )
    return see_other(f"/console/resync/{started.resync_id}")


async def resync_progress(request: web.Request) -> web.Response:
    user = await guard(request, "read", "follow re-syncs")
    if isinstance(user, web.Response):
        return user
    resync_id = row_id(request.match_info["resync_id"])
    progress = None
    if resync_id is not None:
        progress = await ResyncStore(request.app[DATABASE]).progress(resync_id)
    if progress is None or not resync_api.in_scope(user.operator, progress.selector):
        return page_error(request, 404, "No such re-sync that you may see.")
    return render(
        request,
        "resync_progress.html",
        user,
        progress=progress,
        refresh=None if progress.done else FOLLOW_SECONDS,
    )
