"""Is a decoded booking event fit to store and to pass on to Inlet, and in what clean form?

Inlet's partner guide (section 3.3) makes format validation of emails and phones (with the
country code) and sanitising of free text mandatory; docs/contract.md section 1 adds ID, date and
length rules. Every rule runs so a sender sees all problems at once; a valid event comes back
as a normalized copy (emails normalized, phones in E.164, names cleaned), and nothing else is
stored.

An email or phone that fails its check is not a reason to refuse the event: Inlet's
certification texts say missing or invalid contact details never block access. Such a value is
dropped from the normalized copy (so it never reaches Inlet) and reported as a warning; the
other rules are problems that refuse the event. Messages name the problem but never repeat the
rejected personal value, because problems and warnings end up in responses, the timeline and
logs.
"""

from __future__ import annotations

import functools
import hashlib
import html
import re
import unicodedata
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final, NamedTuple, TypeVar

import msgspec
import phonenumbers
from email_validator import EmailNotValidError, validate_email

from inlet_bridge.domain.booking import Booking, BookingEvent, Contact, Problem, Stay
from inlet_bridge.domain.decoding import OFFSET_EXAMPLE, problems_under, truncate_problems

MAX_ID_LENGTH: Final = 128  # as booking.Id
MAX_TEXT_LENGTH: Final = 200  # as booking.Name and Booking.company
MAX_STAY: Final = timedelta(days=366)

# ':' is left out on purpose: it separates the parts of our grant keys (source:booking:stay).
ID_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@/+#-]*")
ID_RULE: Final = "must start with a letter or digit and contain only letters, digits and ._@/+#-"

PHONE_EXAMPLE: Final = "e.g. +4791234567"
EMPTY_CONTACT: Final = "must not be empty; leave it out or send null"
# Blocks whose content is code, not text: dropped whole, not just their tags.
_CODE_BLOCK = re.compile(r"<(script|style)\b[^>]*>.*?(?:</\1\s*>|$)", re.IGNORECASE | re.DOTALL)
_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
_TAG = re.compile(r"</?[A-Za-z!?][^<>]*>")
# Zero-width joiners are format characters too, but scripts and emoji need them.
_KEPT_FORMAT_CHARS: Final = frozenset("\u200c\u200d")


class ValidEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event fit to store: its normalized copy and the contact details dropped from it.

    `dropped_digest` fingerprints the dropped values as they were sent (empty when nothing was
    dropped), so a repeat with the same bad phone is told apart from one with another bad phone;
    the values themselves are not kept.
    """

    event: BookingEvent
    warnings: tuple[Problem, ...] = ()
    dropped_digest: bytes = b""


class InvalidEvent(msgspec.Struct, frozen=True, kw_only=True):
    """Why an event (or a batch) is refused, and what would have been dropped had it not been."""

    problems: tuple[Problem, ...]
    warnings: tuple[Problem, ...] = ()


class _Findings:
    """What the rules found: problems refuse the event, warnings drop a contact detail."""

    __slots__ = ("dropped", "problems", "warnings")

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.dropped: list[tuple[str, str]] = []

    def drop(self, path: str, value: str, message: str) -> None:
        self.warnings.append(Problem(path=path, message=message))
        self.dropped.append((path, value))


class ReceivedAt(msgspec.Struct, frozen=True, kw_only=True):
    """When an event was received, and how far ahead of that its `occurred_at` may be."""

    at: datetime
    max_skew: timedelta


def validate_event(
    event: BookingEvent, received: ReceivedAt | None = None
) -> ValidEvent | InvalidEvent:
    """A normalized copy of `event` with its warnings, or every semantic problem with it.

    With `received`, an `occurred_at` too far ahead of the receipt is a problem: `occurred_at`
    orders a booking's events, and a PMS clock running fast must not outrank a later change.
    """
    found = _Findings()
    out = found.problems
    _check_id(event.event_id, "event_id", out)
    _check_id(event.source, "source", out)
    if _check_aware(event.occurred_at, "occurred_at", out) and received is not None:
        _check_not_ahead(event.occurred_at, received, "occurred_at", out)
    booking = _validate_booking(event.booking, "booking", found)
    warnings = tuple(truncate_problems(found.warnings, what="warnings"))
    if found.problems:
        return InvalidEvent(problems=tuple(truncate_problems(found.problems)), warnings=warnings)
    return ValidEvent(
        event=_domain(event, BookingEvent, booking=booking),
        warnings=warnings,
        dropped_digest=hashlib.sha256(msgspec.json.encode(found.dropped)).digest()
        if found.dropped
        else b"",
    )


def validate_batch(
    events: Sequence[BookingEvent], received: ReceivedAt | None = None
) -> tuple[ValidEvent, ...] | InvalidEvent:
    """All `events` validated, or every problem (and warning) under `events[i]`; all or nothing.

    The warnings of a valid event stay relative to that event: each answer carries its own.
    """
    return combine_batch([validate_event(event, received) for event in events])


def combine_batch(
    results: Sequence[ValidEvent | InvalidEvent],
) -> tuple[ValidEvent, ...] | InvalidEvent:
    """A batch's verdict from its events' own, in order (see `validate_batch`)."""
    valid: list[ValidEvent] = []
    problems: list[Problem] = []
    warnings: list[Problem] = []
    for index, result in enumerate(results):
        warnings.extend(problems_under(f"events[{index}]", result.warnings))
        if isinstance(result, ValidEvent):
            valid.append(result)
        else:
            problems.extend(problems_under(f"events[{index}]", result.problems))
    if problems:
        return InvalidEvent(
            problems=tuple(truncate_problems(problems)),
            warnings=tuple(truncate_problems(warnings, what="warnings")),
        )
    return tuple(valid)


_S = TypeVar("_S", Booking, BookingEvent, Stay)


def _domain(value: Any, cls: type[_S], **changes: Any) -> _S:
    """`value` as the domain's own Struct, with `changes`: what comes in on the wire is a
    stricter subclass, and what is stored is the domain's (so it compares as equal)."""
    fields = {name: getattr(value, name) for name in cls.__struct_fields__}
    fields.update(changes)
    return cls(**fields)


def clean_text(value: str) -> str:
    """`value` without markup, control characters or runs of whitespace (Inlet guide 3.3).

    Entities are decoded first so an escaped tag (`&lt;script&gt;`) is removed like a real one.
    """
    text = html.unescape(value)
    text = _CODE_BLOCK.sub(" ", text)
    text = _COMMENT.sub(" ", text)
    text = _TAG.sub(" ", text)
    # A lone angle bracket is never part of a name and could start markup downstream.
    text = text.replace("<", " ").replace(">", " ")
    kept: list[str] = []
    for char in unicodedata.normalize("NFC", text):
        if char.isspace():
            kept.append(" ")
        elif unicodedata.category(char) in ("Cc", "Cf") and char not in _KEPT_FORMAT_CHARS:
            continue  # includes the bidi overrides that make a name display as another
        else:
            kept.append(char)
    return " ".join("".join(kept).split())


def _validate_booking(booking: Booking, path: str, found: _Findings) -> Booking:
    out = found.problems
    _check_id(booking.booking_id, f"{path}.booking_id", out)
    _check_id(booking.property_id, f"{path}.property_id", out)
    organizer: Contact | None = None
    if booking.organizer is not None:
        organizer = _validate_contact(booking.organizer, f"{path}.organizer", found)
    elif booking.communication == "organizer":
        out.append(
            Problem(path=f"{path}.organizer", message="is required when communication is organizer")
        )
    company: str | None = None
    if booking.company is not None:
        company = _clean_required_text(booking.company, f"{path}.company", out)
    stays: list[Stay] = []
    first_index: dict[str, int] = {}
    for index, stay in enumerate(booking.stays):
        stay_path = f"{path}.stays[{index}]"
        if stay.stay_id in first_index:
            out.append(
                Problem(
                    path=f"{stay_path}.stay_id",
                    message=f"repeats the stay_id of {path}.stays[{first_index[stay.stay_id]}]",
                )
            )
        else:
            first_index[stay.stay_id] = index
        stays.append(_validate_stay(stay, stay_path, found))
    return _domain(booking, Booking, organizer=organizer, company=company, stays=tuple(stays))


def _validate_stay(stay: Stay, path: str, found: _Findings) -> Stay:
    out = found.problems
    _check_id(stay.stay_id, f"{path}.stay_id", out)
    if stay.resource_id is not None:
        _check_id(stay.resource_id, f"{path}.resource_id", out)
    arrival_aware = _check_aware(stay.arrival, f"{path}.arrival", out)
    departure_aware = _check_aware(stay.departure, f"{path}.departure", out)
    # Comparing a naive with an aware datetime raises, so only compare two aware ones.
    if arrival_aware and departure_aware:
        if stay.departure <= stay.arrival:
            out.append(Problem(path=f"{path}.departure", message="must be after arrival"))
        elif stay.departure - stay.arrival > MAX_STAY:
            out.append(
                Problem(path=f"{path}.departure", message="makes the stay longer than 366 days")
            )
    guests = tuple(
        _validate_contact(guest, f"{path}.guests[{index}]", found)
        for index, guest in enumerate(stay.guests)
    )
    return _domain(stay, Stay, guests=guests)


def _validate_contact(contact: Contact, path: str, found: _Findings) -> Contact:
    """The contact cleaned; an email or phone that fails its check is dropped with a warning."""
    verdict = _contact_verdict(contact.name, contact.email, contact.phone)
    if verdict.name_problem is not None:
        found.problems.append(Problem(path=f"{path}.name", message=verdict.name_problem))
    if verdict.email_warning is not None:
        assert contact.email is not None  # a warning is only given for a value sent
        found.drop(f"{path}.email", contact.email, verdict.email_warning)
    if verdict.phone_warning is not None:
        assert contact.phone is not None
        found.drop(f"{path}.phone", contact.phone, verdict.phone_warning)
    return verdict.contact


class _ContactVerdict(NamedTuple):
    """What the rules make of one contact, without its path: the cleaned contact (an invalid
    email or phone left out) and why the name is refused or a detail dropped, if it is."""

    contact: Contact
    name_problem: str | None
    email_warning: str | None
    phone_warning: str | None


# A PMS sends the whole booking on every change, so the same guests are checked again and
# again: a contact's verdict is a pure function of its three values, memoized (bounded) to keep
# ingest's CPU per event down. The key is the values themselves, so a verdict is only ever
# reused for the very same name, email and phone.
@functools.lru_cache(maxsize=8192)
def _contact_verdict(name: str, email: str | None, phone: str | None) -> _ContactVerdict:
    problems: list[Problem] = []
    cleaned_name = _clean_required_text(name, "name", problems)
    normalized_email = normalized_phone = email_warning = phone_warning = None
    if email is not None:
        normalized_email, email_warning = _normalize_email(email)
    if phone is not None:
        normalized_phone, phone_warning = _normalize_phone(phone)
    return _ContactVerdict(
        contact=Contact(name=cleaned_name, email=normalized_email, phone=normalized_phone),
        name_problem=problems[0].message if problems else None,
        email_warning=email_warning,
        phone_warning=phone_warning,
    )


def _clean_required_text(value: str, path: str, out: list[Problem]) -> str:
    cleaned = clean_text(value)
    if not cleaned.strip("".join(_KEPT_FORMAT_CHARS)):
        out.append(
            Problem(path=path, message="is empty once markup and control characters are removed")
        )
    elif len(cleaned) > MAX_TEXT_LENGTH:
        out.append(Problem(path=path, message=f"must be at most {MAX_TEXT_LENGTH} characters"))
    return cleaned


def _normalize_email(value: str) -> tuple[str | None, str | None]:
    """The normal form of an email address, or None and why it is not valid."""
    if not value.strip():
        return None, EMPTY_CONTACT
    normalized = _email_normal_form(value.strip())
    if normalized is None:
        # The library's explanation quotes parts of the address, so it is not passed on.
        return None, "is not a valid email address"
    return normalized, None


# A PMS sends the whole booking on every change, so the same guests are checked again and
# again; these pure look-ups are memoized (bounded) to keep ingest's CPU per event down.
@functools.lru_cache(maxsize=8192)
def _email_normal_form(value: str) -> str | None:
    try:
        # Format only: the guide makes MX checks optional, and this code must not do I/O.
        normalized: str = validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        return None
    return normalized


@functools.lru_cache(maxsize=8192)
def _phone_e164(text: str) -> str | None:
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    e164: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164


def _normalize_phone(value: str) -> tuple[str | None, str | None]:
    """A phone number in E.164, or None and why it is not valid."""
    text = value.strip()
    if not text:
        return None, EMPTY_CONTACT
    if not text.startswith("+"):
        # Without '+' the country is a guess; Inlet needs the country code (guide 3.3).
        return None, f"must include the country code, {PHONE_EXAMPLE}"
    e164 = _phone_e164(text)
    if e164 is None:
        return None, f"is not a valid phone number, {PHONE_EXAMPLE}"
    return e164, None


def _check_id(value: str, path: str, out: list[Problem]) -> None:
    if not value:
        out.append(Problem(path=path, message="must not be empty"))
    elif len(value) > MAX_ID_LENGTH:
        out.append(Problem(path=path, message=f"must be at most {MAX_ID_LENGTH} characters"))
    elif ":" in value:
        out.append(
            Problem(path=path, message="must not contain ':' (it separates grant key parts)")
        )
    elif not ID_PATTERN.fullmatch(value):
        out.append(Problem(path=path, message=ID_RULE))


def _check_aware(value: datetime, path: str, out: list[Problem]) -> bool:
    """Whether `value` has an offset; decoding ensures it, events built in code may not."""
    if value.tzinfo is None or value.utcoffset() is None:
        out.append(Problem(path=path, message=f"must include a UTC offset, {OFFSET_EXAMPLE}"))
        return False
    return True


def _check_not_ahead(value: datetime, received: ReceivedAt, path: str, out: list[Problem]) -> None:
    if value - received.at > received.max_skew:
        seconds = int(received.max_skew.total_seconds())
        out.append(
            Problem(
                path=path,
                message=f"is more than {seconds} s ahead of the time the event was received"
                f" ({received.at.isoformat()}); send the time of the change in the PMS, with"
                " its offset",
            )
        )
