"""What does the Spectra emulator's hotel hold right now, and what faults is it told to play?

The mutable state behind `emulator.py`, one instance per app (never global): rooms,
reservations and conferences as Spectra would send them, the change feed, the codes
written back, balances and queued faults. Time comes from an injected clock and every
random choice from a seedable generator, so a test can predict all of it.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

import msgspec

from inlet_bridge.adapters.spectra import mapping
from inlet_bridge.adapters.spectra.mapping import (
    SpectraBalance,
    SpectraConference,
    SpectraContact,
    SpectraFeedItem,
    SpectraGuest,
    SpectraHotel,
    SpectraReservation,
    SpectraRoom,
)
from inlet_bridge.clock import Now
from inlet_bridge.doubles.faults import FaultQueue

# How long the change feed keeps an item (the poller's FEED_MAX_AGE assumes Spectra's 24 h).
FEED_RETENTION = timedelta(hours=24)
_FIRST_NAMES = ("Ola", "Kari", "Ingrid", "Lars", "Sofie", "Henrik", "Nora", "Emil")
_LAST_NAMES = ("Nordmann", "Hansen", "Johansen", "Olsen", "Larsen", "Berg", "Haugen", "Dahl")


class Fault(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The body of `POST /_emulator/faults`: what to break, for how many calls, on which paths."""

    kind: Literal["timeout", "status", "bad_json"]
    status: int = 500
    seconds: float = 30.0  # how long a "timeout" stalls before answering normally
    count: int | None = 1  # None: until `DELETE /_emulator/faults`
    paths: tuple[str, ...] | None = None  # path prefixes; None: every API path


@dataclass
class CodeRecord:
    posted: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)


def _set_key(raw: dict[str, Any], struct: type[msgspec.Struct], attr: str, value: Any) -> None:
    """Set one field in a raw payload, replacing it whatever case the caller spelled it in."""
    name = mapping.field_name(struct, attr)
    for key in [k for k in raw if isinstance(k, str) and k.lower() == name.lower()]:
        del raw[key]
    raw[name] = value


class EmulatorState:
    """One emulated hotel."""

    def __init__(
        self,
        *,
        username: str,
        password: str,
        hotel_code: str,
        timezone: str,
        clock: Now | None,
        seed: int | None,
        feed_retention: timedelta | None = FEED_RETENTION,
    ) -> None:
        self.username = username
        self.password = password
        self.hotel_code = hotel_code
        self.tz = ZoneInfo(timezone)
        self._clock: Now = clock or (lambda: datetime.now(UTC))
        self.rng = random.Random(seed)
        self.hotel = SpectraHotel(
            hotel_code=hotel_code, name="Fjord Demo Hotel", time_zone=timezone
        )
        self.rooms: tuple[SpectraRoom, ...] = (
            *(
                SpectraRoom(room_number=n, name=n, room_type="Double", status="Clean")
                for n in ("101", "102", "201", "202")
            ),
            SpectraRoom(room_number="Fjord", name="Fjord", room_type="Conference", status="Clean"),
        )
        self.reservations: dict[str, dict[str, Any]] = {}
        self.conferences: dict[str, dict[str, Any]] = {}
        self.balances: dict[str, SpectraBalance] = {}
        self.feed: list[SpectraFeedItem] = []
        self.feed_retention = feed_retention  # None: the feed keeps everything
        self.codes: dict[str, CodeRecord] = {}
        self.faults: FaultQueue[Fault] = FaultQueue()
        self._next_number = 10001

    def now(self) -> datetime:
        current = self._clock()
        if current.tzinfo is None:
            raise ValueError("the emulator clock must return aware datetimes")
        return current

    # --- reservations and the feed ---

    def _append_feed(self, guid: str, event_type: str) -> None:
        self.feed.append(
            SpectraFeedItem(
                reservation_guid=guid, event_time=self.now().astimezone(UTC), event_type=event_type
            )
        )

    def put_reservation(self, guid: str, raw: dict[str, Any]) -> bool:
        """Create or replace; raises SpectraPayloadError if it is not a reservation.

        Returns whether anything changed (only a change appends a feed item).
        """
        stored = dict(raw)
        _set_key(stored, SpectraReservation, "reservation_guid", guid)
        mapping.decode(stored, SpectraReservation)
        previous = self.reservations.get(guid)
        if previous == stored:
            return False
        self.reservations[guid] = stored
        self.balances.setdefault(guid, SpectraBalance(balance=Decimal("0.00"), currency="NOK"))
        self._append_feed(
            guid, mapping.EVENT_CREATED if previous is None else mapping.EVENT_MODIFIED
        )
        return True

    def set_status(self, guid: str, status: str) -> bool:
        stored = self.reservations.get(guid)
        if stored is None:
            return False
        _set_key(stored, SpectraReservation, "status", status)
        self._append_feed(guid, mapping.EVENT_STATUS_CHANGED)
        return True

    def delete_reservation(self, guid: str) -> bool:
        if self.reservations.pop(guid, None) is None:
            return False
        self.balances.pop(guid, None)
        self._append_feed(guid, mapping.EVENT_DELETED)
        return True

    def parsed_reservations(self) -> list[SpectraReservation]:
        return [mapping.decode(raw, SpectraReservation) for raw in self.reservations.values()]

    def feed_since(self, since: datetime) -> list[SpectraFeedItem]:
        """The feed items at or after `since`, once items older than the retention are gone."""
        if self.feed_retention is not None:
            oldest = self.now() - self.feed_retention
            self.feed = [i for i in self.feed if i.event_time is None or i.event_time >= oldest]
        return [i for i in self.feed if i.event_time is not None and i.event_time >= since]

    def put_conference(self, guid: str, raw: dict[str, Any]) -> None:
        stored = dict(raw)
        _set_key(stored, SpectraConference, "conference_guid", guid)
        mapping.decode(stored, SpectraConference)
        self.conferences[guid] = stored

    def set_room_status(self, number: str, status: str) -> bool:
        """Change a room's housekeeping state (`Clean`, `Dirty`, ...); False if no such room."""
        found = False
        rooms = []
        for room in self.rooms:
            if mapping.room_key(room) == number:
                room = msgspec.structs.replace(room, status=status)
                found = True
            rooms.append(room)
        self.rooms = tuple(rooms)
        return found

    # --- codes written back ---

    def post_code(self, guid: str, code: str) -> None:
        self.codes.setdefault(guid, CodeRecord()).posted.append(code)

    def disable_code(self, guid: str, code: str) -> bool:
        """Disable a code posted earlier; disabling twice is fine, an unknown code is not."""
        record = self.codes.get(guid)
        if record is None or code not in record.posted:
            return False
        if code not in record.disabled:
            record.disabled.append(code)
        return True

    # --- demo data ---

    def _guid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _guest(self) -> SpectraGuest:
        first, last = self.rng.choice(_FIRST_NAMES), self.rng.choice(_LAST_NAMES)
        mobile = f"+479{self.rng.randrange(10**7):07d}"
        return SpectraGuest(
            first_name=first,
            last_name=last,
            email=f"{first}.{last}@example.no".lower(),
            mobile=mobile,
        )

    def _local(self, day: date, at: time) -> str:
        return datetime.combine(day, at).isoformat()

    def seed_demo(self) -> dict[str, list[str]]:
        """A handful of reservations and a conference around today in the hotel's zone."""
        today = self.now().astimezone(self.tz).date()
        plans: list[dict[str, Any]] = [
            {"days": (0, 2), "room": "101", "status": "Confirmed"},
            {"days": (1, 3), "room": "102", "status": "Confirmed", "company": "Nordlys AS"},
            {"days": (2, 4), "room": None, "status": "Confirmed", "group": True},
            {"days": (-1, 1), "room": "201", "status": "CheckedIn", "agent": "Fjord Travel"},
        ]
        created: list[str] = []
        for plan in plans:
            guid = self._guid()
            start, end = plan["days"]
            reservation = SpectraReservation(
                reservation_guid=guid,
                reservation_number=str(self._next_number),
                status=plan["status"],
                arrival=self._local(today + timedelta(days=start), time(15, 0)),
                departure=self._local(today + timedelta(days=end), time(11, 0)),
                room_number=plan["room"],
                guests=(self._guest(),),
                company=plan.get("company"),
                travel_agent=plan.get("agent"),
                group_guid=self._guid() if plan.get("group") else None,
            )
            self._next_number += 1
            self.put_reservation(guid, msgspec.to_builtins(reservation))
            created.append(guid)
        if created:
            self.balances[created[-1]] = SpectraBalance(balance=Decimal("1250.00"), currency="NOK")
        organizer = self._guest()
        conference_guid = self._guid()
        conference = SpectraConference(
            conference_guid=conference_guid,
            room_name="Fjord",
            start=self._local(today, time(9, 0)),
            end=self._local(today, time(16, 0)),
            contact=SpectraContact(
                first_name=organizer.first_name,
                last_name=organizer.last_name,
                email=organizer.email,
                mobile=organizer.mobile,
            ),
            status="Confirmed",
        )
        self.put_conference(conference_guid, msgspec.to_builtins(conference))
        return {"reservations": created, "conferences": [conference_guid]}
