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
from typing import Literal

import msgspec
from aiohttp import web

from service.api.auth import admit_source, forget_webhook_id
from service.api.responses import error, json_response
from service.api.scrub import is_id, masker, scrub
from service.domain.access import access_over
from service.keys import CLOCK, DATABASE, HOTELS
from service.store.timeline import Timeline, current_decision, load_timeline

# pending: access is yet to be sent; none: the stay wants no access and never had any
# (cancelled, no-show or deleted before it was sent, or over); revoked: it had and lost it.
StayAccessState = Literal["pending", "active", "revoked", "escalated", "none"]


class StayAccess(msgspec.Struct, frozen=True, kw_only=True):
    stay_id: str
    grant_key: str
    state: StayAccessState
    resource_id: str | None = None
    access_points: tuple[str, ...] = ()
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    send_after: datetime | None = None
    reference_id: str | None = None
    code: str | None = None
    code_formatted: str | None = None
    link: str | None = None
    message: str | None = None
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
    now = request.app[CLOCK].now()
    hotels = request.app[HOTELS]
    decision = await current_decision(request.app[DATABASE], timeline, hotels, now)
    desired = {g.stay_id: g for g in decision.desired.grants}
    grants = {g.stay_id: g for g in timeline.grants}
    # A failed call or delivery escalates the stay; a stay problem (e.g. a full shared door)
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
    scrubber = masker(request)
    for stay_id in stay_ids:
        grant = grants.get(stay_id)
        want = desired.get(stay_id)
        key = grant.grant_key if grant else f"{source}:{booking_id}:{stay_id}"
        state: StayAccessState = "pending"
        if key in escalated:
            state = "escalated"
        elif grant is not None:
            state = "active" if grant.state == "active" else "revoked"
        elif want is None and stay_id in over:
            state = "none"
        message = escalated[key].message if key in escalated else (grant.message if grant else None)
        stays.append(
            StayAccess(
                stay_id=stay_id,
                grant_key=key,
                state=state,
                resource_id=want.resource_id if want else None,
                access_points=grant.access_points
                if grant
                else (want.access_points if want else ()),
                valid_from=grant.valid_from if grant else (want.valid_from if want else None),
                valid_to=grant.valid_to if grant else (want.valid_to if want else None),
                send_after=want.send_after if want and grant is None else None,
                reference_id=grant.reference_id if grant else None,
                code=grant.code if grant else None,
                code_formatted=grant.code_formatted if grant else None,
                link=grant.link if grant else None,
                message=scrub(scrubber, message),
                problems=tuple(issues.get(stay_id, ())),
            )
        )
    return json_response(BookingAccess(source=source, booking_id=booking_id, stays=tuple(stays)))
