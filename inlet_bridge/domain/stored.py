"""How is an event read back from the log? Leniently, and upcast from older schema versions.

Every stored event carries the version of the shape it was written in (`events.schema_version`).
A row can never be rewritten, so reading it must not depend on what the API accepts today:
rows decode into the domain's lenient Structs (`booking.py`: unknown fields ignored, no length
enforced), and a row of an older version is first brought to the current shape by the chain of
upcasters, one version step each. A row of a newer version than this code knows (written by a
newer replica during a rolling deploy) is refused, never guessed at.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import msgspec

from inlet_bridge.domain.booking import BookingEvent

# The version this code writes. Raise it with an upcaster from the previous one whenever the
# stored shape changes (a field renamed, moved or given another meaning).
CURRENT_VERSION: Final = 1

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
# version n -> n + 1, for every n below CURRENT_VERSION.
UPCASTERS: Final[Mapping[int, Upcaster]] = {}


class UnknownEventVersion(Exception):
    """A stored event is of a version this code cannot read."""


def decode_stored_event(
    raw: str | bytes,
    version: int,
    *,
    current: int = CURRENT_VERSION,
    upcasters: Mapping[int, Upcaster] = UPCASTERS,
) -> BookingEvent:
    """The event of one stored row, in the current shape."""
    if version == current:
        return msgspec.json.decode(raw, type=BookingEvent)
    if version > current or version < 1:
        raise UnknownEventVersion(f"event schema version {version}; this code reads 1..{current}")
    data: dict[str, Any] = msgspec.json.decode(raw)
    for step in range(version, current):
        upcast = upcasters.get(step)
        if upcast is None:
            raise UnknownEventVersion(f"no upcaster from event schema version {step}")
        data = upcast(data)
    return msgspec.json.decode(msgspec.json.encode(data), type=BookingEvent)
