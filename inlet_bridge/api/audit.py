"""Who revealed what, and who did what to which booking? `GET /v1/audit` (role admin).

The audit trail, newest first: every reveal of codes and personal data and every operator
action (retry, resolve, re-sync), from the API and the CLI alike. Page back with `before`
(the smallest id of the page). An admin limited to some properties sees only their rows.
"""

from __future__ import annotations

import re

from aiohttp import web

from inlet_bridge.api.auth import require_operator
from inlet_bridge.api.escalations import row_id
from inlet_bridge.api.responses import error, json_response
from inlet_bridge.api.scrub import is_id
from inlet_bridge.domain.booking import Problem
from inlet_bridge.keys import DATABASE
from inlet_bridge.store.audit import AuditStore

ACTIONS = ("reveal", "retry", "resolve", "resync")
MAX_LIMIT = 500
_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,128}")
_LIMIT = re.compile(r"[0-9]{1,3}")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/audit", list_audit)


async def list_audit(request: web.Request) -> web.Response:
    operator = require_operator(request, "audit", "read the audit trail")
    if isinstance(operator, web.Response):
        return operator
    query = request.query
    problems: list[Problem] = []
    for key in ("source", "booking_id"):
        if key in query and not is_id(query[key]):
            problems.append(Problem(path=key, message="is not an id"))
    if "operator" in query and not _NAME.fullmatch(query["operator"]):
        problems.append(Problem(path="operator", message="is not an operator name"))
    if "action" in query and query["action"] not in ACTIONS:
        problems.append(Problem(path="action", message=f"must be one of {', '.join(ACTIONS)}"))
    before = None
    if "before" in query and (before := row_id(query["before"])) is None:
        problems.append(Problem(path="before", message="must be an audit row id"))
    limit = 100
    if "limit" in query:
        text = query["limit"]
        limit = int(text) if _LIMIT.fullmatch(text) else 0
        if not 1 <= limit <= MAX_LIMIT:
            problems.append(Problem(path="limit", message=f"must be 1 to {MAX_LIMIT}"))
    if problems:
        return error(422, "invalid", "bad query", problems)
    rows = await AuditStore(request.app[DATABASE]).list(
        source=query.get("source"),
        booking_id=query.get("booking_id"),
        operator=query.get("operator"),
        action=query.get("action"),
        properties=operator.properties,
        before_id=before,
        limit=limit,
    )
    return json_response({"entries": rows})
