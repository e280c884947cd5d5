"""Who revealed what, and who acted on which booking? The operators' audit trail.

Rows are only ever added (a trigger refuses UPDATE, DELETE and TRUNCATE). An action's row is
written in the same transaction as the action, so an action is never without its trace; a
reveal's row is written before the revealed data is sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from service.store.db import Connection, Database

AuditAction = Literal["reveal", "retry", "resolve", "resync"]


class Actor(msgspec.Struct, frozen=True, kw_only=True):
    """Who acts: an operator's name and role (`cli:<user>` from a shell), and the request."""

    operator: str
    role: str
    request_id: str | None = None


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """What an operator did, as recorded: who, what, which booking, when."""

    at: datetime
    operator: str
    role: str
    action: AuditAction
    source: str | None = None
    booking_id: str | None = None
    property_id: str | None = None
    escalation_id: int | None = None
    resync_id: int | None = None
    note: str | None = None
    detail: dict[str, Any] | None = None
    request_id: str | None = None


class AuditRecord(AuditEntry, frozen=True, kw_only=True):
    id: int


class AuditStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, entry: AuditEntry, *, conn: Connection | None = None) -> int:
        """Append `entry` (inside `conn`'s transaction when given); its id."""
        args = (
            entry.at,
            entry.operator,
            entry.role,
            entry.action,
            entry.source,
            entry.booking_id,
            entry.property_id,
            entry.escalation_id,
            entry.resync_id,
            entry.note,
            None if entry.detail is None else msgspec.json.encode(entry.detail).decode(),
            entry.request_id,
        )
        if conn is not None:
            value: int = await conn.fetchval(self._db.sql("insert_audit"), *args)
            return value
        value = await self._db.fetchval("insert_audit", *args)
        return value

    async def list(
        self,
        *,
        source: str | None = None,
        booking_id: str | None = None,
        operator: str | None = None,
        action: str | None = None,
        properties: frozenset[str] | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditRecord]:
        rows = await self._db.fetch(
            "list_audit",
            source,
            booking_id,
            operator,
            action,
            None if properties is None else sorted(properties),
            before_id,
            limit,
        )
        return [
            AuditRecord(
                **{k: v for k, v in dict(r).items() if k != "detail"},
                detail=None if r["detail"] is None else msgspec.json.decode(r["detail"]),
            )
            for r in rows
        ]
