"""What must a person follow up, and what happens when they act? Escalations for operators.

Retrying a call escalation resolves it and marks the booking: the reconciler then plans the
call again from the booking's current state (level-triggered, so a booking that changed in the
meantime gets the right call). A failed re-sync is queued again as it was; a failed delivery
is tried again from scratch.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import asyncpg
import msgspec

from inlet_bridge.domain.vocab import PRIORITY, RESYNC
from inlet_bridge.store.audit import Actor, AuditAction, AuditEntry, AuditStore
from inlet_bridge.store.db import Connection, Database


class Escalation(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    grant_key: str
    source: str
    booking_id: str
    property_id: str
    call_id: int | None
    delivery_id: int | None
    operation: str | None
    severity: str
    reason: str
    message: str | None
    created_at: datetime
    resolved_at: datetime | None
    resolved_note: str | None


Outcome = Literal["retried", "resolved", "not_found"]


class EscalationStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def list(
        self,
        *,
        open_only: bool | None = True,
        severity: str | None = None,
        operation: str | None = None,
        properties: frozenset[str] | None = None,
        limit: int = 200,
    ) -> list[Escalation]:
        """Newest first; only those of `properties` when given (an operator's scope)."""
        scope = None if properties is None else sorted(properties)
        rows = await self._db.fetch(
            "list_escalations",
            open_only=open_only,
            severity=severity,
            operation=operation,
            limit=limit,
            properties=scope,
        )
        return [Escalation(**dict(r)) for r in rows]

    async def resolve(
        self,
        escalation_id: int,
        *,
        note: str,
        now: datetime,
        actor: Actor,
        properties: frozenset[str] | None = None,
    ) -> Outcome:
        """Resolve an open escalation of `properties` (any when None), audited in one step."""
        async with self._db.transaction() as conn:
            row = await self._lock(conn, escalation_id, properties)
            if row is None:
                return "not_found"
            await conn.execute(self._db.sql("resolve_escalation"), escalation_id, now, note)
            await self._audit(conn, row, "resolve", note=note, now=now, actor=actor)
        return "resolved"

    async def _lock(
        self, conn: Connection, escalation_id: int, properties: frozenset[str] | None
    ) -> asyncpg.Record | None:
        row = await conn.fetchrow(self._db.sql("lock_escalation"), escalation_id)
        if row is None or (properties is not None and row["property_id"] not in properties):
            return None
        return row

    async def _audit(
        self,
        conn: Connection,
        row: asyncpg.Record,
        action: AuditAction,
        *,
        note: str,
        now: datetime,
        actor: Actor,
    ) -> None:
        entry = AuditEntry(
            at=now,
            operator=actor.operator,
            role=actor.role,
            action=action,
            source=row["source"],
            booking_id=row["booking_id"],
            property_id=row["property_id"],
            escalation_id=row["id"],
            note=note,
            request_id=actor.request_id,
        )
        await AuditStore(self._db).record(entry, conn=conn)

    async def retry(
        self,
        escalation_id: int,
        *,
        note: str,
        now: datetime,
        actor: Actor,
        properties: frozenset[str] | None = None,
    ) -> Outcome:
        """Resolve and try again (see the module's docstring), audited in the same step."""
        async with self._db.transaction() as conn:
            row = await self._lock(conn, escalation_id, properties)
            if row is None:
                return "not_found"
            await self._audit(conn, row, "retry", note=note, now=now, actor=actor)
            await conn.execute(
                self._db.sql("resolve_escalation"), escalation_id, now, f"retried: {note}"
            )
            if row["call_id"] is not None and row["call_reason"] == RESYNC:
                await self._db.on(conn).fetchval(
                    "requeue_call",
                    grant_key=row["grant_key"],
                    source=row["source"],
                    booking_id=row["booking_id"],
                    property_id=row["call_property_id"],
                    operation=row["call_operation"],
                    reason=RESYNC,
                    request=row["call_request"],
                    fingerprint=row["call_fingerprint"],
                    priority=PRIORITY[row["call_operation"]],
                    now=now,
                    deadline=row["call_deadline"],
                    resync_id=row["call_resync_id"],
                    generation=row["call_generation"],
                    external_id=row["call_external_id"],
                )
            if row["delivery_id"] is not None:
                await conn.execute(self._db.sql("requeue_delivery"), row["delivery_id"], now)
            await conn.execute(self._db.sql("mark_booking"), row["source"], row["booking_id"], now)
        return "retried"
