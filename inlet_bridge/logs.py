"""How does the service write its logs? One JSON object per line, personal data masked.

Every line carries a stable `action` (e.g. `ingest.accepted`, `inlet.call`) and the keys a
partner needs to troubleshoot a booking (source, booking_id, event_id, call_id, grant_key).
Fields that may hold personal data are masked here, as a last line of defence: callers are
expected never to pass names, emails, phones, codes or links in the first place.

A masked value is a keyed tag, HMAC-SHA256 under the process's mask key (`LOG_MASK_KEY`):
equal values give equal tags under one key, so one guest can be followed through the lines
(and between replicas that share the key), but without the key a tag cannot be turned back
into a 4-digit door code or an 8-digit phone number by trying them all.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from inlet_bridge.domain.secret import Secret

# Attributes every LogRecord has; anything else came from `extra=` and is emitted as a field.
_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}
SENSITIVE_FIELDS = frozenset(
    {"name", "guest_name", "email", "phone", "phone_number", "code", "code_formatted", "link"}
)
# The keys a partner troubleshoots with: identifiers, never personal data, logged as they are
# (a booking id of eight digits is not a phone number, and must stay greppable).
KEY_FIELDS = frozenset(
    {
        "source",
        "booking_id",
        "event_id",
        "stay_id",
        "grant_key",
        "call_id",
        "request_id",
        "property_id",
        "resource_id",
        "reference_id",
        "escalation_id",
        "connection",
        "operations",  # ["grant:<grant_key>", ...]
        "issues",  # ["<kind>:<stay_id>", ...]
    }
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"\+?\d[\d \-]{6,}\d")
# A date or timestamp looks like a phone number to _PHONE ("2026-11-25"); it is kept as it is.
_TIMESTAMP = re.compile(
    r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?(?!\d)"
)
_FREE_TEXT = re.compile(
    rf"(?P<timestamp>{_TIMESTAMP.pattern})|(?P<personal>{_EMAIL.pattern}|{_PHONE.pattern})"
)


# How many constant messages the formatter keeps scrubbed (the service has a few hundred).
_MAX_MESSAGES = 4096
# Hex digits of the tag kept: 40 bits, so the guests of one hotel do not share tags.
TAG_HEX_DIGITS = 10


class Masker:
    """Keyed, non-reversible tags for personal values: equal values give equal tags."""

    __slots__ = ("_mac",)

    def __init__(self, key: Secret) -> None:
        self._mac = hmac.new(key.reveal().encode(), digestmod=hashlib.sha256)

    def mask(self, value: object) -> str:
        mac = self._mac.copy()
        mac.update(str(value).encode())
        return f"<masked:{mac.hexdigest()[:TAG_HEX_DIGITS]}>"

    def scrub(self, text: str) -> str:
        """Mask email addresses and phone-like digit runs in free text (e.g. an upstream
        message); dates and timestamps are left alone."""
        return _FREE_TEXT.sub(lambda m: m.group() if m["timestamp"] else self.mask(m.group()), text)

    def clean(self, key: str, value: Any) -> Any:
        """A logged field as it may be written: personal fields masked, identifiers kept, free
        text scrubbed, at any depth (lists, mappings, Structs)."""
        if value is None:
            return None
        if key in SENSITIVE_FIELDS:
            return self.mask(value)
        if key in KEY_FIELDS or isinstance(value, bool | int | float):
            return value
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, Mapping):
            return {str(k): self.clean(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.clean(key, item) for item in value]
        try:
            builtins = msgspec.to_builtins(value, enc_hook=str)
        except Exception:  # an object msgspec cannot turn into data: its text, scrubbed
            return self.scrub(str(value))
        return self.clean(key, builtins)


class JsonFormatter(logging.Formatter):
    """One JSON object per record. It runs for every event ingested, so the parts that repeat
    are kept: the timestamp's date and time to the second, and each constant message scrubbed
    (a message written with arguments is scrubbed every time, since its text varies)."""

    def __init__(self, masker: Masker) -> None:
        super().__init__()
        self._masker = masker
        self._second: tuple[int, str] = (0, "1970-01-01T00:00:00")
        self._messages: dict[str, str] = {}

    def format(self, record: logging.LogRecord) -> str:
        masker = self._masker
        entry: dict[str, Any] = {
            "ts": self._timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": self._message(record),
        }
        for key, value in vars(record).items():
            if key in _RECORD_ATTRS or key.startswith("_"):
                continue
            entry[key] = masker.clean(key, value)
        if record.exc_info:
            entry["exc"] = masker.scrub(self.formatException(record.exc_info))
        return msgspec.json.encode(entry, enc_hook=str).decode()

    def _timestamp(self, created: float) -> str:
        """`created` in UTC to the millisecond, as datetime.isoformat(timespec="milliseconds")
        writes it: microseconds rounded as datetime.fromtimestamp rounds them, then cut."""
        fraction, whole = math.modf(created)
        second, micros = int(whole), round(fraction * 1_000_000)
        if micros >= 1_000_000:
            second, micros = second + 1, micros - 1_000_000
        cached, text = self._second
        if cached != second:
            text = datetime.fromtimestamp(second, UTC).isoformat(timespec="seconds")[:19]
            self._second = (second, text)
        return f"{text}.{micros // 1000:03d}+00:00"

    def _message(self, record: logging.LogRecord) -> str:
        if record.args or not isinstance(record.msg, str):
            return self._masker.scrub(record.getMessage())
        scrubbed = self._messages.get(record.msg)
        if scrubbed is None:
            scrubbed = self._masker.scrub(record.msg)
            if len(self._messages) < _MAX_MESSAGES:  # constant texts are few; never grow past
                self._messages[record.msg] = scrubbed
        return scrubbed


def configure_logging(level: str, masker: Masker) -> None:
    """JSON lines on stdout, personal data masked with the process's key."""
    # Where in the code, and in which thread and process, a record was made: the JSON lines
    # never carry it, and finding it costs a stack walk per line (the logging HOWTO's
    # "Optimization": every event ingested writes a line).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(masker))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's access log repeats every request; our own lines carry what matters.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
