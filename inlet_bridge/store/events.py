"""How are events appended exactly once? The event log's store: group appends and reads.

A group is several requests' events committed in one transaction (group commit). Each request
is a unit: all of its events are stored, or none. A repeat of (source, event_id) with the same
body answers like the first delivery; with a different body it is a conflict and its unit is
refused whole. Two units of one group carrying the same new event are one delivery and its
repeat: the first is "stored", the later ones "duplicate". An event is stored with the warnings
of its validation (the contact details dropped from it), for the timeline.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Literal

import asyncpg
import msgspec
from asyncpg import Record

from inlet_bridge.domain.booking import BookingEvent, Problem
from inlet_bridge.domain.fold import LoggedEvent
from inlet_bridge.domain.stored import CURRENT_VERSION, decode_stored_event
from inlet_bridge.domain.validation import ValidEvent
from inlet_bridge.store.db import Connection, Database

_MAX_RACE_RETRIES = 3
# The SQLSTATE of events_refuse_append: the one-statement append undid itself.
_REFUSED = "IB409"


Status = Literal["stored", "duplicate", "conflict", "withheld"]


class AppendResult(msgspec.Struct, frozen=True, kw_only=True):
    """What one event's append came to; a duplicate carries the first delivery's position."""

    event_id: str
    status: Status
    position: int | None = None
    received_at: datetime | None = None


class UnitResult(msgspec.Struct, frozen=True, kw_only=True):
    """All events of one request; `conflict` means none of them was stored."""

    results: tuple[AppendResult, ...]

    @property
    def conflict(self) -> bool:
        return any(r.status == "conflict" for r in self.results)


class _Existing(msgspec.Struct, frozen=True):
    position: int
    received_at: datetime
    digest: bytes


class EventWriter:
    """Appends groups on the connection its writer holds."""

    def __init__(self, store: EventStore, conn: Connection) -> None:
        self._store = store
        self._conn = conn

    async def append_group(
        self, units: Sequence[Sequence[ValidEvent]], received_at: datetime
    ) -> list[UnitResult]:
        return await self._store.append_group(units, received_at, self._conn)

    async def ping(self) -> None:
        """Raise unless the held connection answers."""
        await self._conn.fetchval(self._store.sql("ping"))


class _NeedsCheck(Exception):
    """The group holds a conflict (or met another writer's key): take the careful path."""


class _RaceLost(Exception):
    """Another writer stored one of our keys between our look-up and our insert."""


def body_digest(valid: ValidEvent) -> bytes:
    """The fingerprint that tells a repeat from a changed body under the same event_id.

    The normalized event, plus the dropped contact details as they were sent: another invalid
    phone under the same event_id is a changed body, though both normalize alike. With nothing
    dropped this is the digest of the normalized event alone, as rows stored before have.
    """
    return _digest(msgspec.json.encode(valid.event), valid)


def _digest(encoded: bytes, valid: ValidEvent) -> bytes:
    digest = hashlib.sha256(encoded)
    digest.update(valid.dropped_digest)
    return digest.digest()


class _Row(msgspec.Struct, frozen=True):
    """An event as it is inserted: its JSON encoded once, for both the column and the digest."""

    valid: ValidEvent
    json: str
    digest: bytes

    @classmethod
    def of(cls, valid: ValidEvent) -> _Row:
        encoded = msgspec.json.encode(valid.event)
        return cls(valid, encoded.decode(), _digest(encoded, valid))


def _columns(rows: Sequence[_Row]) -> dict[str, object]:
    """The rows as the array parameters of append_events."""
    return {
        "sources": [r.valid.event.source for r in rows],
        "event_ids": [r.valid.event.event_id for r in rows],
        "booking_ids": [r.valid.event.booking.booking_id for r in rows],
        "property_ids": [r.valid.event.booking.property_id for r in rows],
        "occurred_ats": [r.valid.event.occurred_at for r in rows],
        "digests": [r.digest for r in rows],
        "events": [r.json for r in rows],
        "warnings": [_warnings_json(r.valid) for r in rows],
        "schema_version": CURRENT_VERSION,
    }


def _warnings_json(valid: ValidEvent) -> str | None:
    return msgspec.json.encode(valid.warnings).decode() if valid.warnings else None


def decode_warnings(text: str | None) -> tuple[Problem, ...]:
    """The warnings stored with an event (NULL for none, and for rows stored before)."""
    return () if text is None else msgspec.json.decode(text, type=tuple[Problem, ...])


class EventStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def sql(self, name: str) -> str:
        return self._db.sql(name)

    @contextlib.asynccontextmanager
    async def writer(self) -> AsyncIterator[EventWriter]:
        """A connection held for a group-commit writer: no pool round trips per commit."""
        async with self._db.pool.acquire() as conn:
            yield EventWriter(self, conn)

    async def append_group(
        self,
        units: Sequence[Sequence[ValidEvent]],
        received_at: datetime,
        conn: Connection | None = None,
    ) -> list[UnitResult]:
        """Commit every unit in one transaction; returns one result per unit, in order.

        The common case (new events and plain repeats) is one statement that inserts first and
        looks up only the keys that were already stored; a changed body under a stored id undoes
        that statement and takes the careful path, which refuses the conflicting units whole.
        """
        try:
            return await self._append_fast(units, received_at, conn)
        except _NeedsCheck:
            pass
        for attempt in range(_MAX_RACE_RETRIES):
            try:
                return await self._append_once(units, received_at, conn)
            except _RaceLost:
                if attempt == _MAX_RACE_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    @contextlib.asynccontextmanager
    async def _transaction(self, conn: Connection | None) -> AsyncIterator[Connection]:
        if conn is None:
            async with self._db.transaction() as pooled:
                yield pooled
        else:
            async with conn.transaction():
                yield conn

    async def _append_fast(
        self,
        units: Sequence[Sequence[ValidEvent]],
        received_at: datetime,
        held: Connection | None,
    ) -> list[UnitResult]:
        rows: dict[tuple[str, str], _Row] = {}
        for unit in units:
            for valid in unit:
                key, row = _key(valid), _Row.of(valid)
                if key in rows and rows[key].digest != row.digest:
                    raise _NeedsCheck
                rows.setdefault(key, row)
        ordered = [rows[key] for key in sorted(rows)]
        try:
            records = await self._append_statement(held, ordered, received_at)
        except asyncpg.PostgresError as exc:
            if exc.sqlstate == _REFUSED:
                raise _NeedsCheck from None  # nothing stayed: a changed body, or a race
            raise
        found = {(r["source"], r["event_id"]): r for r in records}
        # A key inserted now is "stored" for the first event that carries it, in request order;
        # any later unit of the group carrying it again is a repeat of that delivery.
        answered: set[tuple[str, str]] = set()
        results = []
        for unit in units:
            unit_results = []
            for valid in unit:
                key = _key(valid)
                record = found[key]
                first = record["stored"] and key not in answered
                answered.add(key)
                unit_results.append(
                    AppendResult(
                        event_id=valid.event.event_id,
                        status="stored" if first else "duplicate",
                        position=record["position"],
                        received_at=record["received_at"],
                    )
                )
            results.append(UnitResult(results=tuple(unit_results)))
        return results

    async def _append_statement(
        self, held: Connection | None, rows: Sequence[_Row], received_at: datetime
    ) -> list[Record]:
        """One statement, committed on its own: it inserts, marks, wakes and checks the repeats,
        or refuses itself whole (see append_events). Inside a caller's transaction it runs
        under a savepoint, so a refusal undoes only itself."""
        params = _columns(rows)
        if held is None:
            return await self._db.fetch("append_events", **params, received_at=received_at)
        if not held.is_in_transaction():
            return await self._db.on(held).fetch("append_events", **params, received_at=received_at)
        async with held.transaction():
            return await self._db.on(held).fetch("append_events", **params, received_at=received_at)

    async def _append_once(
        self,
        units: Sequence[Sequence[ValidEvent]],
        received_at: datetime,
        held: Connection | None,
    ) -> list[UnitResult]:
        digests = [[body_digest(v) for v in unit] for unit in units]
        keys = sorted({_key(v) for unit in units for v in unit})
        async with self._transaction(held) as conn:
            existing = await self._find(conn, keys)
            accepted, claimed = self._choose(units, digests, existing)
            rows = [claimed[key] for key in sorted(claimed)]
            inserted: dict[tuple[str, str], _Existing] = {}
            if rows:
                records = await self._insert(conn, rows, received_at)
                if len(records) != len(rows):
                    raise _RaceLost
                inserted = {
                    (r["source"], r["event_id"]): _Existing(
                        r["position"], r["received_at"], claimed[(r["source"], r["event_id"])][1]
                    )
                    for r in records
                }
                await self._mark(conn, [v.event for v, _ in rows])
        answered: set[tuple[str, str]] = set()
        return [
            self._unit_result(unit, ok, existing, inserted, claimed, answered)
            for unit, ok in zip(units, accepted, strict=True)
        ]

    async def _insert(
        self, conn: Connection, rows: Sequence[tuple[ValidEvent, bytes]], received_at: datetime
    ) -> list[Record]:
        """Insert in key order; keys already stored are skipped (not returned)."""
        return await self._db.on(conn).fetch(
            "insert_events",
            sources=[v.event.source for v, _ in rows],
            event_ids=[v.event.event_id for v, _ in rows],
            booking_ids=[v.event.booking.booking_id for v, _ in rows],
            property_ids=[v.event.booking.property_id for v, _ in rows],
            occurred_ats=[v.event.occurred_at for v, _ in rows],
            digests=[d for _, d in rows],
            events=[msgspec.json.encode(v.event).decode() for v, _ in rows],
            warnings=[_warnings_json(v) for v, _ in rows],
            received_at=received_at,
            schema_version=CURRENT_VERSION,
        )

    async def _mark(self, conn: Connection, stored: Sequence[BookingEvent]) -> None:
        """Mark the bookings of newly stored events for the reconciler, in key order (so two
        writers never deadlock), and wake the reconcilers of every replica at commit."""
        bookings = sorted({(e.source, e.booking.booking_id): e for e in stored}.items())
        await conn.execute(
            self._db.sql("mark_bookings"),
            [k[0] for k, _ in bookings],
            [k[1] for k, _ in bookings],
            [e.booking.property_id for _, e in bookings],
        )

    async def _find(
        self, conn: Connection, keys: list[tuple[str, str]]
    ) -> dict[tuple[str, str], _Existing]:
        records = await conn.fetch(
            self._db.sql("find_events"), [k[0] for k in keys], [k[1] for k in keys]
        )
        return {
            (r["source"], r["event_id"]): _Existing(
                r["position"], r["received_at"], bytes(r["body_sha256"])
            )
            for r in records
        }

    @staticmethod
    def _choose(
        units: Sequence[Sequence[ValidEvent]],
        digests: list[list[bytes]],
        existing: dict[tuple[str, str], _Existing],
    ) -> tuple[list[bool], dict[tuple[str, str], tuple[ValidEvent, bytes]]]:
        """Which units go in (no conflict with the log or an earlier unit) and which rows to insert."""
        claimed: dict[tuple[str, str], tuple[ValidEvent, bytes]] = {}
        accepted: list[bool] = []
        for unit, unit_digests in zip(units, digests, strict=True):
            ok = True
            for valid, digest in zip(unit, unit_digests, strict=True):
                key = _key(valid)
                earlier = existing.get(key)
                pending = claimed.get(key)
                if (earlier and earlier.digest != digest) or (pending and pending[1] != digest):
                    ok = False
            accepted.append(ok)
            if ok:
                for valid, digest in zip(unit, unit_digests, strict=True):
                    key = _key(valid)
                    if key not in existing:
                        claimed.setdefault(key, (valid, digest))
        return accepted, claimed

    @staticmethod
    def _unit_result(
        unit: Sequence[ValidEvent],
        accepted: bool,
        existing: dict[tuple[str, str], _Existing],
        inserted: dict[tuple[str, str], _Existing],
        claimed: dict[tuple[str, str], tuple[ValidEvent, bytes]],
        answered: set[tuple[str, str]],
    ) -> UnitResult:
        """One unit's answers; `answered` holds the keys an earlier accepted unit was told were
        stored (it is updated), so a later unit carrying the same event gets "duplicate"."""
        results = []
        for valid in unit:
            event = valid.event
            key = _key(valid)
            if not accepted:
                earlier = existing.get(key)
                if earlier and earlier.digest == body_digest(valid):
                    results.append(
                        AppendResult(
                            event_id=event.event_id,
                            status="duplicate",
                            position=earlier.position,
                            received_at=earlier.received_at,
                        )
                    )
                else:
                    # conflicting (with the log or an earlier request of this group), or new
                    # but withheld because another event of its unit conflicts
                    rival = claimed.get(key)
                    clash = earlier is not None or (
                        rival is not None and rival[1] != body_digest(valid)
                    )
                    status: Status = "conflict" if clash else "withheld"
                    results.append(AppendResult(event_id=event.event_id, status=status))
                continue
            row = existing.get(key) or inserted[key]
            first = key not in existing and key not in answered
            answered.add(key)
            results.append(
                AppendResult(
                    event_id=event.event_id,
                    status="stored" if first else "duplicate",
                    position=row.position,
                    received_at=row.received_at,
                )
            )
        return UnitResult(results=tuple(results))

    async def booking_events(self, source: str, booking_id: str) -> list[LoggedEvent]:
        return list(logged_events(await self._db.fetch("booking_events", source, booking_id)))


def _key(valid: ValidEvent) -> tuple[str, str]:
    return (valid.event.source, valid.event.event_id)


def logged_events(rows: Sequence[Record]) -> tuple[LoggedEvent, ...]:
    """Rows of `booking_events` as the fold reads them: the one way stored events are decoded."""
    return tuple(
        LoggedEvent(
            position=r["position"],
            received_at=r["received_at"],
            event=decode_stored_event(r["event"], r["schema_version"]),
        )
        for r in rows
    )
