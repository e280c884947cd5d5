"""What do our answers look like? JSON bodies and the one error shape every endpoint uses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from aiohttp import web

from service.domain.booking import Problem


def json_response(
    body: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(body),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error(status: int, code: str, message: str, problems: Sequence[Problem] = ()) -> web.Response:
    """`{"error": code, "message": ..., "problems": [{"path", "message"}]}`."""
    body: dict[str, Any] = {"error": code, "message": message}
    if problems:
        body["problems"] = list(problems)
    return json_response(body, status=status)
