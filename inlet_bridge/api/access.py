"""What access does a booking have, for the PMS that sent it? `GET /v1/bookings/{source}/{id}/access`.

The PMS puts the code, formatted code and link in its booking notes, shows them at the front
desk, or sends them itself when Inlet's messages are suppressed (agency and group bookings).
Only the source that owns the booking may read it, and only while the booking's property is one
it serves; any other caller gets 404, as if the booking did not exist. A signed read covers the
method and the path (`signing.read_content`) and its webhook-id is used once. Inlet's messages
are scrubbed of emails and phone numbers, as everywhere they are shown.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from inlet_bridge.api.auth import admit_source, forget_webhook_id
from inlet_bridge.api.responses import error, json_response
from inlet_bridge.api.scrub import is_id, masker, scrub
from inlet_bridge.domain.stay_access import StayAccess, stays_access
from inlet_bridge.keys import CLOCK, DATABASE, HOTELS
from inlet_bridge.logs import Masker
from inlet_bridge.store.timeline import Timeline, current_decision, load_timeline


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
    stays = await stays_now(request.app, timeline, masker(request))
    return json_response(BookingAccess(source=source, booking_id=booking_id, stays=stays))


async def stays_now(
    app: web.Application, timeline: Timeline, scrubber: Masker
) -> tuple[StayAccess, ...]:
    """Each stay's access now (`stays_access` in the domain decides it): for the PMS (this
    API) and for operators (the console, the CLI) alike. Inlet's messages are scrubbed of
    emails and phone numbers, as everywhere they are shown."""
    now = app[CLOCK].now()
    hotels = app[HOTELS]
    decision = await current_decision(app[DATABASE], timeline, hotels, now)
    property_id = decision.state.booking.property_id if decision.state else timeline.property_id
    return tuple(
        msgspec.structs.replace(stay, message=scrub(scrubber, stay.message))
        for stay in stays_access(
            source=timeline.source,
            booking_id=timeline.booking_id,
            state=decision.state,
            desired=decision.desired,
            grants=timeline.grants,
            unsettled=timeline.unsettled(),
            escalations=timeline.open_escalations(),
            prop=hotels.properties.get(property_id),
            now=now,
        )
    )
