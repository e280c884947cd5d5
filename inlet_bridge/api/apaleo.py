"""How does apaleo tell us a reservation changed? `POST /v1/adapters/apaleo/{connection}/webhook`.

apaleo recommends protecting the receiving URL with basic auth (docs/contract.md section 4):
each connection has its own login, from secrets. The login is found in one step (the path
names the connection) and compared in constant time, so the cost of a request does not grow
with the number of connections, and an unknown connection costs what a wrong password does.

The answer is 2xx only once the notification is durably stored (apaleo counts a 2xx as
delivered); a repeat of apaleo's notification id is stored once and answered 200 too. The
worker fetches the reservation later, so the receiver answers fast and never calls apaleo.
Health checks and other topics are answered 200 and not stored; a reservation notification for
another apaleo property is refused with 422 (a misconfigured subscription should be noticed).
A replayed request can only cause a fetch of the reservation's current state: harmless.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging

import msgspec
from aiohttp import web

from inlet_bridge.adapters.apaleo import mapping
from inlet_bridge.api.responses import error, json_response
from inlet_bridge.domain.config import HotelsConfig
from inlet_bridge.keys import CLOCK, DATABASE, HOTELS, REQUEST_ID, RUNTIME
from inlet_bridge.store.apaleo import NotificationStore, StoredNotification

log = logging.getLogger(__name__)

PATH = "/v1/adapters/apaleo/{connection}/webhook"
_REALM = {"WWW-Authenticate": 'Basic realm="inlet-bridge apaleo", charset="UTF-8"'}
# Compared against when the connection is unknown, so that costs the same as a wrong password.
_NOBODY = (b"\x00" * 32, b"\x00" * 32)


class ApaleoLogins:
    """The basic-auth login of every apaleo connection, indexed once when the app starts."""

    def __init__(self, hotels: HotelsConfig) -> None:
        self._logins: dict[str, tuple[bytes, bytes]] = {
            name: (c.webhook_username.reveal().encode(), c.webhook_password.reveal().encode())
            for name, c in hotels.apaleo.items()
        }

    def admits(self, connection: str, authorization: str) -> bool:
        known = self._logins.get(connection)
        username, password = known or _NOBODY
        scheme, _, token = authorization.partition(" ")
        try:
            login, sep, secret = base64.b64decode(token.strip(), validate=True).partition(b":")
        except (binascii.Error, ValueError):
            login, sep, secret = b"", b"", b""
        # Both compared whatever the first gives, so a wrong username takes as long as a
        # wrong password.
        user_ok = hmac.compare_digest(login, username)
        password_ok = hmac.compare_digest(secret, password)
        return (
            known is not None
            and scheme.lower() == "basic"
            and bool(sep)
            and user_ok
            and password_ok
        )


LOGINS: web.AppKey[ApaleoLogins] = web.AppKey("apaleo_logins", ApaleoLogins)


def add_routes(app: web.Application) -> None:
    app[LOGINS] = ApaleoLogins(app[HOTELS])
    app.router.add_post(PATH, receive)


async def receive(request: web.Request) -> web.Response:
    name = request.match_info["connection"]
    context = {"action": "apaleo.notification", "request_id": request.get(REQUEST_ID)}
    if not request.app[LOGINS].admits(name, request.headers.get("Authorization", "")):
        log.info("apaleo notification refused", extra={**context, "reason": "unauthorized"})
        response = error(401, "unauthorized", "missing or invalid credentials")
        response.headers.update(_REALM)
        return response
    connection = request.app[HOTELS].apaleo[name]
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return error(413, "too_large", "the notification is too large")
    try:
        notification: mapping.Notification = mapping.decode(body, mapping.Notification)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return error(400, "invalid", f"not an apaleo notification: {exc}")
    context |= {"connection": name, "type": notification.type, "notification_id": notification.id}
    entity = notification.data.entity_id if notification.data is not None else None
    if not mapping.is_reservation(notification) or not entity:
        # Health checks every two minutes, and topics we do not read: acknowledged, not kept.
        log.debug("apaleo notification not stored", extra={**context, "topic": notification.topic})
        return json_response({"stored": False, "reason": "not a reservation notification"})
    if (
        notification.property_id is not None
        and notification.property_id != connection.apaleo_property_id
    ):
        log.warning(
            "apaleo notification for another property",
            extra={**context, "reason": "foreign_property"},
        )
        return error(422, "invalid", "the notification is for another apaleo property")
    stored = StoredNotification(
        connection=name,
        notification_id=notification.id,
        topic=notification.topic,
        type=notification.type,
        entity_id=entity,
        sent_at=mapping.notification_time(notification),
        received_at=request.app[CLOCK].now(),
    )
    try:
        new = await NotificationStore(request.app[DATABASE]).insert(stored)
    except Exception as exc:  # not stored: apaleo must send it again
        log.warning(
            "apaleo notification not stored", extra={**context, "error": type(exc).__name__}
        )
        response = error(503, "unavailable", "the notification was not stored; retry later")
        response.headers["Retry-After"] = "5"
        return response
    log.info(
        "apaleo notification stored" if new else "apaleo notification repeated",
        extra={**context, "booking_id": entity, "repeat": not new},
    )
    runtime = request.app.get(RUNTIME)
    if new and runtime is not None and runtime.apaleo is not None:
        runtime.apaleo.wake()
    return json_response({"stored": True, "repeat": not new})
