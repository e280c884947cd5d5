"""How do we talk to one hotel's Spectra API, and what can go wrong when we do?

One `SpectraClient` per hotel connection, sharing the service's aiohttp session. Every
call either returns decoded payload Structs or raises `SpectraError` with a kind the
poller can act on. Logs name the endpoint (never the URL: a disable path carries the door
code) and never a guest's data; the password lives only in the auth header.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import aiohttp
import msgspec
import yarl

from inlet_bridge.adapters.spectra import mapping
from inlet_bridge.adapters.spectra.mapping import (
    Endpoint,
    SpectraBalance,
    SpectraCodeBody,
    SpectraConference,
    SpectraFeedItem,
    SpectraHotel,
    SpectraPayloadError,
    SpectraReservation,
    SpectraRoom,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

ErrorKind = Literal["timeout", "http", "decode", "connection"]

_NO_BODY = b""


class SpectraError(Exception):
    """A Spectra call failed. `kind` says how; `status` is the HTTP status when there was one.

    The message names the endpoint and the problem, never a response body or a URL.
    """

    def __init__(self, kind: ErrorKind, status: int | None, message: str) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.status = status
        self.message = message

    @property
    def temporary(self) -> bool:
        """Whether trying again later may succeed (network, timeouts, 408/429/5xx)."""
        if self.kind in ("timeout", "connection"):
            return True
        return self.status is not None and (self.status in (408, 429) or self.status >= 500)

    def __repr__(self) -> str:
        return f"SpectraError(kind={self.kind!r}, status={self.status!r}, message={self.message!r})"


def sync_time_text(sync_time: datetime) -> str:
    """The feed's SyncTime: ISO-8601 UTC, floored to the second.

    Flooring can only re-read a few feed items (harmless, events are idempotent); rounding
    up could skip one.
    """
    if sync_time.tzinfo is None:
        raise ValueError("sync_time must be timezone-aware")
    return sync_time.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def basic_authorization(username: str, password: str) -> str:
    """The HTTP Basic `Authorization` value (built here: aiohttp's BasicAuth is deprecated)."""
    if ":" in username:
        raise ValueError('a Basic auth username cannot contain ":"')
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


class SpectraClient:
    """The Spectra endpoints of one hotel, as typed methods."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        username: str,
        password: str,
        hotel_code: str,
        timeout_seconds: float = 15,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._authorization = basic_authorization(username, password)
        self.hotel_code = hotel_code
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    def __repr__(self) -> str:
        return f"SpectraClient(base_url={self._base!r}, hotel_code={self.hotel_code!r})"

    # --- hotel set-up and room state ---

    async def rooms(self) -> list[SpectraRoom]:
        return await self._get_list(mapping.ROOMS, {}, SpectraRoom)

    async def hotel_settings(self) -> list[SpectraHotel]:
        return await self._get_list(mapping.HOTEL_SETTINGS, {}, SpectraHotel)

    # --- room reservations ---

    async def reservations(
        self, arrival_from: date, arrival_to: date, *, page: int = 1, page_size: int = 100
    ) -> list[SpectraReservation]:
        """One page of reservations arriving between the two hotel-local dates (inclusive)."""
        params = {
            mapping.PARAM_ARRIVAL_FROM: arrival_from.isoformat(),
            mapping.PARAM_ARRIVAL_TO: arrival_to.isoformat(),
            mapping.PARAM_PAGE: str(page),
            mapping.PARAM_PAGE_SIZE: str(page_size),
        }
        return await self._get_list(mapping.RESERVATIONS, {}, SpectraReservation, params)

    async def all_reservations(
        self, arrival_from: date, arrival_to: date, *, page_size: int = 100, max_pages: int = 100
    ) -> list[SpectraReservation]:
        """Every page, until a short page; `max_pages` bounds a server that never ends."""
        found: list[SpectraReservation] = []
        for page in range(1, max_pages + 1):
            batch = await self.reservations(
                arrival_from, arrival_to, page=page, page_size=page_size
            )
            found.extend(batch)
            if len(batch) < page_size:
                return found
        log.warning(
            "spectra reservations: stopped after max_pages",
            extra={
                "action": "spectra.call",
                "endpoint": mapping.RESERVATIONS.name,
                "hotel_code": self.hotel_code,
                "max_pages": max_pages,
            },
        )
        return found

    async def reservation(self, guid: str) -> SpectraReservation:
        raw = await self._call(mapping.RESERVATION, {"guid": guid})
        return self._decode(mapping.RESERVATION, raw, SpectraReservation)

    async def post_reservation_code(self, guid: str, code: str) -> None:
        """Write the keypad code (e.g. `#1234*`) to the reservation, for the front desk."""
        body = msgspec.json.encode(SpectraCodeBody(code=code))
        await self._call(mapping.POST_CODE, {"guid": guid}, body=body, expect_body=False)

    async def disable_reservation_code(self, guid: str, code: str) -> None:
        await self._call(
            mapping.DISABLE_CODE, {"guid": guid, "code": code}, body=_NO_BODY, expect_body=False
        )

    async def events_since(self, sync_time: datetime) -> list[SpectraFeedItem]:
        """Reservations changed at or after `sync_time` (the feed gives GUIDs, not content)."""
        path = {"sync_time": sync_time_text(sync_time)}
        return await self._get_list(mapping.EVENTS, path, SpectraFeedItem)

    # --- conferences and payments ---

    async def conferences(self) -> list[SpectraConference]:
        path = {"hotel_code": self.hotel_code}
        return await self._get_list(mapping.CONFERENCES, path, SpectraConference)

    async def balance(self, guid: str) -> SpectraBalance:
        raw = await self._call(mapping.BALANCE, {"guid": guid})
        return self._decode(mapping.BALANCE, raw, SpectraBalance)

    # --- plumbing ---

    def _url(self, endpoint: Endpoint, path_args: Mapping[str, str]) -> yarl.URL:
        # Every path argument is fully escaped (a code like "#1234*" must not become a
        # fragment), and the URL is marked encoded so nothing escapes it a second time.
        escaped = {key: quote(value, safe="") for key, value in path_args.items()}
        return yarl.URL(self._base + endpoint.path.format(**escaped), encoded=True)

    async def _get_list(
        self,
        endpoint: Endpoint,
        path_args: Mapping[str, str],
        type_: type[T],
        params: Mapping[str, str] | None = None,
    ) -> list[T]:
        raw = await self._call(endpoint, path_args, params=params)
        try:
            items, problems = mapping.decode_list(raw, type_)
        except SpectraPayloadError as exc:
            raise self._fail(endpoint, "decode", 200, f"unexpected shape: {exc}") from None
        if problems:
            log.warning(
                "spectra %s: %d item(s) skipped: %s",
                endpoint.name,
                len(problems),
                "; ".join(problems[:5]),
                extra={
                    "action": "spectra.call",
                    "endpoint": endpoint.name,
                    "hotel_code": self.hotel_code,
                    "skipped": len(problems),
                },
            )
        return items

    def _decode(self, endpoint: Endpoint, raw: Any, type_: type[T]) -> T:
        try:
            return mapping.decode(raw, type_)
        except SpectraPayloadError as exc:
            raise self._fail(endpoint, "decode", 200, f"unexpected shape: {exc}") from None

    def _fail(
        self, endpoint: Endpoint, kind: ErrorKind, status: int | None, problem: str
    ) -> SpectraError:
        log.warning(
            "spectra %s failed: %s",
            endpoint.name,
            problem,
            extra={
                "action": "spectra.call",
                "endpoint": endpoint.name,
                "hotel_code": self.hotel_code,
                "outcome": kind,
                "status": status,
            },
        )
        return SpectraError(kind, status, f"{endpoint.name}: {problem}")

    async def _call(
        self,
        endpoint: Endpoint,
        path_args: Mapping[str, str],
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        expect_body: bool = True,
    ) -> Any:
        """One HTTP exchange; the decoded JSON (None when no body is expected or sent)."""
        url = self._url(endpoint, path_args)
        headers = {"Accept": "application/json", "Authorization": self._authorization}
        if body:
            headers["Content-Type"] = "application/json"
        started = time.monotonic()
        try:
            async with self._session.request(
                endpoint.method,
                url,
                params=params,
                data=body,
                headers=headers,
                timeout=self._timeout,
            ) as response:
                status = response.status
                content = await response.read()
        except TimeoutError:
            raise self._fail(endpoint, "timeout", None, "timed out") from None
        except aiohttp.ClientError as exc:
            raise self._fail(endpoint, "connection", None, type(exc).__name__) from None
        elapsed_ms = round((time.monotonic() - started) * 1000, 1)
        if not 200 <= status < 300:
            raise self._fail(endpoint, "http", status, f"HTTP {status}")
        log.debug(
            "spectra %s: HTTP %d",
            endpoint.name,
            status,
            extra={
                "action": "spectra.call",
                "endpoint": endpoint.name,
                "status": status,
                "hotel_code": self.hotel_code,
                "duration_ms": elapsed_ms,
            },
        )
        if not expect_body and not content.strip():
            return None
        try:
            return msgspec.json.decode(content)
        except msgspec.DecodeError:
            if not expect_body:
                return None  # a write succeeded; what it said besides is not needed
            raise self._fail(endpoint, "decode", status, "response is not JSON") from None
