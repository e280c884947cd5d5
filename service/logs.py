"""How does the service write its logs? One JSON object per line, personal data masked.

Every line carries a stable `action` (e.g. `ingest.accepted`, `inlet.call`) and the keys a
partner needs to troubleshoot a booking (source, booking_id, event_id, call_id, grant_key).
Fields that may hold personal data are masked here, as a last line of defence: callers are
expected never to pass names, emails, phones, codes or links in the first place.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

import msgspec

# Attributes every LogRecord has; anything else came from `extra=` and is emitted as a field.
_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}
SENSITIVE_FIELDS = frozenset(
    {"name", "guest_name", "email", "phone", "phone_number", "code", "code_formatted", "link"}
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"\+?\d[\d \-]{6,}\d")


def mask(value: object) -> str:
    """A stable, non-reversible tag for a personal value: equal values give equal tags."""
    digest = hashlib.sha256(str(value).encode()).hexdigest()[:10]
    return f"<masked:{digest}>"


def scrub(text: str) -> str:
    """Mask email addresses and phone-like digit runs in free text (e.g. an upstream message)."""
    return _PHONE.sub(lambda m: mask(m.group()), _EMAIL.sub(lambda m: mask(m.group()), text))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key in _RECORD_ATTRS or key.startswith("_"):
                continue
            if key in SENSITIVE_FIELDS and value is not None:
                entry[key] = mask(value)
            elif isinstance(value, str):
                entry[key] = scrub(value)
            else:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = scrub(self.formatException(record.exc_info))
        return msgspec.json.encode(entry, enc_hook=str).decode()


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's access log repeats every request; our own lines carry what matters.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
