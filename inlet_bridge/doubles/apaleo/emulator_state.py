"""What does the apaleo emulator's account hold right now, and what faults is it told to play?

The mutable state behind `emulator.py`, one instance per app (never global): the reservations
as apaleo would send them (each change stamps `modified`), the OAuth clients and the tokens
handed out, where notifications go, the JSON Patches received, and queued faults. Time comes
from an injected clock and every random choice from a seedable generator. Self-contained: it
shares nothing with the Spectra emulator but the shape.
"""

from __future__ import annotations

import random
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import msgspec

from inlet_bridge.adapters.apaleo import mapping
from inlet_bridge.clock import Now
from inlet_bridge.doubles.faults import FaultQueue

TOKEN_LIFETIME = timedelta(hours=1)


class Fault(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The body of `POST /_emulator/faults`: what to break, for how many calls, on which paths."""

    kind: Literal["timeout", "status", "bad_json"]
    status: int = 503
    seconds: float = 30.0  # how long a "timeout" stalls before answering normally
    count: int | None = 1  # None: until `DELETE /_emulator/faults`
    paths: tuple[str, ...] | None = None  # path prefixes; None: every API path


class Subscription(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where notifications go (`POST /_emulator/subscription`), with the basic-auth login."""

    endpoint_url: str
    username: str
    password: str


@dataclass
class Sent:
    """One notification sent, and what the receiver answered."""

    notification: dict[str, Any]
    status: int | None


@dataclass
class AccountState:
    """One emulated apaleo account with one property."""

    client_id: str
    client_secret: str
    property_id: str
    clock: Now
    seed: int | None = None
    reservations: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, datetime] = field(default_factory=dict)
    patches: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    subscription: Subscription | None = None
    token_requests: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.faults: FaultQueue[Fault] = FaultQueue()

    def now(self) -> datetime:
        current = self.clock()
        if current.tzinfo is None:
            raise ValueError("the emulator clock must return aware datetimes")
        return current

    # --- OAuth ---

    def issue_token(self) -> tuple[str, int]:
        self.token_requests += 1
        token = secrets.token_urlsafe(24)
        self.tokens[token] = self.now() + TOKEN_LIFETIME
        return token, int(TOKEN_LIFETIME.total_seconds())

    def token_valid(self, token: str) -> bool:
        expires = self.tokens.get(token)
        return expires is not None and self.now() < expires

    def revoke_tokens(self) -> None:
        """Every token handed out stops working (as after a rotation on apaleo's side)."""
        self.tokens.clear()

    # --- reservations ---

    def put_reservation(self, reservation_id: str, raw: dict[str, Any]) -> None:
        """Create or replace; stamps `id`, the property and `modified` as apaleo would."""
        stored = dict(raw)
        stored["id"] = reservation_id
        stored.setdefault("bookingId", reservation_id.rsplit("-", 1)[0])
        stored.setdefault("property", {"id": self.property_id, "name": "Demo Hotel Oslo"})
        previous = self.reservations.get(reservation_id)
        stamp = self.now().astimezone(UTC).isoformat(timespec="microseconds")
        stored.setdefault("created", previous["created"] if previous else stamp)
        stored["modified"] = stamp
        if previous is not None and "comment" in previous and "comment" not in raw:
            stored["comment"] = previous["comment"]  # the hotel's comment survives our edits
        msgspec.json.decode(msgspec.json.encode(stored), type=mapping.ApaleoReservation)
        self.reservations[reservation_id] = stored

    def patch_reservation(self, reservation_id: str, operations: list[dict[str, Any]]) -> bool:
        """Apply a JSON Patch of `/comment` (the one path the bridge writes); False if gone."""
        stored = self.reservations.get(reservation_id)
        if stored is None:
            return False
        for op in operations:
            if op.get("path") != "/comment" or op.get("op") not in ("add", "replace", "remove"):
                raise ValueError("only add, replace or remove of /comment is emulated")
            if op["op"] == "remove":
                stored.pop("comment", None)
            else:
                stored["comment"] = str(op.get("value"))
        self.patches.append((reservation_id, operations))
        return True

    def listed(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Reservations whose stay overlaps [start, end), by arrival (dateFilter=Stay)."""
        found = []
        for raw in self.reservations.values():
            parsed = msgspec.json.decode(msgspec.json.encode(raw), type=mapping.ApaleoReservation)
            if parsed.arrival is None or parsed.departure is None:
                continue
            if parsed.arrival < end and parsed.departure > start:
                found.append((parsed.arrival, parsed.id, raw))
        return [raw for _, _, raw in sorted(found)]

    # --- notifications ---

    def notification(
        self, event_type: str, entity_id: str, *, notification_id: str | None = None
    ) -> dict[str, Any]:
        """A notification as apaleo sends it (`timestamp` in milliseconds)."""
        return {
            "topic": "Reservation",
            "type": event_type,
            "id": notification_id or str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "accountId": "DEMO",
            "propertyId": self.property_id,
            "timestamp": int(self.now().timestamp() * 1000),
            "data": {"entityId": entity_id},
        }
