"""What does the PMS send during a fault scenario, and what does it remember? The workload.

A booking's story is drawn from a seeded random.Random: created (one or two stays), then a
few changes, each one new event carrying the whole booking: a room change, new dates, a new
email, a stay cancelled, a cancelled stay reinstated. Stories play concurrently, each booking's
events one after the other (a PMS sends a booking's next change once the last was taken),
with a pause between changes, all within the send window (arrivals 1 to 22 hours ahead).

The client behaves like a careful PMS: every event is retried with the same body on a
connection error, a timeout, 429 or 5xx (with a growing pause, against the next replica), up
to a time budget. The `Ledger` keeps every event sent and which ones were answered 202: those
must never be lost.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bench.fault_judge import ExpectedStay
from tests.support import BEARER, SOURCE, event, stay

ROOMS = ("101", "102", "201", "202")
NAMES = ("Ingrid Vang", "Tore Lunde", "Siri Aasen", "Eirik Holm", "Live Berg", "Nils Moen")
EARLIEST, LATEST = timedelta(hours=1), timedelta(hours=22)


@dataclass(frozen=True)
class StayPlan:
    stay_id: str
    room: str
    arrival: datetime
    nights: int
    status: str  # confirmed | cancelled
    name: str
    email: str
    phone: str

    def as_json(self) -> dict[str, Any]:
        guest = {"name": self.name, "email": self.email, "phone": self.phone}
        return stay(
            self.stay_id,
            resource_id=self.room,
            arrival=self.arrival,
            nights=self.nights,
            status=self.status,
            guests=[guest],
        )


@dataclass(frozen=True)
class Story:
    """One booking: its versions (the stays as the PMS sees them after each change)."""

    booking_id: str
    versions: tuple[tuple[StayPlan, ...], ...]
    changes: tuple[str, ...]  # what each version after the first changed
    start_after: float  # seconds into the send period
    pauses: tuple[float, ...]  # seconds before each version after the first


def _change(
    rng: random.Random, stays: tuple[StayPlan, ...], now: datetime, n: int
) -> tuple[str, tuple[StayPlan, ...]]:
    confirmed = [s for s in stays if s.status == "confirmed"]
    cancelled = [s for s in stays if s.status == "cancelled"]
    kinds = ["reinstate"] * 2 if cancelled else []
    if confirmed:
        kinds += ["room", "room", "dates", "dates", "email", "cancel"]
    kind = rng.choice(kinds)
    target = rng.choice(cancelled if kind == "reinstate" else confirmed)
    if kind == "room":
        changed = replace(target, room=rng.choice([r for r in ROOMS if r != target.room]))
    elif kind == "dates":
        shift = timedelta(hours=rng.choice((-3, -2, -1, 1, 2, 3)))
        arrival = min(max(target.arrival + shift, now + EARLIEST), now + LATEST)
        changed = replace(target, arrival=arrival, nights=rng.randint(1, 3))
    elif kind == "email":
        user, _, domain = target.email.partition("@")
        changed = replace(target, email=f"{user.split('+')[0]}+{n}@{domain}")
    elif kind == "cancel":
        changed = replace(target, status="cancelled")
    else:
        changed = replace(target, status="confirmed")
    return kind, tuple(changed if s.stay_id == target.stay_id else s for s in stays)


def make_stories(
    rng: random.Random,
    *,
    prefix: str,
    count: int,
    max_changes: int,
    send_seconds: float,
    pause: tuple[float, float],
    now: datetime,
    burst_at: float,
) -> list[Story]:
    """`count` booking stories: a third created together at `burst_at` seconds (a PMS sending
    what it held back), the others one by one within the first half of the send period."""
    stories = []
    base = now.replace(second=0, microsecond=0)
    for i in range(count):
        arrival = base + timedelta(hours=rng.randint(2, 18))
        stays = tuple(
            StayPlan(
                stay_id=f"S{n + 1}",
                room=rng.choice(ROOMS),
                arrival=arrival,
                nights=rng.randint(1, 3),
                status="confirmed",
                name=rng.choice(NAMES),
                email=f"guest{i:03d}.{n + 1}@example.no",
                phone=f"+479{1_200_000 + i * 2 + n:07d}",
            )
            for n in range(2 if rng.random() < 0.25 else 1)
        )
        versions = [stays]
        changes = []
        for n in range(rng.randint(1, max_changes)):
            kind, stays = _change(rng, stays, now, n + 1)
            versions.append(stays)
            changes.append(kind)
        stories.append(
            Story(
                booking_id=f"{prefix}-{i:03d}",
                versions=tuple(versions),
                changes=tuple(changes),
                start_after=burst_at if i % 3 == 0 else rng.uniform(0, send_seconds / 2),
                pauses=tuple(rng.uniform(*pause) for _ in changes),
            )
        )
    return stories


@dataclass
class Ledger:
    """What the PMS sent and what it was told."""

    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)  # event_id -> body
    stays: dict[str, tuple[str, tuple[StayPlan, ...]]] = field(default_factory=dict)
    acknowledged: set[str] = field(default_factory=set)
    gave_up: set[str] = field(default_factory=set)
    attempts: int = 0
    errors: Counter[str] = field(default_factory=Counter)


class Pms:
    """Posts events to the replicas alive now, retrying each until it is answered 202."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        targets: Callable[[], Sequence[str]],
        ledger: Ledger,
        *,
        attempt_seconds: float = 5.0,
        budget_seconds: float = 60.0,
    ) -> None:
        self._http = http
        self._targets = targets
        self._ledger = ledger
        self._timeout = aiohttp.ClientTimeout(total=attempt_seconds)
        self._budget = budget_seconds
        self._turn = itertools.count()
        self.in_flight: Counter[str] = Counter()  # posts waiting for an answer, per replica

    async def play(self, story: Story, started: float) -> None:
        await asyncio.sleep(max(0.0, started + story.start_after - time.monotonic()))
        for n, stays in enumerate(story.versions):
            if n:
                await asyncio.sleep(story.pauses[n - 1])
            event_id = f"ev-{story.booking_id}-{n + 1}"
            body = event(
                event_id,
                booking_id=story.booking_id,
                occurred_at=datetime.now(UTC),
                stays=[s.as_json() for s in stays],
            )
            self._ledger.bodies[event_id] = body
            self._ledger.stays[event_id] = (story.booking_id, stays)
            await self.deliver(event_id, body)

    async def deliver(self, event_id: str, body: dict[str, Any]) -> bool:
        deadline = time.monotonic() + self._budget
        pause = 0.2
        while True:
            targets = self._targets()
            if targets:
                url = targets[next(self._turn) % len(targets)]
                self._ledger.attempts += 1
                outcome = await self._post(url, body)
                if outcome == "202":
                    self._ledger.acknowledged.add(event_id)
                    return True
                self._ledger.errors[outcome] += 1
                if outcome.startswith("4") and outcome not in ("408", "429"):
                    raise AssertionError(f"{event_id} refused with {outcome}: a workload bug")
            if time.monotonic() + pause > deadline:
                self._ledger.gave_up.add(event_id)
                return False
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)

    async def _post(self, url: str, body: dict[str, Any]) -> str:
        self.in_flight[url] += 1
        try:
            async with self._http.post(
                f"{url}/v1/events", json=body, headers=BEARER, timeout=self._timeout
            ) as response:
                await response.read()
                return str(response.status)
        except TimeoutError:
            return "timeout"
        except aiohttp.ClientConnectorError:
            return "refused"
        except aiohttp.ClientError:
            return "connection lost"
        finally:
            self.in_flight[url] -= 1


def expected_stays(
    ledger: Ledger, stored: dict[str, datetime], properties: Path
) -> dict[str, ExpectedStay]:
    """What each stay should have, from the latest stored event of its booking (by
    `occurred_at`, as the service orders them); bookings with no stored event want nothing."""
    hotel = tomllib.loads(properties.read_text(encoding="utf-8"))["properties"]["oslo-1"]
    latest: dict[str, tuple[datetime, tuple[StayPlan, ...]]] = {}
    for event_id, occurred_at in stored.items():
        if event_id not in ledger.stays:
            continue
        booking_id, stays = ledger.stays[event_id]
        if booking_id not in latest or occurred_at > latest[booking_id][0]:
            latest[booking_id] = (occurred_at, stays)
    expected = {}
    for booking_id, (_, stays) in latest.items():
        for s in stays:
            room = hotel["resources"][s.room]
            doors = room.get("common_doors", hotel["common_doors"])
            key = f"{SOURCE}:{booking_id}:{s.stay_id}"
            expected[key] = ExpectedStay(
                key=key,
                wanted=s.status == "confirmed",
                locks=frozenset((*room["access_points"], *doors)),
                start=s.arrival,
                end=s.arrival + timedelta(days=s.nights),
            )
    return expected
