"""Which grants does a re-sync touch, and how far has it come? The re-sync store.

A re-sync queues a regenerating UpdateAccess for every matching active grant, through the
same retry table as every other call (bounded concurrency, retries, escalation). A grant whose
grant or update is already queued gets that call marked to regenerate instead; a grant with a
call in flight is left out and reported, so it can be re-synced again once that call is done.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from asyncpg import Record

from inlet_bridge.domain.access import DesiredGrant
from inlet_bridge.domain.plan import call_deadline
from inlet_bridge.store.audit import Actor, AuditEntry, AuditStore
from inlet_bridge.store.db import Database, Queries

# Ids as events carry them; access point names as the properties file has them (no control
# characters, which PostgreSQL's text would refuse).
_Id = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@/+#-]{0,127}$")]
_Door = Annotated[str, msgspec.Meta(pattern=r"^[^\x00-\x1f\x7f]{1,128}$")]
_BookingKey = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@/+#:-]{0,256}$")]
_Some = msgspec.Meta(max_length=1000)
# Matching grants are read this many at a time.
CANDIDATES_PAGE = 1000


class ResyncSelector(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which active grants to re-sync; every given filter must match (none given: refused)."""

    property_id: _Id | None = None
    access_points: Annotated[tuple[_Door, ...], _Some] | None = None
    resource_ids: Annotated[tuple[_Id, ...], _Some] | None = None
    bookings: Annotated[tuple[_BookingKey, ...], _Some] | None = None  # "source:booking_id"

    def is_empty(self) -> bool:
        return not (self.property_id or self.access_points or self.resource_ids or self.bookings)


class ResyncStarted(msgspec.Struct, frozen=True, kw_only=True):
    resync_id: int
    matched: int
    queued: int
    in_flight: int


class ResyncProgress(msgspec.Struct, frozen=True, kw_only=True):
    resync_id: int
    requested_at: datetime
    requested_by: str
    selector: ResyncSelector
    matched: int
    queued: int
    succeeded: int
    pending: int
    failed: int
    superseded: int

    @property
    def done(self) -> bool:
        return self.pending == 0


class ResyncStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def count(self, selector: ResyncSelector) -> int:
        return len(await self._candidates(selector))

    async def start(
        self, selector: ResyncSelector, *, actor: Actor, now: datetime, note: str | None
    ) -> ResyncStarted:
        """Queue the re-sync's calls and its audit row in one transaction."""
        async with self._db.transaction() as conn:
            rows = await _candidates(self._db.on(conn), selector)
            resync_id: int = await self._db.on(conn).fetchval(
                "insert_resync",
                now=now,
                requested_by=actor.operator,
                selector=selector,
                matched=len(rows),
                note=note,
            )
            booking = selector.bookings[0].split(":", 1) if selector.bookings else None
            entry = AuditEntry(
                at=now,
                operator=actor.operator,
                role=actor.role,
                action="resync",
                source=booking[0] if booking and len(selector.bookings or ()) == 1 else None,
                booking_id=booking[-1] if booking and len(selector.bookings or ()) == 1 else None,
                property_id=selector.property_id,
                resync_id=resync_id,
                note=note,
                detail={"selector": msgspec.to_builtins(selector), "matched": len(rows)},
                request_id=actor.request_id,
            )
            await AuditStore(self._db).record(entry, conn=conn)
            queued = 0
            for row in rows:
                applied = msgspec.json.decode(row["applied"], type=DesiredGrant)
                call_id = await self._db.on(conn).fetchval(
                    "queue_resync_call",
                    grant_key=row["grant_key"],
                    source=row["source"],
                    booking_id=row["booking_id"],
                    property_id=row["property_id"],
                    request=row["applied"],
                    fingerprint=applied.fingerprint,
                    now=now,
                    deadline=call_deadline(applied, now),
                    resync_id=resync_id,
                    generation=row["generation"],
                    external_id=row["external_id"],
                )
                if call_id is None:
                    call_id = await conn.fetchval(
                        self._db.sql("join_resync"), row["grant_key"], resync_id, now
                    )
                if call_id is not None:
                    queued += 1
            await conn.execute(self._db.sql("set_resync_queued"), resync_id, queued)
        return ResyncStarted(
            resync_id=resync_id, matched=len(rows), queued=queued, in_flight=len(rows) - queued
        )

    async def progress(self, resync_id: int) -> ResyncProgress | None:
        row = await self._db.fetchrow("resync_progress", resync_id)
        if row is None:
            return None
        values = dict(row)
        values["resync_id"] = values.pop("id")
        values["selector"] = msgspec.json.decode(values["selector"], type=ResyncSelector)
        return ResyncProgress(**values)

    async def _candidates(self, selector: ResyncSelector) -> list[str]:
        return [r["grant_key"] for r in await _candidates(self._db, selector)]


async def _candidates(queries: Queries, selector: ResyncSelector) -> list[Record]:
    """Every matching grant, in key order, read a page at a time (no sort, on disk or not)."""

    def listed(values: tuple[str, ...] | None) -> list[str] | None:
        return list(values) if values else None

    rows: list[Record] = []
    after = ""
    while True:
        page = await queries.fetch(
            "resync_candidates",
            after=after,
            property_id=selector.property_id,
            access_points=listed(selector.access_points),
            resource_ids=listed(selector.resource_ids),
            bookings=listed(selector.bookings),
            limit=CANDIDATES_PAGE,
        )
        rows.extend(page)
        if len(page) < CANDIDATES_PAGE:
            return rows
        after = page[-1]["grant_key"]
