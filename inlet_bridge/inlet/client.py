"""How does the service talk to Inlet, and what does it make of each answer?

One method per Inlet call. Transport problems never raise: a timeout or a dropped connection
is a temporary InletResult like a 503, so the call worker has a single thing to act on.
Logs carry the grant key, status, outcome and Inlet's message, never names, emails, phone
numbers, codes or links (docs/architecture.md rule 10).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime

import aiohttp
import msgspec

from inlet_bridge.inlet.protocol import (
    CallKind,
    GrantRequest,
    InletPaths,
    InletResult,
    RevokeRequest,
    UpdateRequest,
    classify,
    parse_retry_after,
)

_EMAIL = re.compile(r"[^\s@\"'<>]+@[^\s@\"'<>]+")
_LONG_DIGITS = re.compile(r"\+?\d[\d \-]{5,}\d")  # phone-like runs, even ones we did not send
_HIDDEN = "***"


def redact_message(message: str, known: Iterable[str | None]) -> str:
    """Inlet's message may echo what we sent (e.g. "invalid email x@y"); mask it before logging."""
    for value in sorted((v for v in known if v and len(v) >= 3), key=len, reverse=True):
        message = message.replace(value, _HIDDEN)
    message = _EMAIL.sub(_HIDDEN, message)
    return _LONG_DIGITS.sub(_HIDDEN, message)


def _personal_values(request: GrantRequest | UpdateRequest | None) -> list[str | None]:
    if request is None:
        return []
    phone = (
        f"+{request.country_code}{request.phone_number}"
        if request.country_code and request.phone_number
        else None
    )
    return [request.guest_name, request.email, request.phone_number, phone]


class InletClient:
    """Calls Inlet over one shared aiohttp session; the API key is per property, per call."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        timeout_seconds: float,
        paths: InletPaths = InletPaths(),  # noqa: B008 - frozen Struct, safe to share
        logger: logging.Logger | None = None,
    ) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._timeout_seconds = timeout_seconds
        self._paths = paths
        self._log = logger or logging.getLogger(__name__)

    async def grant_access(
        self, api_key: str, request: GrantRequest, *, base_url: str | None = None
    ) -> InletResult:
        """Create access; safe to repeat: a repeated externalId gets the same grant back.

        `base_url`: the property's Inlet environment, when it is not the client's default."""
        return await self._call(
            "grant", api_key, request, request.external_id, request, base_url=base_url
        )

    async def update_access(
        self, api_key: str, request: UpdateRequest, *, base_url: str | None = None
    ) -> InletResult:
        """Change an existing grant; the result may carry a new code and link."""
        return await self._call(
            "update", api_key, request, request.external_id, request, base_url=base_url
        )

    async def revoke_access(
        self, api_key: str, reference_id: str, *, base_url: str | None = None
    ) -> InletResult:
        """Remove a grant; "already gone" (404) is a success."""
        body = RevokeRequest(reference_id=reference_id)
        return await self._call(
            "revoke", api_key, body, None, None, reference_id=reference_id, base_url=base_url
        )

    async def _call(
        self,
        call: CallKind,
        api_key: str,
        body: msgspec.Struct,
        external_id: str | None,
        request: GrantRequest | UpdateRequest | None,
        *,
        reference_id: str | None = None,
        base_url: str | None = None,
    ) -> InletResult:
        base = base_url.rstrip("/") if base_url else self._base_url
        url = base + self._paths.for_call(call)
        headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        started = time.monotonic()
        try:
            async with self._session.post(
                url,
                data=msgspec.json.encode(body),
                headers=headers,
                timeout=self._timeout,
                # A redirect means a wrong base URL; following it would turn the POST into a GET.
                allow_redirects=False,
            ) as response:
                # Read the whole body: Inlet's message decides the outcome, even on a 200.
                payload = await response.read()
                status = response.status
                retry_after = parse_retry_after(response.headers.get("Retry-After"), _utcnow())
        except TimeoutError:
            result = classify(
                None, None, call=call, error=f"timeout after {self._timeout_seconds:g} s"
            )
        except aiohttp.ClientError as exc:
            result = classify(None, None, call=call, error=f"connection error: {_describe(exc)}")
        else:
            result = classify(status, payload, call=call, retry_after_seconds=retry_after)
        if isinstance(request, UpdateRequest):
            reference_id = request.reference_id
        self._log_result(call, result, external_id, reference_id, request, started)
        return result

    def _log_result(
        self,
        call: CallKind,
        result: InletResult,
        external_id: str | None,
        reference_id: str | None,
        request: GrantRequest | UpdateRequest | None,
        started: float,
    ) -> None:
        known = [*_personal_values(request), result.code, result.code_formatted, result.link]
        level = logging.INFO if result.outcome == "success" else logging.WARNING
        self._log.log(
            level,
            "inlet %s: %s (HTTP %s)",
            call,
            result.outcome,
            result.http_status,
            extra={
                "action": "inlet.call",
                "operation": call,
                "grant_key": external_id,  # Inlet's externalId
                "reference_id": reference_id,
                "http_status": result.http_status,
                "outcome": result.outcome,
                # "message" is reserved by logging.LogRecord.
                "inlet_message": redact_message(result.message, known),
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
            },
        )


def _describe(exc: aiohttp.ClientError) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _utcnow() -> datetime:
    return datetime.now(UTC)
