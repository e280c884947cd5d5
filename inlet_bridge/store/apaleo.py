"""Which apaleo notifications wait for a fetch, and what came of each? The notifications store.

A notification is stored before the receiver answers 2xx (once per apaleo id), then claimed
like a call (SKIP LOCKED, a lease per attempt, the attempt counted when claimed). A fetch reads
the reservation's current state, so it settles every notification of that reservation received
before it began.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from inlet_bridge.store.db import Database, touched

Outcome = Literal["done", "not_found", "skipped", "failed"]


class StoredNotification(msgspec.Struct, frozen=True, kw_only=True):
    connection: str
    notification_id: str
    topic: str
    type: str
    entity_id: str
    sent_at: datetime | None
    received_at: datetime


class ClaimedNotification(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    connection: str
    notification_id: str
    type: str
    entity_id: str
    received_at: datetime
    attempts: int
    first_attempt_at: datetime


class NotificationStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(self, notification: StoredNotification) -> bool:
        """Store it; False when apaleo sent this id before (already stored, nothing to do)."""
        new = await self._db.fetchval(
            "insert_apaleo_notification",
            connection=notification.connection,
            notification_id=notification.notification_id,
            topic=notification.topic,
            type=notification.type,
            entity_id=notification.entity_id,
            sent_at=notification.sent_at,
            received_at=notification.received_at,
        )
        return new is not None

    async def claim(
        self, *, owner: str, now: datetime, limit: int, lease_seconds: float
    ) -> list[ClaimedNotification]:
        rows = await self._db.fetch("claim_apaleo_notifications", now, owner, limit, lease_seconds)
        return [
            ClaimedNotification(
                id=r["id"],
                connection=r["connection"],
                notification_id=r["notification_id"],
                type=r["type"],
                entity_id=r["entity_id"],
                received_at=r["received_at"],
                attempts=r["attempts"],
                first_attempt_at=r["first_attempt_at"],
            )
            for r in rows
        ]

    async def finish(
        self,
        claimed: ClaimedNotification,
        *,
        owner: str,
        outcome: Outcome,
        now: datetime,
        fetched_at: datetime | None = None,
        event_id: str | None = None,
        error: str | None = None,
    ) -> bool:
        """Record the outcome (False when the lease was lost). A fetch that read the reservation
        (`fetched_at`) also settles its other notifications received before the fetch began."""
        async with self._db.transaction() as conn:
            queries = self._db.on(conn)
            result = await queries.execute(
                "finish_apaleo_notification",
                notification=claimed.id,
                owner=owner,
                attempt=claimed.attempts,
                state=outcome,
                now=now,
                event_id=event_id,
                error=error,
            )
            if not touched(result):
                return False
            if fetched_at is not None and outcome in ("done", "not_found", "skipped"):
                await queries.execute(
                    "settle_apaleo_notifications",
                    connection=claimed.connection,
                    entity_id=claimed.entity_id,
                    fetched_at=fetched_at,
                    state=outcome,
                    now=now,
                    event_id=event_id,
                )
        return True

    async def retry_later(
        self, claimed: ClaimedNotification, *, owner: str, at: datetime, error: str
    ) -> bool:
        result = await self._db.execute(
            "retry_apaleo_notification",
            notification=claimed.id,
            owner=owner,
            attempt=claimed.attempts,
            retry_at=at,
            error=error,
        )
        return touched(result)

    async def release(self, *, owner: str) -> None:
        await self._db.execute("release_apaleo_notifications", owner)

    async def next_due(self) -> datetime | None:
        value: datetime | None = await self._db.fetchval("next_apaleo_notification_due")
        return value
