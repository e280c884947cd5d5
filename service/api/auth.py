"""Who is calling? Sources sign their webhooks or carry a bearer token; operators carry the admin token."""

from __future__ import annotations

from aiohttp import web

from service import webhooks
from service.keys import CLOCK, HOTELS, SETTINGS


def authenticate_source(request: web.Request, body: bytes) -> str | None:
    """The name of the source whose credentials the request carries, or None."""
    sources = request.app[HOTELS].sources
    signature = request.headers.get("webhook-signature")
    if signature is not None:
        msg_id = request.headers.get("webhook-id", "")
        timestamp = request.headers.get("webhook-timestamp", "")
        if not msg_id or not timestamp:
            return None
        now = request.app[CLOCK].now()
        for name, source in sources.items():
            secrets = [s.reveal() for s in source.signing_secrets]
            if secrets and webhooks.verify(
                secrets,
                msg_id=msg_id,
                timestamp=timestamp,
                signature_header=signature,
                body=body,
                now=now,
            ):
                return name
        return None
    token = _bearer(request)
    if token is None:
        return None
    for name, source in sources.items():
        if source.token is not None and source.token.matches(token):
            return name
    return None


def is_admin(request: web.Request) -> bool:
    admin = request.app[SETTINGS].admin_token
    token = _bearer(request)
    return admin is not None and token is not None and admin.matches(token)


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
