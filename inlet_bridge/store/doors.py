"""How does a batch of plans keep within a door's capacity? Counting the places as it plans.

A property's doors with a capacity are counted under the property's door lock
(`lock_property_doors`), for a whole batch at once: a batch is first planned as if every door
were free (`DoorsWanted`), which stands when its plans want none of the doors (the lock is then
taken shared) or when a bound on their use keeps far below capacity; close to it, the holders
are read and kept up to date as each booking of the batch is planned in turn (`DoorHolders`),
as if the bookings were planned one at a time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from asyncpg import Record

from inlet_bridge.domain.reconcile import Decision

Key = tuple[str, str]


class DoorCount(Protocol):
    """How a batch counts the use of a property's doors with a capacity as it plans in turn."""

    def usage(self, booking: Key) -> dict[str, int]: ...

    def planned(self, booking: Key, decision: Decision) -> None: ...


class DoorsWanted:
    """A batch planned as if every capped door were free, counting the places its plans want.

    A door's use only ever takes that door out of a plan (`domain/access.py`:
    `_within_capacity`), so these plans are the ones a count gives whenever no door could have
    been full: when the plans want none of the doors, and when the bound on their use
    (`door_use_bound`: active grants and pending grants and updates of the property) plus the
    places the batch wants stays below every door's capacity. Otherwise the batch is planned
    again counting exactly (`DoorHolders`)."""

    def __init__(self, capacity: Mapping[str, int]) -> None:
        self.capacity = dict(capacity)
        self._wanted = dict.fromkeys(capacity, 0)

    def usage(self, booking: Key) -> dict[str, int]:
        return dict.fromkeys(self.capacity, 0)

    def planned(self, booking: Key, decision: Decision) -> None:
        for grant in decision.desired.grants:
            for door in grant.access_points:
                if door in self._wanted:
                    self._wanted[door] += 1

    def wanted_any(self) -> bool:
        """Whether any plan of the batch wants one of the doors."""
        return any(self._wanted.values())

    def far_from_capacity(self, bound: int) -> bool:
        return all(bound + self._wanted[door] < limit for door, limit in self.capacity.items())


class DoorHolders:
    """Who holds a property's capped doors, kept up to date as a batch is planned in turn, so
    each booking sees the places the ones before it took (as `door_usage` would, one booking
    per transaction): the distinct grants of other bookings with an active grant or a pending
    grant or update on the door."""

    def __init__(self, doors: Sequence[str], rows: Sequence[Record]) -> None:
        # door -> grant key -> how it holds it (None: the grant; a call id; -1: a new call)
        self._held: dict[str, dict[str, set[int | None]]] = {door: {} for door in doors}
        # door -> booking -> its grant keys holding the door
        self._mine: dict[str, dict[Key, set[str]]] = {door: {} for door in doors}
        for r in rows:
            self._hold(r["door"], r["grant_key"], (r["source"], r["booking_id"]), r["call_id"])

    def _hold(self, door: str, grant: str, booking: Key, how: int | None) -> None:
        self._held[door].setdefault(grant, set()).add(how)
        self._mine[door].setdefault(booking, set()).add(grant)

    def usage(self, booking: Key) -> dict[str, int]:
        return {
            door: len(held) - len(self._mine[door].get(booking, ()))
            for door, held in self._held.items()
        }

    def planned(self, booking: Key, decision: Decision) -> None:
        """What the booking holds once its plan is written: its replaced calls let go, its new
        grant and update calls hold their doors."""
        replaced = {op.supersedes for op in decision.operations if op.supersedes is not None}
        for door, held in self._held.items():
            mine = self._mine[door].get(booking, set())
            for grant in list(mine):
                held[grant] -= replaced
                if not held[grant]:
                    del held[grant]
                    mine.discard(grant)
        for op in decision.operations:
            if op.kind in ("grant", "update") and op.desired is not None:
                for door in op.desired.access_points:
                    if door in self._held:
                        self._hold(door, op.grant_key, booking, -1)
