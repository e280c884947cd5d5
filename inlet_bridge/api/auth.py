"""Who is calling, and what may they do? Sources and operators, each found in one step.

- A source's bearer token is looked up by its SHA-256 digest in a table built at start-up.
- A signed request (Standard Webhooks) names its source, in the `Inlet-Bridge-Source` header
  or, for reads, in the path (`/v1/bookings/{source}/...`): only that source's secrets are
  tried, so the cost of a request does not grow with the number of sources. A request without
  a body signs `{METHOD} {path}` in place of one (`signing.read_content`). Its `webhook-id`
  is recorded for the source until its timestamp is too old anyway: a replay is refused (409).
- Each source has a token bucket (`[sources.X] rate_limit`): beyond it, 429 with Retry-After.
- Operators carry a bearer token: a named operator of the properties file (with its role and
  optional properties) or `ADMIN_TOKEN` (an admin of every property).

A token with anything but printable ASCII in it is no token: it is refused like a wrong one.
"""

from __future__ import annotations

import hashlib
import logging
import math
from datetime import datetime, timedelta
from typing import Literal

import msgspec
from aiohttp import web

from inlet_bridge import signing
from inlet_bridge.api.responses import error
from inlet_bridge.domain.config import HotelsConfig, OperatorRole, RateLimit
from inlet_bridge.domain.ratelimit import Bucket, take
from inlet_bridge.domain.secret import Secret
from inlet_bridge.keys import CLOCK, DATABASE, REQUEST_ID
from inlet_bridge.properties import ADMIN_TOKEN_OPERATOR
from inlet_bridge.store.audit import Actor
from inlet_bridge.store.replay import SeenWebhookIds

log = logging.getLogger(__name__)

SOURCE_HEADER = "Inlet-Bridge-Source"
MAX_TOKEN_CHARS = 1024

Permission = Literal["read", "reveal", "act", "audit"]
# viewer: read (masked); operator: also reveal and act; admin: also the audit trail.
ROLES: dict[Permission, frozenset[OperatorRole]] = {
    "read": frozenset({"viewer", "operator", "admin"}),
    "reveal": frozenset({"operator", "admin"}),
    "act": frozenset({"operator", "admin"}),
    "audit": frozenset({"admin"}),
}


class OperatorIdentity(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    role: OperatorRole
    # None: every property.
    properties: frozenset[str] | None = None

    def may(self, permission: Permission) -> bool:
        return self.role in ROLES[permission]

    def sees(self, property_id: str) -> bool:
        return self.properties is None or property_id in self.properties

    def actor(self, request: web.Request) -> Actor:
        return Actor(operator=self.name, role=self.role, request_id=request.get(REQUEST_ID))


class SourceCaller(msgspec.Struct, frozen=True, kw_only=True):
    """An authenticated source; a signed request's webhook-id, recorded as seen at `seen_at`."""

    source: str
    served: frozenset[str]
    webhook_id: str | None = None
    seen_at: datetime | None = None


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii")).digest()


class Credentials:
    """Every credential the service accepts, indexed once when the app starts."""

    def __init__(self, hotels: HotelsConfig, admin_token: Secret | None) -> None:
        self._sources: dict[bytes, str] = {}
        self._keys: dict[str, tuple[bytes, ...]] = {}
        self._served: dict[str, frozenset[str]] = {}
        self._limits: dict[str, RateLimit] = {}
        for name, source in hotels.sources.items():
            if source.token is not None and _token_text(source.token.reveal()):
                self._sources[_digest(source.token.reveal())] = name
            self._keys[name] = tuple(signing.secret_key(s.reveal()) for s in source.signing_secrets)
            self._limits[name] = source.rate_limit
        adapters = [c.source(n) for n, c in hotels.spectra.items()]
        adapters += [c.source(n) for n, c in hotels.apaleo.items()]
        for name in (*hotels.sources, *adapters):
            self._served[name] = hotels.served_properties(name)
        self._operators: dict[bytes, OperatorIdentity] = {}
        for name, operator in hotels.operators.items():
            if _token_text(operator.token.reveal()):
                self._operators[_digest(operator.token.reveal())] = OperatorIdentity(
                    name=name,
                    role=operator.role,
                    properties=None
                    if operator.properties is None
                    else frozenset(operator.properties),
                )
        if admin_token is not None and _token_text(admin_token.reveal()):
            self._operators[_digest(admin_token.reveal())] = OperatorIdentity(
                name=ADMIN_TOKEN_OPERATOR, role="admin"
            )

    def source_by_token(self, token: str) -> str | None:
        return self._sources.get(_digest(token))

    def signing_keys(self, source: str) -> tuple[bytes, ...]:
        return self._keys.get(source, ())

    def served(self, source: str) -> frozenset[str]:
        return self._served.get(source, frozenset())

    def rate_limit(self, source: str) -> RateLimit:
        return self._limits.get(source, RateLimit())

    def operator_by_token(self, token: str) -> OperatorIdentity | None:
        return self._operators.get(_digest(token))

    def operator_by_digest(self, digest: bytes) -> OperatorIdentity | None:
        """The operator whose token has this SHA-256 (a console session remembers only that)."""
        return self._operators.get(digest)


def token_digest(token: str) -> bytes | None:
    """The SHA-256 credentials are indexed by; None for what cannot be a token."""
    return _digest(token) if _token_text(token) else None


class RateLimits:
    """The token buckets of this replica, one per source."""

    def __init__(self) -> None:
        self._buckets: dict[str, Bucket] = {}

    def admit(self, source: str, limit: RateLimit, now: datetime) -> float | None:
        """None when the request may go on, else the seconds until it may be retried."""
        bucket, wait = take(
            self._buckets.get(source), now=now, per_second=limit.per_second, burst=limit.burst
        )
        self._buckets[source] = bucket
        return wait


CREDENTIALS: web.AppKey[Credentials] = web.AppKey("credentials", Credentials)
RATE_LIMITS: web.AppKey[RateLimits] = web.AppKey("rate_limits", RateLimits)


def unauthorized(message: str = "missing or invalid credentials") -> web.Response:
    return error(401, "unauthorized", message)


async def admit_source(
    request: web.Request, body: bytes, *, named: str | None = None
) -> SourceCaller | web.Response:
    """The authenticated source (credentials, rate limit, replay), or the refusal to answer.

    `named` is the source the path names (reads); a signed request may name it instead of
    sending `Inlet-Bridge-Source`.
    """
    credentials = request.app[CREDENTIALS]
    now = request.app[CLOCK].now()
    signature = request.headers.get("webhook-signature")
    webhook_id: str | None = None
    if signature is not None:
        header = request.headers.get(SOURCE_HEADER)
        source = header or named
        if source is None:
            return unauthorized(f"a signed request names its source in {SOURCE_HEADER}")
        if header is not None and named is not None and header != named:
            return unauthorized(f"{SOURCE_HEADER} is not the source of the path")
        webhook_id = request.headers.get("webhook-id", "")
        timestamp = request.headers.get("webhook-timestamp", "")
        content = (
            body
            if request.method == "POST"
            else signing.read_content(request.method, request.raw_path)
        )
        if not signing.verify_keys(
            credentials.signing_keys(source),
            msg_id=webhook_id,
            timestamp=timestamp,
            signature_header=signature,
            body=content,
            now=now,
        ):
            return unauthorized()
    else:
        token = bearer(request)
        found = None if token is None else credentials.source_by_token(token)
        if found is None:
            return unauthorized()
        source = found
    wait = request.app[RATE_LIMITS].admit(source, credentials.rate_limit(source), now)
    if wait is not None:
        response = error(
            429, "rate_limited", f"too many requests from {source}; retry after the pause"
        )
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return response
    if webhook_id is None:
        return SourceCaller(source=source, served=credentials.served(source))
    sent_at = int(request.headers["webhook-timestamp"])
    expires = datetime.fromtimestamp(sent_at, now.tzinfo) + timedelta(
        seconds=signing.TOLERANCE_SECONDS + 1
    )
    try:
        claimed = await SeenWebhookIds(request.app[DATABASE]).claim(
            source, webhook_id, now=now, expires_at=expires
        )
    except Exception as exc:  # the database is down: nothing was done, the sender retries
        log.warning(
            "webhook-id not recorded",
            extra={"action": "auth.replay_check_failed", "error": type(exc).__name__},
        )
        return error(503, "unavailable", "the request could not be checked; retry later")
    if not claimed:
        return error(
            409,
            "replayed",
            "this webhook-id was already used by this source; sign each request with a new one",
        )
    return SourceCaller(
        source=source, served=credentials.served(source), webhook_id=webhook_id, seen_at=now
    )


async def forget_webhook_id(request: web.Request, caller: SourceCaller) -> None:
    """A refused request gives its webhook-id back: the sender may retry it as it was."""
    if caller.webhook_id is not None and caller.seen_at is not None:
        try:
            await SeenWebhookIds(request.app[DATABASE]).release(
                caller.source, caller.webhook_id, seen_at=caller.seen_at
            )
        except Exception as exc:  # the id then simply expires with its timestamp
            log.warning(
                "webhook-id not released",
                extra={"action": "auth.release_failed", "error": type(exc).__name__},
            )


def authenticate_operator(request: web.Request) -> OperatorIdentity | None:
    token = bearer(request)
    return None if token is None else request.app[CREDENTIALS].operator_by_token(token)


class Refusal(msgspec.Struct, frozen=True, kw_only=True):
    """Why an operator may not go on: 401 (who are you?) or 403 (not you)."""

    status: int
    message: str


def refusal(operator: OperatorIdentity | None, permission: Permission, what: str) -> Refusal | None:
    """The one check of who may do what, for the API (bearer tokens) and the console (sessions)."""
    if operator is None:
        return Refusal(status=401, message="operator credentials are required")
    if not operator.may(permission):
        return Refusal(status=403, message=f"the role {operator.role} may not {what}")
    return None


def require_operator(
    request: web.Request, permission: Permission, what: str
) -> OperatorIdentity | web.Response:
    """The operator, if their role allows `permission`; else 401 (who?) or 403 (not you)."""
    operator = authenticate_operator(request)
    refused = refusal(operator, permission, what)
    if refused is not None:
        if refused.status == 401:
            return unauthorized(refused.message)
        return error(403, "forbidden", refused.message)
    assert operator is not None
    return operator


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not _token_text(token):
        return None
    return token


def _token_text(token: str) -> bool:
    """Printable ASCII of a sane length: bytes that are not (a header that is not UTF-8, as
    aiohttp hands it on) can only be a wrong token."""
    return 0 < len(token) <= MAX_TOKEN_CHARS and token.isascii() and token.isprintable()
