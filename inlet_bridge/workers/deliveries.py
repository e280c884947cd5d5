"""Who tells the PMS? The delivery worker: claim due deliveries, hand each to its sink, record it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from inlet_bridge.clock import Clock
from inlet_bridge.domain.retry import DeliveryPolicy, after_delivery_failure
from inlet_bridge.metrics import Metrics
from inlet_bridge.sinks import Sink
from inlet_bridge.store.deliveries import ClaimedDelivery, DeliveryStore

log = logging.getLogger(__name__)


class DeliveryWorker:
    def __init__(
        self,
        *,
        store: DeliveryStore,
        sinks: Mapping[str, Sink],
        metrics: Metrics,
        clock: Clock,
        owner: str,
        concurrency: int,
        lease_seconds: float,
        policy: DeliveryPolicy | None = None,
    ) -> None:
        self._store = store
        self._sinks = sinks
        self._metrics = metrics
        self._clock = clock
        self._owner = owner
        self._concurrency = concurrency
        self._lease_seconds = lease_seconds
        self._policy = policy or DeliveryPolicy()

    async def release_all(self) -> None:
        """Give back leases still held (shutdown): another replica delivers at once."""
        await self._store.release(owner=self._owner)

    async def run_once(self) -> int:
        deliveries = await self._store.claim(
            owner=self._owner,
            now=self._clock.now(),
            limit=self._concurrency,
            lease_seconds=self._lease_seconds,
        )
        if deliveries:
            await asyncio.gather(*(self._deliver(d) for d in deliveries))
        return len(deliveries)

    async def _deliver(self, delivery: ClaimedDelivery) -> None:
        kind = delivery.sink.partition(":")[0]
        sink = self._sinks.get(kind)
        data = delivery.change.data
        context = {
            "delivery_id": delivery.id,
            "sink": delivery.sink,
            "change": delivery.change.type,
            "grant_key": data.grant_key,
            "source": data.source,
            "booking_id": data.booking_id,
            "attempt": delivery.attempts,
        }
        if sink is None:
            status, message, ok = None, f"no sink of kind {kind!r}", False
        else:
            result = await sink.deliver(delivery)
            status, message, ok = result.status, result.message, result.ok
        now = self._clock.now()
        self._metrics.deliveries.labels(sink=kind, outcome="success" if ok else "failure").inc()
        if ok:
            await self._store.delivered(delivery, owner=self._owner, now=now, status=status)
            log.info("access change delivered", extra={"action": "delivery.delivered", **context})
            return
        retry_at = after_delivery_failure(
            attempts=delivery.attempts,
            first_attempt_at=delivery.first_attempt_at,
            now=now,
            policy=self._policy,
        )
        if retry_at is None:
            escalation = await self._store.gave_up(
                delivery, owner=self._owner, now=now, status=status, message=message
            )
            if escalation is not None:
                self._metrics.escalations_raised.labels(
                    operation=kind, severity="high", reason=f"{kind}_failed"
                ).inc()
            log.error(
                "access change not delivered; escalated",
                extra={
                    "action": "delivery.escalated",
                    "status": status,
                    "detail": message,
                    **context,
                },
            )
            return
        await self._store.retry_later(
            delivery, owner=self._owner, at=retry_at, status=status, message=message
        )
        log.warning(
            "access change delivery failed; will retry",
            extra={
                "action": "delivery.retry_scheduled",
                "status": status,
                "detail": message,
                "retry_at": retry_at.isoformat(),
                **context,
            },
        )
