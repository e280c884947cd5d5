"""What can an operator see? The booking timeline (any operator role; reveal needs more).

Codes, links and guests' contact details are masked unless the operator asks for them with
`?reveal=true`, which the roles operator and admin may do: the timeline is often pasted into
support tickets. Every reveal is written to the audit trail before the data is sent. An
operator limited to some properties sees only their bookings (others are 404).
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from service.api.auth import require_operator
from service.api.responses import error, json_response
from service.api.scrub import is_id, mask_personal, masker
from service.keys import CLOCK, DATABASE, HOTELS
from service.store.audit import AuditEntry, AuditStore
from service.store.timeline import Timeline, current_decision, load_timeline


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/bookings/{source}/{booking_id}", booking_timeline)


async def booking_timeline(request: web.Request) -> web.Response:
    reveal = request.query.get("reveal") == "true"
    operator = require_operator(
        request,
        "reveal" if reveal else "read",
        "reveal codes and personal data" if reveal else "read timelines",
    )
    if isinstance(operator, web.Response):
        return operator
    source = request.match_info["source"]
    booking_id = request.match_info["booking_id"]
    timeline = None
    if is_id(source) and is_id(booking_id):
        timeline = await load_timeline(request.app[DATABASE], source, booking_id)
    if timeline is None or not operator.sees(timeline.property_id):
        return error(404, "not_found", "no such booking")
    now = request.app[CLOCK].now()
    if reveal:
        actor = operator.actor(request)
        entry = AuditEntry(
            at=now,
            operator=actor.operator,
            role=actor.role,
            action="reveal",
            source=source,
            booking_id=booking_id,
            property_id=timeline.property_id,
            request_id=actor.request_id,
        )
        await AuditStore(request.app[DATABASE]).record(entry)
    decision = await current_decision(request.app[DATABASE], timeline, request.app[HOTELS], now)
    body: dict[str, Any] = msgspec.to_builtins(timeline)
    body["state"] = msgspec.to_builtins(decision.state.booking) if decision.state else None
    body["desired"] = msgspec.to_builtins(decision.desired)
    if not reveal:
        # the logs' key: a tag in a ticket matches the same value's tag in the logs
        mask_personal(body, masker(request))
    return json_response(body)


__all__ = ["Timeline", "add_routes"]
