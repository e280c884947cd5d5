"""What access does a booking have, for the PMS that sent it? `GET /v1/bookings/{source}/{id}/access`.

The PMS puts the code, formatted code and link in its booking notes, shows them at the front
desk, or sends them itself when Inlet's messages are suppressed (agency and group bookings).
Only the source that owns the booking may read it, and only while the booking's property is one
it serves; any other caller gets 404, as if the booking did not exist. A signed read covers the
method and the path (`webhooks.read_content`) and its webhook-id is used once. Inlet's messages
are scrubbed of emails and phone numbers, as everywhere they are shown.
"""

from __future__ import annotations

from datetime import datetime

import msgspec
from aiohttp import web

from service.api.auth import admit_source, forget_webhook_id
from service.api.responses import error, json_response
from service.api.scrub import is_id, masker, scrub
from service.domain.access import access_over
from service.domain.states import MAY_OPEN, GrantState, grant_state
from service.keys import CLOCK, DATABASE, HOTELS
from service.logs import Masker
from service.store.timeline import Timeline, current_decision, load_timeline


class StayAccess(msgspec.Struct, frozen=True, kw_only=True):
    """One stay's access. `state` is a grant state (see service/domain/states.py); the doors,
    times, code and link are what Inlet holds (or, before it holds anything, what is wanted);
    in `revoke_failed` and `update_failed` they are what may still work."""

    stay_id: str
    grant_key: str
    state: GrantState
    resource_id: str | None = None
    property_id: str | None = None
    external_id: str | None = None
    access_points: tuple[str, ...] = ()
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    send_after: datetime | None = None
    reference_id: str | None = None
    code: str | None = None
    code_formatted: str | None = None
    link: str | None = None
    message: str | None = None
    escalation: str | None = None  # an open escalation's reason (e.g. "revoke: max_attempts")
    problems: tuple[str, ...] = ()


class BookingAccess(msgspec.Struct, frozen=True, kw_only=True):
    source: str
    booking_id: str
    stays: tuple[StayAccess, ...]


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/bookings/{source}/{booking_id}/access", booking_access)


async def booking_access(request: web.Request) -> web.Response:
    source = request.match_info["source"]
    booking_id = request.match_info["booking_id"]
    caller = await admit_source(request, b"", named=source if is_id(source) else None)
    if isinstance(caller, web.Response):
        return caller
    timeline = None
    if caller.source == source and is_id(booking_id):
        timeline = await load_timeline(request.app[DATABASE], source, booking_id)
    if timeline is None or timeline.property_id not in caller.served:
        await forget_webhook_id(request, caller)
        return error(404, "not_found", "no such booking")
    return await _answer(request, timeline, source, booking_id)


async def _answer(
    request: web.Request, timeline: Timeline, source: str, booking_id: str
) -> web.Response:
    stays = await stays_access(request.app, timeline, masker(request))
    return json_response(BookingAccess(source=source, booking_id=booking_id, stays=stays))


async def stays_access(
    app: web.Application, timeline: Timeline, scrubber: Masker
) -> tuple[StayAccess, ...]:
    """Each stay's access now, in the grant states of service/domain/states.py: for the PMS
    (this API) and for operators (the console) alike."""
    source, booking_id = timeline.source, timeline.booking_id
    now = app[CLOCK].now()
    hotels = app[HOTELS]
    decision = await current_decision(app[DATABASE], timeline, hotels, now)
    desired = {g.stay_id: g for g in decision.desired.grants}
    grants = {g.stay_id: g for g in timeline.grants}
    held = timeline.held()
    unsettled = timeline.unsettled()
    # A failed call or delivery is named on the stay; a stay problem (e.g. a full shared door)
    # is listed under `problems` while its access works.
    escalated = {
        e.grant_key: e
        for e in timeline.escalations
        if e.resolved_at is None and (e.call_id is not None or e.delivery_id is not None)
    }
    issues: dict[str, list[str]] = {}
    for issue in decision.desired.issues:
        issues.setdefault(issue.stay_id, []).append(f"{issue.kind}: {issue.message}")
    booking = decision.state
    over: set[str] = set()
    if booking is not None:
        prop = hotels.properties.get(booking.booking.property_id)
        over = {s.stay.stay_id for s in booking.stays if access_over(booking, s, prop, now)}
    stay_ids = [s.stay.stay_id for s in booking.stays] if booking else []
    stay_ids += [s for s in grants if s not in stay_ids]
    stays = []
    for stay_id in stay_ids:
        grant = grants.get(stay_id)
        want = desired.get(stay_id)
        key = grant.grant_key if grant else f"{source}:{booking_id}:{stay_id}"
        wanted = want is not None or (stay_id not in over and booking is not None)
        state = grant_state(wanted=wanted, held=held.get(key), call=unsettled.get(key))
        failure = escalated.get(key)
        message = failure.message if failure else (grant.message if grant else None)
        shown = grant if grant is not None and (grant.state == "active" or want is None) else None
        stays.append(
            StayAccess(
                stay_id=stay_id,
                grant_key=key,
                state=state,
                resource_id=want.resource_id if want else None,
                property_id=grant.property_id if grant else (want.property_id if want else None),
                external_id=grant.external_id if grant else None,
                access_points=shown.access_points
                if shown
                else (want.access_points if want else ()),
                valid_from=shown.valid_from if shown else (want.valid_from if want else None),
                valid_to=shown.valid_to if shown else (want.valid_to if want else None),
                send_after=want.send_after if want and state == "pending" else None,
                reference_id=grant.reference_id if grant else None,
                code=grant.code if grant and state in MAY_OPEN else None,
                code_formatted=grant.code_formatted if grant and state in MAY_OPEN else None,
                link=grant.link if grant and state in MAY_OPEN else None,
                message=scrub(scrubber, message),
                escalation=f"{failure.operation}: {failure.reason}" if failure else None,
                problems=tuple(issues.get(stay_id, ())),
            )
        )
    return tuple(stays)
