"""Who revealed what, and who acted on which booking? The operators' audit trail.

Rows are only ever added (a trigger refuses UPDATE, DELETE and TRUNCATE). An action's row is
written in the same transaction as the action, so an action is never without its trace; a
reveal's row is written before the revealed data is sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from inlet_bridge.store.db import Connection, Database

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
        queries = self._db if conn is None else self._db.on(conn)
        value: int = await queries.fetchval("insert_audit", **msgspec.structs.asdict(entry))
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
            source=source,
            booking_id=booking_id,
            operator=operator,
            action=action,
            properties=None if properties is None else sorted(properties),
            before_id=before_id,
            limit=limit,
        )
        return [
            AuditRecord(
                **{k: v for k, v in dict(r).items() if k != "detail"},
                detail=None if r["detail"] is None else msgspec.json.decode(r["detail"]),
            )
            for r in rows
        ]
