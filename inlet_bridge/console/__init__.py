"""Where does the person on call work? The operator console under `/console/`.

Server-rendered pages (aiohttp-jinja2, templates in `inlet_bridge/console/templates/`, shipped as
package data; no JavaScript build): sign-in, bookings, one booking, escalations, re-sync and
health. Sessions, CSRF and the role check are in `session.py`; the pages read and act through
the same functions as the API.
"""

from __future__ import annotations

import aiohttp_jinja2
import jinja2
from aiohttp import web

from inlet_bridge.console import acting, pages, session
from inlet_bridge.domain.wording import doors


async def _home(request: web.Request) -> web.Response:
    return session.see_other("/console/bookings")


def add_routes(app: web.Application) -> None:
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("inlet_bridge.console", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["local"] = pages.local
    env.filters["ago"] = pages.ago
    env.filters["doors"] = doors
    r = app.router
    r.add_get("/console/", _home)
    r.add_get("/console/sign-in", session.sign_in_page)
    r.add_post("/console/sign-in", session.sign_in)
    r.add_post("/console/sign-out", session.sign_out)
    r.add_get("/console/bookings", pages.bookings)
    r.add_get("/console/bookings/{source}/{booking_id}", pages.booking)
    r.add_post("/console/bookings/{source}/{booking_id}/reveal", pages.reveal)
    r.add_get("/console/escalations", acting.escalations)
    r.add_get("/console/escalations/{id}", acting.escalation)
    r.add_post("/console/escalations/{id}/retry", acting.retry)
    r.add_post("/console/escalations/{id}/resolve", acting.resolve)
    r.add_get("/console/resync", acting.resync_page)
    r.add_post("/console/resync", acting.resync_start)
    r.add_get("/console/resync/{resync_id}", acting.resync_progress)
    r.add_get("/console/health", pages.health)
