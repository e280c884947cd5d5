"""Has this source sent this webhook-id before? The seen webhook-ids, shared by every replica.

A signed request's webhook-id is recorded for its source until its timestamp is too old to be
accepted anyway (the 5-minute tolerance), so one captured request cannot be replayed, on this
replica or another. A request refused for another reason gives its id back, so the sender can
retry it with the same id, as Standard Webhooks senders do.
"""

from __future__ import annotations

from datetime import datetime

from inlet_bridge.store.db import Database


class SeenWebhookIds:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(
        self, source: str, webhook_id: str, *, now: datetime, expires_at: datetime
    ) -> bool:
        """True when the id was not seen from `source` (or has expired): it is now."""
        row = await self._db.fetchval("claim_webhook_id", source, webhook_id, now, expires_at)
        return row is not None

    async def release(self, source: str, webhook_id: str, *, seen_at: datetime) -> None:
        await self._db.execute("release_webhook_id", source, webhook_id, seen_at)

    async def purge(self, now: datetime) -> int:
        """Forget every id that can no longer be replayed; how many were forgotten."""
        status = await self._db.execute("purge_webhook_ids", now)
        return int(status.rsplit(" ", 1)[-1])
