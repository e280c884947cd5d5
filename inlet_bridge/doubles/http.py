"""What do the doubles' HTTP servers share? JSON answers, JSON bodies and Basic credentials."""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any

import msgspec
from aiohttp import web

# Decimals as JSON numbers: the Spectra emulator sends amounts the way Spectra does.
_ENCODER = msgspec.json.Encoder(decimal_format="number")


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=_ENCODER.encode(data), status=status, content_type="application/json", headers=headers
    )


async def json_body(request: web.Request) -> Any:
    """The request's JSON body; 400 when it is not JSON."""
    try:
        return msgspec.json.decode(await request.read())
    except msgspec.DecodeError:
        raise web.HTTPBadRequest(text="body is not JSON") from None


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    """The login and password of a Basic `Authorization` header, or None if there is none."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        login, sep, password = base64.b64decode(token, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (login, password) if sep else None


def same(given: str, expected: str) -> bool:
    """Compare a secret in constant time (a double is still an HTTP server on a port)."""
    return hmac.compare_digest(given.encode(), expected.encode())
