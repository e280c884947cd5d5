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

from inlet_bridge.api.auth import OperatorIdentity, require_operator
from inlet_bridge.api.responses import error, json_response
from inlet_bridge.api.scrub import is_id, mask_personal
from inlet_bridge.keys import CLOCK, DATABASE, HOTELS, SETTINGS
from inlet_bridge.logs import Masker
from inlet_bridge.store.audit import Actor, AuditEntry, AuditStore
from inlet_bridge.store.timeline import Timeline, current_decision, load_timeline


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
    body = await booking_view(
        request.app,
        operator,
        operator.actor(request),
        request.match_info["source"],
        request.match_info["booking_id"],
        reveal=reveal,
    )
    if body is None:
        return error(404, "not_found", "no such booking")
    return json_response(body)


async def booking_view(
    app: web.Application,
    operator: OperatorIdentity,
    actor: Actor,
    source: str,
    booking_id: str,
    *,
    reveal: bool,
) -> dict[str, Any] | None:
    """The timeline as operators see it (API and console alike), or None when there is no such
    booking for this operator. A reveal (the caller has checked the role) is written to the
    audit trail before anything is returned; otherwise personal data is masked."""
    timeline = None
    if is_id(source) and is_id(booking_id):
        timeline = await load_timeline(app[DATABASE], source, booking_id)
    if timeline is None or not operator.sees(timeline.property_id):
        return None
    now = app[CLOCK].now()
    if reveal:
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
        await AuditStore(app[DATABASE]).record(entry)
    decision = await current_decision(app[DATABASE], timeline, app[HOTELS], now)
    body: dict[str, Any] = msgspec.to_builtins(timeline)
    body["state"] = msgspec.to_builtins(decision.state.booking) if decision.state else None
    body["desired"] = msgspec.to_builtins(decision.desired)
    if not reveal:
        # the logs' key: a tag in a ticket matches the same value's tag in the logs
        mask_personal(body, Masker(app[SETTINGS].log_mask_key))
    return body


__all__ = ["Timeline", "add_routes"]
