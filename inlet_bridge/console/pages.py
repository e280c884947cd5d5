"""What does the console show? Bookings found by a search, one booking's page, the health page.

Every page reads through the same functions as the API: the timeline of `booking_view` (masked
unless revealed, a reveal audited first), each stay's grant state from `stays_now` (the
access API's derivation), said in words by `inlet_bridge/domain/wording.py`.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web

from inlet_bridge.api.access import stays_now
from inlet_bridge.api.operators import booking_view
from inlet_bridge.api.scrub import is_id
from inlet_bridge.console.session import ConsoleUser, guard, page_error
from inlet_bridge.domain.booking import StayStatus
from inlet_bridge.domain.wording import access_in_words
from inlet_bridge.keys import CLOCK, DATABASE, HOTELS, SETTINGS
from inlet_bridge.logs import Masker
from inlet_bridge.store.oncall import BookingSearch, OnCallStore
from inlet_bridge.store.timeline import load_timeline

PAGE_SIZE = 25
MAX_PAGE = 10_000
STATUSES: tuple[StayStatus, ...] = (
    "confirmed",
    "checked_in",
    "checked_out",
    "cancelled",
    "no_show",
)
# A pending call this much past its due time is overdue: no replica is working the queue.
OVERDUE_SECONDS = 300.0
_PAGE = re.compile(r"[0-9]{1,5}")
UTC_ZONE = ZoneInfo("UTC")


def render(
    request: web.Request, template: str, user: ConsoleUser, status: int = 200, **context: Any
) -> web.Response:
    return aiohttp_jinja2.render_template(
        template,
        request,
        {"request": request, "user": user, "csrf": user.csrf, **context},
        status=status,
    )


def zone_of(request: web.Request, property_id: str) -> ZoneInfo:
    prop = request.app[HOTELS].properties.get(property_id)
    return prop.timezone if prop is not None else UTC_ZONE


async def bookings(request: web.Request) -> web.Response:
    user = await guard(request, "read", "read timelines")
    if isinstance(user, web.Response):
        return user
    query = request.query
    problems: list[str] = []

    def an_id(name: str) -> str | None:
        value = query.get(name, "").strip()
        if not value:
            return None
        if not is_id(value):
            problems.append(f"{name}: not an id")
            return None
        return value

    search = BookingSearch(
        source=an_id("source"),
        booking_id=an_id("booking_id"),
        property_id=an_id("property"),
        resource_id=an_id("resource"),
        status=query.get("status") if query.get("status") in STATUSES else None,
        open_escalation=query.get("open") == "1",
    )
    if query.get("status") and search.status is None:
        problems.append(f"status: must be one of {', '.join(STATUSES)}")
    page_text = query.get("page", "1")
    page = int(page_text) if _PAGE.fullmatch(page_text) else 0
    if not 1 <= page <= MAX_PAGE:
        problems.append(f"page: must be 1 to {MAX_PAGE}")
        page = 1
    found = []
    if not problems:
        found = await OnCallStore(request.app[DATABASE]).bookings(
            search,
            properties=user.operator.properties,
            limit=PAGE_SIZE + 1,
            offset=(page - 1) * PAGE_SIZE,
        )
    more = len(found) > PAGE_SIZE
    params = {k: v for k, v in query.items() if k != "page" and v}
    return render(
        request,
        "bookings.html",
        user,
        status=422 if problems else 200,
        search=search,
        problems=problems,
        found=found[:PAGE_SIZE],
        page=page,
        more=more,
        params=params,
        statuses=STATUSES,
        properties=sorted(request.app[HOTELS].properties),
    )


async def booking(request: web.Request) -> web.Response:
    return await _booking(request, reveal=False)


async def reveal(request: web.Request) -> web.Response:
    return await _booking(request, reveal=True)


async def _booking(request: web.Request, *, reveal: bool) -> web.Response:
    user = await guard(
        request,
        "reveal" if reveal else "read",
        "reveal codes and personal data" if reveal else "read timelines",
    )
    if isinstance(user, web.Response):
        return user
    source, booking_id = request.match_info["source"], request.match_info["booking_id"]
    actor = user.operator.actor(request)
    body = await booking_view(request.app, user.operator, actor, source, booking_id, reveal=reveal)
    timeline = await load_timeline(request.app[DATABASE], source, booking_id)
    if body is None or timeline is None:
        return page_error(request, 404, f"No booking {source}/{booking_id} that you may see.")
    now = request.app[CLOCK].now()
    zone = zone_of(request, timeline.property_id)
    masker = Masker(request.app[SETTINGS].log_mask_key)
    stays = []
    desired = {g["stay_id"]: g for g in (body.get("desired") or {}).get("grants", [])}
    actual = {g["stay_id"]: g for g in body["grants"]}
    for stay in await stays_now(request.app, timeline, masker):
        stays.append(
            {
                "access": stay,
                "words": access_in_words(
                    state=stay.state,
                    access_points=stay.access_points,
                    valid_from=stay.valid_from,
                    valid_to=stay.valid_to,
                    now=now,
                    zone=zone_of(request, stay.property_id or timeline.property_id),
                    send_after=stay.send_after,
                ),
                "desired": desired.get(stay.stay_id),
                "actual": actual.get(stay.stay_id),
            }
        )
    return render(
        request,
        "booking.html",
        user,
        t=body,
        stays=stays,
        revealed=reveal,
        may_reveal=user.operator.may("reveal"),
        zone=zone,
        now=now,
    )


async def health(request: web.Request) -> web.Response:
    user = await guard(request, "read", "read the service's health")
    if isinstance(user, web.Response):
        return user
    store = OnCallStore(request.app[DATABASE])
    now = request.app[CLOCK].now()
    hotels = request.app[HOTELS]
    pollers: list[dict[str, Any]] = []
    seen = set()
    for poller in await store.pollers():
        seen.add(poller.connection)
        last = poller.last_success_at
        pollers.append(
            {
                "name": poller.connection,
                "last_success_at": last,
                "since_success": None if last is None else now - last,
                "lag": None if poller.sync_time is None else now - poller.sync_time,
                "last_error": poller.last_error,
                "configured": poller.connection in hotels.spectra,
            }
        )
    for name in sorted(set(hotels.spectra) - seen):
        pollers.append({"name": name, "last_success_at": None, "configured": True})
    lag = await request.app[DATABASE].fetchval("gauge_reconcile_lag", now)
    open_rows = await store.open_escalations()
    scope = user.operator.properties
    by_hotel: dict[str, dict[str, int]] = {}
    for property_id, severity, count in open_rows:
        if scope is None or property_id in scope:
            by_hotel.setdefault(property_id, {})[severity] = count
    return render(
        request,
        "health.html",
        user,
        pollers=pollers,
        reconcile_lag=timedelta(seconds=lag or 0),
        backlog=await store.backlog(now, OVERDUE_SECONDS),
        overdue_minutes=int(OVERDUE_SECONDS // 60),
        by_hotel=by_hotel,
        names={pid: p.name for pid, p in hotels.properties.items()},
        now=now,
    )


def local(moment: datetime | str | None, zone: ZoneInfo = UTC_ZONE) -> str:
    """A time as the console shows it, in the hotel's zone: `2026-11-25 11:00 CET` (the
    timeline's times arrive as the API's ISO 8601 text)."""
    if moment is None:
        return "-"
    if isinstance(moment, str):
        try:
            parsed = datetime.fromisoformat(moment)
        except ValueError:
            return moment
        return parsed.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def ago(delta: timedelta | None) -> str:
    """`3 min`, `2 h 5 min`, `1 d 4 h`."""
    if delta is None:
        return "never"
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"
