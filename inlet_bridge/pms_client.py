"""How does a PMS talk to inlet-bridge from Python? A small typed client (docs/integrating.md).

Self-contained on purpose (aiohttp, msgspec and the standard library only), so a PMS vendor can
copy this one file: it signs requests the Standard Webhooks way (`sign`), posts events and
batches (`BridgeClient.post_event`, `post_batch`), reads a booking's access back (`access`),
and verifies the signed access webhooks the service sends (`verify_webhook`).

Retries are safe: an event is stored once per `(source, event_id)`, so a 503 or a lost answer
is retried with the same event, and each attempt is signed with a new `webhook-id` (an id is
accepted once). 429 and 503 carry `Retry-After`, which the client waits for.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

import aiohttp
import msgspec

SOURCE_HEADER = "Inlet-Bridge-Source"
TOLERANCE_SECONDS = 5 * 60


# --- what the service answers (unknown fields are ignored: the API may add some) ---


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    message: str


class EventAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """One event's 202: where it is in the log, when it was stored, what was dropped from it."""

    event_id: str
    position: int | None = None
    received_at: datetime | None = None
    warnings: tuple[Problem, ...] = ()
    replayed: bool = False  # a repeat: stored before, answered like the first delivery


class StayAccess(msgspec.Struct, frozen=True, kw_only=True):
    stay_id: str
    state: str  # pending, granting, active, updating, revoking, revoked, *_failed, none
    access_points: tuple[str, ...] = ()
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    code: str | None = None
    code_formatted: str | None = None
    link: str | None = None
    message: str | None = None


class BookingAccess(msgspec.Struct, frozen=True, kw_only=True):
    source: str
    booking_id: str
    stays: tuple[StayAccess, ...]


class AccessChangeData(msgspec.Struct, frozen=True, kw_only=True):
    source: str
    booking_id: str
    stay_id: str
    state: str
    access_points: tuple[str, ...] = ()
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    code: str | None = None
    code_formatted: str | None = None
    link: str | None = None
    previous_code_formatted: str | None = None


class AccessChange(msgspec.Struct, frozen=True, kw_only=True):
    """An access webhook: `access.granted`, `access.updated`, `access.revoked`, `access.*_failed`."""

    type: str
    timestamp: datetime
    data: AccessChangeData


class BridgeError(Exception):
    """The service refused a request: `status`, its `error` code, the `problems` by JSON path."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        problems: Sequence[Problem] = (),
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"HTTP {status} {error}: {message}")
        self.status = status
        self.error = error
        self.message = message
        self.problems = tuple(problems)
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        """Whether sending the same event again later may succeed (429, 503, 5xx)."""
        return self.status == 429 or self.status >= 500


class InvalidSignature(Exception):
    """An incoming webhook's signature, timestamp or headers do not check out."""


class _ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    error: str = "unknown"
    message: str = ""
    problems: tuple[Problem, ...] = ()


class _Batch(msgspec.Struct, frozen=True, kw_only=True):
    results: tuple[EventAnswer, ...]


# --- Standard Webhooks signatures ---


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret."""
    if not secret.startswith("whsec_"):
        raise ValueError("a signing secret looks like whsec_<base64>")
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the signing secret is not valid base64 after whsec_") from None


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp}.{body}">`."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def sign(
    secret: str,
    body: bytes,
    *,
    source: str | None,
    msg_id: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """The headers of one signed request (a new `webhook-id` unless one is given). A read signs
    `b"GET /v1/bookings/..."` (the method and the path) in place of a body."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, msg_id, timestamp, body),
    }
    if source is not None:
        headers[SOURCE_HEADER] = source
    return headers


def verify_webhook(
    secrets: str | Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
) -> AccessChange:
    """Check an access webhook from the service (any of `secrets`, e.g. during a rotation) and
    decode it; raises InvalidSignature. Drop a `webhook-id` you have already handled: the same
    change is sent with the same id on every retry."""
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id", "")
    stamp = lowered.get("webhook-timestamp", "")
    offered = lowered.get("webhook-signature", "").split()
    if not (msg_id and stamp.isdigit() and offered):
        raise InvalidSignature("missing or malformed webhook headers")
    moment = time.time() if now is None else now
    if abs(moment - int(stamp)) > TOLERANCE_SECONDS:
        raise InvalidSignature("the timestamp is too old or too new")
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    expected = {signature(s, msg_id, int(stamp), body) for s in keys}
    if not any(hmac.compare_digest(e, o) for e in expected for o in offered):
        raise InvalidSignature("no signature matches")
    try:
        change: AccessChange = msgspec.json.decode(body, type=AccessChange)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise InvalidSignature(f"signed, but not an access change: {exc}") from None
    return change


# --- the client ---


class BridgeClient:
    """One source's connection to the service: sign (or a bearer token), post, read back."""

    def __init__(
        self,
        base_url: str,
        *,
        source: str,
        signing_secret: str | None = None,
        token: str | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout_seconds: float = 15.0,
        attempts: int = 3,
        max_wait_seconds: float = 30.0,
    ) -> None:
        if (signing_secret is None) == (token is None):
            raise ValueError("give a signing_secret or a token")
        self._base = base_url.rstrip("/")
        self.source = source
        self._secret = signing_secret
        self._token = token
        self._session = session
        self._own_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._attempts = attempts
        self._max_wait = max_wait_seconds

    async def __aenter__(self) -> BridgeClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    def _headers(self, method: str, path: str, body: bytes | None) -> dict[str, str]:
        if self._token is not None:
            headers = {"Authorization": f"Bearer {self._token}"}
        else:
            assert self._secret is not None
            signed = body if body is not None else f"{method} {path}".encode()
            headers = sign(self._secret, signed, source=self.source)
        if body is not None:
            headers["Content-Type"] = "application/json"
        return headers

    async def _request(
        self, method: Literal["GET", "POST"], path: str, body: bytes | None
    ) -> tuple[int, bytes, Mapping[str, str]]:
        """One exchange, retried (a new signature each time) after 429/503 or a lost answer."""
        last: BaseException | None = None
        for attempt in range(1, self._attempts + 1):
            try:
                async with self._http().request(
                    method,
                    self._base + path,
                    data=body,
                    headers=self._headers(method, path, body),
                    timeout=self._timeout,
                ) as response:
                    content = await response.read()
                    status, headers = response.status, dict(response.headers)
            except (TimeoutError, aiohttp.ClientError) as exc:
                last = exc  # the answer is lost, not the event: sending it again is safe
                await asyncio.sleep(min(2.0**attempt, self._max_wait))
                continue
            if status in (429, 503) and attempt < self._attempts:
                wait = _retry_after(headers) or 2.0**attempt
                await asyncio.sleep(min(wait, self._max_wait))
                continue
            return status, content, headers
        raise ConnectionError(f"no answer after {self._attempts} attempts: {last!r}")

    async def post_event(self, event: Mapping[str, Any]) -> EventAnswer:
        """Post one event (the whole current state of one booking); 202 or BridgeError."""
        status, content, headers = await self._request(
            "POST", "/v1/events", msgspec.json.encode(event)
        )
        if status != 202:
            raise _refusal(status, content, headers)
        answer = msgspec.json.decode(content, type=EventAnswer)
        replayed = headers.get("Idempotent-Replayed") == "true"
        return msgspec.structs.replace(answer, replayed=replayed)

    async def post_batch(self, events: Sequence[Mapping[str, Any]]) -> list[EventAnswer]:
        """Post 1 to 500 events, committed together (all or none); one answer per event."""
        body = msgspec.json.encode({"events": list(events)})
        status, content, headers = await self._request("POST", "/v1/events:batch", body)
        if status != 202:
            raise _refusal(status, content, headers)
        return list(msgspec.json.decode(content, type=_Batch).results)

    async def access(self, booking_id: str) -> BookingAccess:
        """The access each stay of one of this source's bookings has now (404: BridgeError)."""
        path = f"/v1/bookings/{quote(self.source, safe='')}/{quote(booking_id, safe='')}/access"
        status, content, headers = await self._request("GET", path, None)
        if status != 200:
            raise _refusal(status, content, headers)
        return msgspec.json.decode(content, type=BookingAccess)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _refusal(status: int, content: bytes, headers: Mapping[str, str]) -> BridgeError:
    try:
        body = msgspec.json.decode(content, type=_ErrorBody)
    except (msgspec.DecodeError, msgspec.ValidationError):
        body = _ErrorBody(error="unknown", message=content[:200].decode(errors="replace"))
    return BridgeError(status, body.error, body.message, body.problems, _retry_after(headers))
