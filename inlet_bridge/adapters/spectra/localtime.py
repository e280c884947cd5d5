"""How does a hotel's wall-clock time become an aware instant, and which zone is the hotel in?

Spectra speaks hotel-local time without offsets; the zone comes from its hotel settings,
possibly as a Windows zone ID. Nothing here knows Spectra's field names.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Windows zone IDs a .NET back end may report, for the hotels we are likely to meet.
WINDOWS_ZONES: Mapping[str, str] = MappingProxyType(
    {
        "w. europe standard time": "Europe/Berlin",
        "romance standard time": "Europe/Paris",
        "central europe standard time": "Europe/Budapest",
        "central european standard time": "Europe/Warsaw",
        "fle standard time": "Europe/Helsinki",
        "gmt standard time": "Europe/London",
        "utc": "UTC",
    }
)


def zone_named(name: str | None) -> ZoneInfo | None:
    """An IANA name or a known Windows ID as a zone; None if empty or unknown."""
    text = (name or "").strip()
    if not text:
        return None
    try:
        return ZoneInfo(WINDOWS_ZONES.get(text.lower(), text))
    except (ZoneInfoNotFoundError, ValueError):
        return None


def local_to_aware(value: str, tz: ZoneInfo, default_time: time) -> datetime:
    """A hotel-local ISO date-time (or a date, at `default_time`) as an aware datetime in `tz`.

    A time in the spring-forward gap moves forward by the gap (02:30 -> 03:30); an ambiguous
    autumn time takes its first occurrence. A value with an offset keeps its instant.
    Raises ValueError if the value is not an ISO date or date-time.
    """
    text = value.strip()
    if len(text) == 10:
        parsed = datetime.combine(date.fromisoformat(text), default_time)
    else:
        parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is not None:
        return parsed.astimezone(tz)
    # Round-tripping through UTC normalizes a wall time that does not exist in the zone.
    return parsed.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)
