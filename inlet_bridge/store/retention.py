"""What history is kept, and for how long? Finished calls, attempts and deliveries past an age.

Every replica purges now and then, in batches (SKIP LOCKED: two replicas share the work), so the
tables and every look-up over them stay flat however long the service runs. Kept whatever their
age: pending calls and deliveries; anything an escalation points at; a grant's GrantAccess calls
since its last confirmed revocation and that revocation (the recovery history of
docs/architecture.md rule 6); an access change a delivery still holds. The event log keeps its
own rule (`purge_events_before`); grants and bookings are never purged here.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from inlet_bridge.store.db import Database

PURGE_BATCH = 1000


class Purged(msgspec.Struct, frozen=True, kw_only=True):
    calls: int = 0
    deliveries: int = 0
    access_changes: int = 0

    def __add__(self, other: Purged) -> Purged:
        return Purged(
            calls=self.calls + other.calls,
            deliveries=self.deliveries + other.deliveries,
            access_changes=self.access_changes + other.access_changes,
        )

    @property
    def total(self) -> int:
        return self.calls + self.deliveries + self.access_changes


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


class RetentionStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def purge_batch(self, *, cutoff: datetime, limit: int = PURGE_BATCH) -> Purged:
        """One batch of each kind, each in its own short transaction."""
        calls = await self._db.execute("purge_calls", cutoff=cutoff, limit=limit)
        deliveries = await self._db.execute("purge_deliveries", cutoff=cutoff, limit=limit)
        changes = await self._db.execute("purge_access_changes", cutoff=cutoff, limit=limit)
        return Purged(
            calls=_count(calls), deliveries=_count(deliveries), access_changes=_count(changes)
        )

    async def purge(self, *, cutoff: datetime, limit: int = PURGE_BATCH) -> Purged:
        """Batches until nothing older than `cutoff` is left to purge."""
        total = Purged()
        while True:
            purged = await self.purge_batch(cutoff=cutoff, limit=limit)
            total = total + purged
            if purged.total == 0:
                return total
