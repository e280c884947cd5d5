"""How do we talk to one apaleo account, and what can go wrong when we do?

One `ApaleoClient` per connection, sharing the service's aiohttp session. It gets an access
token by the OAuth2 client credentials grant (the client id and secret in HTTP Basic, the grant
in a form body), keeps it until a minute before it expires, and gets a new one when the API
answers 401 (once per call). Every call returns a decoded payload or raises `ApaleoError` with
a kind the worker can act on. Logs name the endpoint, never a URL, a body or a token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import aiohttp
import msgspec
import yarl

from inlet_bridge.adapters.apaleo import mapping
from inlet_bridge.adapters.apaleo.mapping import (
    ApaleoReservation,
    Endpoint,
    PatchOperation,
    ReservationList,
    TokenAnswer,
)
from inlet_bridge.adapters.spectra.client import basic_authorization
from inlet_bridge.clock import Clock

log = logging.getLogger(__name__)

T = TypeVar("T")
ErrorKind = Literal["timeout", "http", "decode", "connection", "auth"]
# A token is renewed this long before apaleo says it expires (clocks differ, calls take time).
TOKEN_MARGIN = timedelta(seconds=60)
PAGE_SIZE = 100
MAX_PAGES = 100


class ApaleoError(Exception):
    """An apaleo call failed: `kind` says how, `status` is the HTTP status when there was one."""

    def __init__(self, kind: ErrorKind, status: int | None, message: str) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.status = status
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.kind == "http" and self.status == 404

    def __repr__(self) -> str:
        return f"ApaleoError(kind={self.kind!r}, status={self.status!r}, message={self.message!r})"


class _Token(msgspec.Struct, frozen=True, kw_only=True):
    value: str
    renew_at: datetime


class ApaleoClient:
    """The apaleo endpoints of one connection, as typed methods."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_url: str,
        identity_url: str,
        client_id: str,
        client_secret: str,
        clock: Clock,
        timeout_seconds: float = 15,
    ) -> None:
        self._session = session
        self._api = api_url.rstrip("/")
        self._identity = identity_url.rstrip("/")
        self._basic = basic_authorization(quote(client_id, safe=""), quote(client_secret, safe=""))
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()
        self.tokens_fetched = 0  # how many tokens this client asked for (tests and logs)

    def __repr__(self) -> str:
        return f"ApaleoClient(api_url={self._api!r})"

    # --- the reservation API ---

    async def reservation(self, reservation_id: str) -> ApaleoReservation:
        """The reservation's current state; ApaleoError with `not_found` when apaleo has none."""
        raw = await self._call(mapping.RESERVATION, {"id": reservation_id})
        if raw is None:
            raise self._fail(mapping.RESERVATION, "decode", 204, "no reservation in the answer")
        return self._decode(mapping.RESERVATION, raw, ApaleoReservation)

    async def reservations_overlapping(
        self, apaleo_property_id: str, start: datetime, end: datetime
    ) -> list[ApaleoReservation]:
        """Every reservation of the property whose stay overlaps [start, end), page by page."""
        found: list[ApaleoReservation] = []
        for page in range(1, MAX_PAGES + 1):
            params = {
                mapping.PARAM_PROPERTY_IDS: apaleo_property_id,
                mapping.PARAM_DATE_FILTER: mapping.DATE_FILTER_STAY,
                mapping.PARAM_FROM: start.isoformat(timespec="seconds"),
                mapping.PARAM_TO: end.isoformat(timespec="seconds"),
                mapping.PARAM_PAGE_NUMBER: str(page),
                mapping.PARAM_PAGE_SIZE: str(PAGE_SIZE),
            }
            raw = await self._call(mapping.RESERVATIONS, {}, params=params)
            if raw is None:  # 204: no (more) reservations
                return found
            batch = self._decode(mapping.RESERVATIONS, raw, ReservationList).reservations
            found.extend(batch)
            if len(batch) < PAGE_SIZE:
                return found
        log.warning(
            "apaleo reservations: stopped after MAX_PAGES",
            extra={"action": "apaleo.call", "endpoint": mapping.RESERVATIONS.name},
        )
        return found

    async def patch_reservation(
        self, reservation_id: str, operations: list[PatchOperation]
    ) -> None:
        body = msgspec.json.encode(operations)
        await self._call(mapping.PATCH_RESERVATION, {"id": reservation_id}, body=body)

    # --- the token ---

    async def _access_token(self, *, renew: bool = False) -> str:
        async with self._token_lock:
            now = self._clock.now()
            if self._token is not None and not renew and now < self._token.renew_at:
                return self._token.value
            answer = await self._request_token()
            lifetime = timedelta(seconds=max(0.0, answer.expires_in)) - TOKEN_MARGIN
            self._token = _Token(value=answer.access_token, renew_at=now + lifetime)
            self.tokens_fetched += 1
            return answer.access_token

    async def _request_token(self) -> TokenAnswer:
        endpoint = mapping.TOKEN
        headers = {"Authorization": self._basic, "Accept": "application/json"}
        status, content = await self._exchange(
            endpoint,
            yarl.URL(self._identity + endpoint.path),
            headers=headers,
            data={"grant_type": "client_credentials"},
        )
        if status in (400, 401, 403):
            raise self._fail(endpoint, "auth", status, f"token refused: HTTP {status}")
        if not 200 <= status < 300:
            raise self._fail(endpoint, "http", status, f"HTTP {status}")
        try:
            return msgspec.json.decode(content, type=TokenAnswer)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise self._fail(endpoint, "decode", status, "token answer is not a token") from None

    # --- plumbing ---

    def _decode(self, endpoint: Endpoint, raw: bytes, type_: type[T]) -> T:
        try:
            result: T = msgspec.json.decode(raw, type=type_)
            return result
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise self._fail(endpoint, "decode", 200, f"unexpected shape: {exc}") from None

    def _fail(
        self, endpoint: Endpoint, kind: ErrorKind, status: int | None, problem: str
    ) -> ApaleoError:
        log.warning(
            "apaleo %s failed: %s",
            endpoint.name,
            problem,
            extra={"action": "apaleo.call", "endpoint": endpoint.name, "outcome": kind},
        )
        return ApaleoError(kind, status, f"{endpoint.name}: {problem}")

    async def _exchange(
        self,
        endpoint: Endpoint,
        url: yarl.URL,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None = None,
        data: Any = None,
    ) -> tuple[int, bytes]:
        try:
            async with self._session.request(
                endpoint.method,
                url,
                params=params,
                data=data,
                headers=dict(headers),
                timeout=self._timeout,
            ) as response:
                return response.status, await response.read()
        except TimeoutError:
            raise self._fail(endpoint, "timeout", None, "timed out") from None
        except aiohttp.ClientError as exc:
            raise self._fail(endpoint, "connection", None, type(exc).__name__) from None

    async def _call(
        self,
        endpoint: Endpoint,
        path_args: Mapping[str, str],
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> bytes | None:
        """One API exchange with the token (renewed once on a 401); the body, None for 204."""
        escaped = {key: quote(value, safe="") for key, value in path_args.items()}
        url = yarl.URL(self._api + endpoint.path.format(**escaped), encoded=True)
        renew = False
        for _ in range(2):
            headers = {
                "Authorization": f"Bearer {await self._access_token(renew=renew)}",
                "Accept": "application/json",
            }
            if body is not None:
                headers["Content-Type"] = "application/json"
            status, content = await self._exchange(
                endpoint, url, headers=headers, params=params, data=body
            )
            if status != 401:
                break
            renew = True  # the token expired early or was revoked: one new one, then give up
        if status == 401:
            raise self._fail(endpoint, "auth", status, "HTTP 401 with a new token")
        if not 200 <= status < 300:
            raise self._fail(endpoint, "http", status, f"HTTP {status}")
        log.debug(
            "apaleo %s: HTTP %d",
            endpoint.name,
            status,
            extra={"action": "apaleo.call", "endpoint": endpoint.name, "status": status},
        )
        return None if status == 204 or not content.strip() else content
