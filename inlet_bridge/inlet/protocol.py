"""What exactly goes over the wire to Inlet, and what does each answer mean?

This is the one module that knows Inlet's paths, field names and status rules
(docs/contract.md, section 2). Much of it is assumed rather than published, so every name
lives here once: a correction is one edit, and the client and the sandbox follow it together.
"""

from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Annotated, Literal

import msgspec
import phonenumbers

from inlet_bridge.domain.vocab import CallOperation, Outcome

AccessOperation = Literal["code", "unlock"]
CallKind = CallOperation  # Inlet's three calls are the service's call operations
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]

MESSAGE_LIMIT = 500  # Inlet's messages are kept for operators; bound them for storage and logs
UNREADABLE = "unreadable response"
_HIDDEN = "'***'"


class InletPaths(msgspec.Struct, frozen=True, kw_only=True):
    """Where each call goes, relative to the environment's base URL (assumed, configurable)."""

    grant: str = "/GrantAccess"
    update: str = "/UpdateAccess"
    revoke: str = "/RevokeAccess"

    def for_call(self, call: CallKind) -> str:
        path: str = getattr(self, call)
        return path


def _redacted_repr(obj: msgspec.Struct, hidden: frozenset[str]) -> str:
    """A repr that never prints personal data or codes, should a Struct end up in a log."""
    parts = []
    for name in obj.__struct_fields__:
        value = getattr(obj, name)
        parts.append(f"{name}={_HIDDEN if name in hidden and value is not None else repr(value)}")
    return f"{type(obj).__name__}({', '.join(parts)})"


_PERSONAL = frozenset({"guest_name", "email", "phone_number", "country_code"})


class _AccessFields(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The fields GrantAccess and UpdateAccess share.

    omit_defaults: a contact field left as None is not sent at all, which is how Inlet is told
    not to message anyone (docs/contract.md, A5: leave out email/phone to suppress messages).
    """

    operation: AccessOperation
    partner: str
    booking_id: str = msgspec.field(name="bookingId")
    external_id: str = msgspec.field(name="externalId")
    locks: tuple[str, ...]
    start: AwareDatetime
    end: AwareDatetime
    guest_name: str | None = msgspec.field(default=None, name="guestName")
    email: str | None = None
    phone_number: str | None = msgspec.field(default=None, name="phoneNumber")
    country_code: str | None = msgspec.field(default=None, name="countryCode")

    def __repr__(self) -> str:
        return _redacted_repr(self, _PERSONAL)


class GrantRequest(_AccessFields, frozen=True, kw_only=True, omit_defaults=True):
    """POST /GrantAccess: create access; a repeated externalId returns the same grant."""


class UpdateRequest(_AccessFields, frozen=True, kw_only=True, omit_defaults=True):
    """POST /UpdateAccess: replace an existing grant's locks, times and contact.

    `regenerate` asks for a new code and link (a re-sync). It is omitted when false, so a
    plain update carries only fields Inlet is known to accept.
    """

    reference_id: str = msgspec.field(name="ReferenceId")
    regenerate: bool = False


class RevokeRequest(msgspec.Struct, frozen=True, kw_only=True):
    """POST /RevokeAccess."""

    reference_id: str = msgspec.field(name="ReferenceId")


def update_from_grant(
    reference_id: str, request: GrantRequest, *, regenerate: bool = False
) -> UpdateRequest:
    """The update that makes an existing grant match `request`."""
    fields = msgspec.structs.asdict(request)
    return UpdateRequest(reference_id=reference_id, regenerate=regenerate, **fields)


class InletResponse(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Any answer from Inlet. Every field is optional and unknown fields are ignored, because a
    failure may carry only `message`, and Inlet may add fields without telling us."""

    success: bool | None = None
    message: str | None = None
    # Typed loosely: whether Inlet sends these as strings or numbers is not published.
    reference_id: str | int | None = msgspec.field(default=None, name="ReferenceId")
    code: str | int | None = None
    code_formatted: str | None = msgspec.field(default=None, name="codeFormatted")
    link: str | None = None
    retryable: bool | None = None

    def __repr__(self) -> str:
        return _redacted_repr(self, frozenset({"code", "code_formatted", "link"}))


class InletResult(msgspec.Struct, frozen=True, kw_only=True):
    """What one call achieved, in the terms the call worker acts on."""

    outcome: Outcome
    http_status: int | None
    message: str
    reference_id: str | None = None
    code: str | None = None
    code_formatted: str | None = None
    link: str | None = None
    retry_after_seconds: float | None = None

    def __repr__(self) -> str:
        return _redacted_repr(self, frozenset({"code", "code_formatted", "link"}))


def split_phone(e164: str) -> tuple[str, str]:
    """ "+4791234567" -> ("91234567", "47"): Inlet takes the national number and the country
    code as separate fields. Raises ValueError for anything that is not an E.164 number."""
    if not e164.startswith("+"):
        raise ValueError("phone number must be in E.164 form with a country code, e.g. +47...")
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {exc}") from None
    if not phonenumbers.is_possible_number(number):
        raise ValueError("not a possible phone number for its country code")
    # national_significant_number keeps meaningful leading zeros (Italy), unlike national_number.
    return phonenumbers.national_significant_number(number), str(number.country_code)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if absent
    or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def _clip(message: str) -> str:
    return message if len(message) <= MESSAGE_LIMIT else message[: MESSAGE_LIMIT - 1] + "…"


def _outcome_by_status(status: int) -> Outcome:
    """Used only when the body does not say `retryable`."""
    if status in (408, 429) or status >= 500:
        return "temporary"
    # Other 4xx: the request itself is wrong. 1xx/3xx: a misconfigured base URL or proxy;
    # retrying will not fix either, an operator must.
    return "permanent"


def _decode(body: bytes | None) -> InletResponse | None:
    if not body:
        return None
    try:
        return msgspec.json.decode(body, type=InletResponse)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _joined(what: str, inlet_message: str) -> str:
    return f"{what}: {inlet_message}" if inlet_message else what


def _text(value: str | int | None) -> str | None:
    return None if value is None else str(value)


def classify(
    status: int | None,
    body: bytes | None,
    *,
    call: CallKind = "grant",
    retry_after_seconds: float | None = None,
    error: str | None = None,
) -> InletResult:
    """Turn a status and body into success, temporary (retry) or permanent (escalate).

    `status` None means no response at all (timeout or connection error, described by `error`).
    Pure: the caller supplies everything, including Retry-After already turned into seconds.
    """
    if status is None:
        return InletResult(
            outcome="temporary",
            http_status=None,
            message=_clip(error or "no response from Inlet"),
            retry_after_seconds=retry_after_seconds,
        )
    response = _decode(body)
    is_2xx = 200 <= status < 300
    inlet_message = (response.message or "") if response is not None else ""

    if call == "revoke" and status == 404:
        # The grant is already gone: the goal of a revoke is reached.
        message = _joined("already gone", inlet_message)
        return InletResult(outcome="success", http_status=status, message=_clip(message))

    if response is None:
        if is_2xx:
            # The call may well have worked; retrying is safe because grants are idempotent
            # by externalId, and updates and revokes converge.
            outcome: Outcome = "temporary"
            message = UNREADABLE
        else:
            outcome = _outcome_by_status(status)
            message = f"HTTP {status} with an {UNREADABLE}"
        return InletResult(
            outcome=outcome,
            http_status=status,
            message=message,
            retry_after_seconds=retry_after_seconds,
        )

    if is_2xx and response.success is True:
        reference_id = _text(response.reference_id)
        if call == "grant" and not reference_id:
            # Without a reference the grant can never be updated or revoked; ask again.
            return InletResult(
                outcome="temporary",
                http_status=status,
                message=_clip(_joined("success without ReferenceId", inlet_message)),
                retry_after_seconds=retry_after_seconds,
            )
        return InletResult(
            outcome="success",
            http_status=status,
            message=_clip(inlet_message or "OK"),
            reference_id=reference_id,
            code=_text(response.code),
            code_formatted=response.code_formatted,
            link=response.link,
        )

    if response.retryable is not None:
        outcome = "temporary" if response.retryable else "permanent"
    elif is_2xx:
        # A 2xx with success:false is Inlet refusing what it understood (like a 4xx);
        # a 2xx without any success flag is not an answer we can read.
        outcome = "permanent" if response.success is False else "temporary"
        if response.success is None and not inlet_message:
            inlet_message = UNREADABLE
    else:
        outcome = _outcome_by_status(status)
    return InletResult(
        outcome=outcome,
        http_status=status,
        message=_clip(inlet_message or f"HTTP {status}"),
        retry_after_seconds=retry_after_seconds,
    )
