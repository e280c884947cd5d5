"""What can an operator see and do? The booking timeline (admin token required).

Codes, links and guests' contact details are masked unless the operator asks for them
with `?reveal=true`: the timeline is often pasted into support tickets.
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from service.api.auth import is_admin
from service.api.responses import error, json_response
from service.keys import CLOCK, DATABASE, HOTELS, SETTINGS
from service.logs import Masker
from service.store.timeline import Timeline, current_decision, load_timeline


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/bookings/{source}/{booking_id}", booking_timeline)


def _require_admin(request: web.Request) -> web.Response | None:
    if not is_admin(request):
        return error(401, "unauthorized", "an admin token is required")
    return None


async def booking_timeline(request: web.Request) -> web.Response:
    if (refused := _require_admin(request)) is not None:
        return refused
    source = request.match_info["source"]
    booking_id = request.match_info["booking_id"]
    timeline = await load_timeline(request.app[DATABASE], source, booking_id)
    if timeline is None:
        return error(404, "not_found", "no such booking")
    reveal = request.query.get("reveal") == "true"
    now = request.app[CLOCK].now()
    decision = await current_decision(request.app[DATABASE], timeline, request.app[HOTELS], now)
    body: dict[str, Any] = msgspec.to_builtins(timeline)
    body["state"] = msgspec.to_builtins(decision.state.booking) if decision.state else None
    body["desired"] = msgspec.to_builtins(decision.desired)
    if not reveal:
        # the logs' key: a tag in a ticket matches the same value's tag in the logs
        _mask_personal(body, Masker(request.app[SETTINGS].log_mask_key))
    return json_response(body)


_FREE_TEXT_KEYS = frozenset({"message", "last_message"})
_PERSONAL_KEYS = frozenset(
    {"name", "email", "phone", "guest_name", "code", "code_formatted", "link"}
)
# An event's contact warnings hold JSON paths and our own messages, never the dropped values;
# scrubbing them would only mask the example number in "e.g. +4791234567".
_WITHOUT_PERSONAL_KEYS = frozenset({"warnings"})


def _mask_personal(node: Any, masker: Masker) -> None:
    """Mask personal values in place, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _WITHOUT_PERSONAL_KEYS:
                continue
            if key in _PERSONAL_KEYS and isinstance(value, str):
                node[key] = masker.mask(value)
            elif key in _FREE_TEXT_KEYS and isinstance(value, str):
                node[key] = masker.scrub(value)  # Inlet's messages may repeat an email or phone
            else:
                _mask_personal(value, masker)
    elif isinstance(node, list | tuple):
        for item in node:
            _mask_personal(item, masker)


__all__ = ["Timeline", "add_routes"]
