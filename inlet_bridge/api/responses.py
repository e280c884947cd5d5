"""What do our answers look like? JSON bodies and the one error shape every endpoint uses."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import msgspec
from aiohttp import web

from inlet_bridge.domain.booking import Problem


def json_response(
    body: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(body),
        status=status,
        content_type="application/json",
        headers=headers,
    )


_FIELD = re.compile(r"(?:missing required|unknown) field `([^`]+)`")


def problem_from(exc: msgspec.ValidationError) -> Problem:
    """msgspec's one error as a Problem with a plain path (`selector.property_id`)."""
    text = str(exc)
    message, _, where = text.partition(" - at `")
    path = where.rstrip("`").removeprefix("$").removeprefix(".")
    field = _FIELD.search(message)
    if field is not None:
        path = f"{path}.{field.group(1)}" if path else field.group(1)
        message = "is required" if "missing" in message else "is not a known field"
    return Problem(path=path, message=message)


def error(status: int, code: str, message: str, problems: Sequence[Problem] = ()) -> web.Response:
    """`{"error": code, "message": ..., "problems": [{"path", "message"}]}`."""
    body: dict[str, Any] = {"error": code, "message": message}
    if problems:
        body["problems"] = list(problems)
    return json_response(body, status=status)
