"""What needs a person, and how do they act? `/v1/escalations` (operator credentials).

Any role lists escalations (Inlet's messages scrubbed of emails and phone numbers, as in the
timeline); the roles operator and admin retry and resolve them, each action written to the
audit trail in the same transaction. An operator limited to some properties sees and acts on
those properties' escalations only.
"""

from __future__ import annotations

import re
from typing import Literal

import msgspec
from aiohttp import web

from inlet_bridge.api.auth import require_operator
from inlet_bridge.api.responses import error, json_response, problem_from
from inlet_bridge.api.scrub import masker, scrub
from inlet_bridge.domain.booking import Problem
from inlet_bridge.domain.vocab import ESCALATION_OPERATIONS
from inlet_bridge.keys import CLOCK, DATABASE, RUNTIME
from inlet_bridge.store.audit import Actor
from inlet_bridge.store.escalations import EscalationStore, Outcome
from inlet_bridge.store.oncall import OnCallStore

MAX_NOTE_CHARS = 2000
# The largest id PostgreSQL's bigint holds: a bigger one names nothing.
MAX_ID = 2**63 - 1
_ID = re.compile(r"[0-9]{1,19}")
# Control characters have no place in a note (PostgreSQL refuses NUL outright).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
OPERATIONS = ESCALATION_OPERATIONS


class ActionBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    note: str


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/escalations", list_escalations)
    app.router.add_get("/v1/escalations/{id}", get_escalation)
    app.router.add_post("/v1/escalations/{id}/retry", retry_escalation)
    app.router.add_post("/v1/escalations/{id}/resolve", resolve_escalation)


def row_id(text: str) -> int | None:
    """A path's numeric id, or None when it cannot name a row (not digits, beyond bigint)."""
    if not _ID.fullmatch(text):
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


def _bad_query(path: str, message: str) -> web.Response:
    return error(422, "invalid", "bad query", [Problem(path=path, message=message)])


async def list_escalations(request: web.Request) -> web.Response:
    operator = require_operator(request, "read", "list escalations")
    if isinstance(operator, web.Response):
        return operator
    severity = request.query.get("severity")
    if severity is not None and severity not in ("critical", "high", "warning"):
        return _bad_query("severity", "must be critical, high or warning")
    state = request.query.get("state", "open")
    if state not in ("open", "resolved", "all"):
        return _bad_query("state", "must be open, resolved or all")
    operation = request.query.get("operation")
    if operation is not None and operation not in OPERATIONS:
        return _bad_query("operation", f"must be one of {', '.join(OPERATIONS)}")
    open_only = {"open": True, "resolved": False, "all": None}[state]
    found = await EscalationStore(request.app[DATABASE]).list(
        open_only=open_only,
        severity=severity,
        operation=operation,
        properties=operator.properties,
    )
    scrubber = masker(request)
    shown = [msgspec.structs.replace(e, message=scrub(scrubber, e.message)) for e in found]
    return json_response({"escalations": shown})


async def _act(request: web.Request, action: Literal["retry", "resolve"]) -> web.Response:
    operator = require_operator(request, "act", f"{action} escalations")
    if isinstance(operator, web.Response):
        return operator
    escalation_id = row_id(request.match_info["id"])
    if escalation_id is None:
        return error(404, "not_found", "no such open escalation")
    try:
        body = msgspec.json.decode(await request.read() or b"{}", type=ActionBody)
    except msgspec.ValidationError as exc:
        return error(422, "invalid", "the body is not valid", [problem_from(exc)])
    except (msgspec.DecodeError, RecursionError):
        return error(
            422,
            "invalid",
            "the body is not valid JSON",
            [Problem(path="", message="is not valid JSON")],
        )
    if problem := note_problem(body.note):
        message = "a note is required" if not body.note.strip() else "the note is not valid"
        return error(422, "invalid", message, [Problem(path="note", message=problem)])
    outcome = await act_on_escalation(
        request.app,
        escalation_id,
        action,
        note=body.note,
        actor=operator.actor(request),
        properties=operator.properties,
    )
    if outcome == "not_found":
        return error(404, "not_found", "no such open escalation")
    answer: dict[str, object] = {"id": escalation_id, "outcome": outcome}
    if outcome == "retried":
        # Where the retried call can be followed (pending, then succeeded or failed again).
        answer["follow"] = f"/v1/escalations/{escalation_id}"
    return json_response(answer)


async def act_on_escalation(
    app: web.Application,
    escalation_id: int,
    action: Literal["retry", "resolve"],
    *,
    note: str,
    actor: Actor,
    properties: frozenset[str] | None,
) -> Outcome:
    """Retry or resolve, audited in the same transaction (API and console alike; the caller has
    checked the role and the note). A retry wakes this replica's workers."""
    store = EscalationStore(app[DATABASE])
    now = app[CLOCK].now()
    if action == "retry":
        outcome = await store.retry(
            escalation_id, note=note, now=now, actor=actor, properties=properties
        )
        if RUNTIME in app:
            app[RUNTIME].wake_reconciler()
            app[RUNTIME].wake_calls()
        return outcome
    return await store.resolve(
        escalation_id, note=note, now=now, actor=actor, properties=properties
    )


async def get_escalation(request: web.Request) -> web.Response:
    """One escalation and, once retried, what the retry led to (`retry.state`)."""
    operator = require_operator(request, "read", "list escalations")
    if isinstance(operator, web.Response):
        return operator
    escalation_id = row_id(request.match_info["id"])
    found = None
    if escalation_id is not None:
        found = await OnCallStore(request.app[DATABASE]).followed(escalation_id)
    if found is None or not operator.sees(found[0]):
        return error(404, "not_found", "no such escalation")
    [escalation] = await OnCallStore(request.app[DATABASE]).escalations(
        open_only=None, escalation_id=escalation_id
    )
    scrubber = masker(request)
    progress = found[1]
    if progress.call is not None:
        call = msgspec.structs.replace(
            progress.call, last_message=scrub(scrubber, progress.call.last_message)
        )
        progress = msgspec.structs.replace(progress, call=call)
    body = msgspec.to_builtins(
        msgspec.structs.replace(
            escalation,
            message=scrub(scrubber, escalation.message),
            last_message=scrub(scrubber, escalation.last_message),
        )
    )
    body["retry"] = msgspec.to_builtins(progress)
    body["retry"]["finished"] = progress.finished
    return json_response(body)


def note_problem(note: str) -> str | None:
    """What is wrong with an operator's note, if anything."""
    if not note.strip():
        return "must not be empty"
    if len(note) > MAX_NOTE_CHARS:
        return f"must be at most {MAX_NOTE_CHARS} characters"
    if _CONTROL.search(note):
        return "must not contain control characters"
    return None


async def retry_escalation(request: web.Request) -> web.Response:
    return await _act(request, "retry")


async def resolve_escalation(request: web.Request) -> web.Response:
    return await _act(request, "resolve")
