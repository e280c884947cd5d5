"""How does each "access changed" record reach its sinks? The deliveries store.

Claimed like calls (SKIP LOCKED, a lease per attempt), but only the oldest pending delivery
per sink and grant is claimable, so a PMS hears a stay's changes in order.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from inlet_bridge.domain.changes import AccessChange
from inlet_bridge.store.db import Database, touched


class ClaimedDelivery(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    change_id: int
    sink: str
    grant_key: str
    attempts: int
    first_attempt_at: datetime
    # Globally unique (UUIDv7, stored with the delivery): the same on every attempt.
    webhook_id: uuid.UUID
    change: AccessChange


class DeliveryStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(
        self, *, owner: str, now: datetime, limit: int, lease_seconds: float
    ) -> list[ClaimedDelivery]:
        rows = await self._db.fetch("claim_deliveries", now, owner, limit, lease_seconds)
        return [
            ClaimedDelivery(
                id=r["id"],
                change_id=r["change_id"],
                sink=r["sink"],
                grant_key=r["grant_key"],
                attempts=r["attempts"],
                first_attempt_at=r["first_attempt_at"],
                webhook_id=r["webhook_id"],
                change=msgspec.json.decode(r["payload"], type=AccessChange),
            )
            for r in rows
        ]

    async def delivered(
        self, delivery: ClaimedDelivery, *, owner: str, now: datetime, status: int | None
    ) -> bool:
        result = await self._db.execute(
            "finish_delivery",
            delivery_id=delivery.id,
            owner=owner,
            attempt=delivery.attempts,
            state="delivered",
            now=now,
            status=status,
            message="delivered",
        )
        return touched(result)

    async def retry_later(
        self,
        delivery: ClaimedDelivery,
        *,
        owner: str,
        at: datetime,
        status: int | None,
        message: str,
    ) -> bool:
        result = await self._db.execute(
            "retry_delivery",
            delivery_id=delivery.id,
            owner=owner,
            attempt=delivery.attempts,
            retry_at=at,
            status=status,
            message=message,
        )
        return touched(result)

    async def gave_up(
        self,
        delivery: ClaimedDelivery,
        *,
        owner: str,
        now: datetime,
        status: int | None,
        message: str,
    ) -> int | None:
        """Mark the delivery failed and escalate; the escalation id, or None if the lease was lost."""
        data = delivery.change.data
        kind = delivery.sink.partition(":")[0]
        async with self._db.transaction() as conn:
            queries = self._db.on(conn)
            result = await queries.execute(
                "finish_delivery",
                delivery_id=delivery.id,
                owner=owner,
                attempt=delivery.attempts,
                state="failed",
                now=now,
                status=status,
                message=message,
            )
            if not touched(result):
                return None
            escalation: int | None = await queries.fetchval(
                "raise_delivery_escalation",
                grant_key=data.grant_key,
                source=data.source,
                booking_id=data.booking_id,
                property_id=data.property_id,
                delivery_id=delivery.id,
                operation=kind,
                reason=f"{kind}_failed",
                message=message,
                now=now,
            )
        return escalation

    async def release(self, *, owner: str) -> None:
        await self._db.execute("release_deliveries", owner)

    async def next_due(self) -> datetime | None:
        value: datetime | None = await self._db.fetchval("next_delivery_due")
        return value
