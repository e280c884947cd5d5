"""Who turns bookings into planned Inlet calls? The reconciler: claim, fold, plan, write.

It wakes when events are committed (in-process signal, and LISTEN/NOTIFY from other replicas)
and when a booking's look is due (send window opening, access ending). A slow periodic sweep
re-plans every active booking as a safety net and counts what it finds, which should be nothing.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from service.clock import Clock
from service.domain.reconcile import Decision, decide
from service.metrics import Metrics
from service.properties import HotelsConfig
from service.store.db import LeaseLost
from service.store.reconcile import ClaimedBooking, ReconcileStore

log = logging.getLogger(__name__)

RETRY_PAUSE = timedelta(seconds=30)


class Reconciler:
    def __init__(
        self,
        *,
        store: ReconcileStore,
        hotels: HotelsConfig,
        metrics: Metrics,
        clock: Clock,
        owner: str,
        batch: int,
        lease_seconds: float,
    ) -> None:
        self._store = store
        self._hotels = hotels
        self._metrics = metrics
        self._clock = clock
        self._owner = owner
        self._batch = batch
        self._lease_seconds = lease_seconds

    @property
    def lease_seconds(self) -> float:
        """How long a claimed booking is this reconciler's before another may take it over."""
        return self._lease_seconds

    async def run_once(self) -> int:
        """Reconcile every booking marked or due now (in batches); returns how many."""
        total = 0
        while True:
            claimed = await self._store.claim(
                owner=self._owner,
                now=self._clock.now(),
                limit=self._batch,
                lease_seconds=self._lease_seconds,
            )
            for booking in claimed:
                await self._reconcile(booking)
            total += len(claimed)
            if len(claimed) < self._batch:
                return total

    async def release_all(self) -> None:
        """Give back booking leases still held (shutdown)."""
        await self._store.release_all(owner=self._owner)

    async def sweep(self) -> int:
        """Mark every active booking for a look; returns how many operations that planned."""
        bookings = await self._store.active_bookings()
        now = self._clock.now()
        for source, booking_id in bookings:
            await self._store.mark(source, booking_id, now)
        found = 0
        while True:
            claimed = await self._store.claim(
                owner=self._owner, now=now, limit=self._batch, lease_seconds=self._lease_seconds
            )
            for booking in claimed:
                decision = await self._reconcile(booking)
                if decision is not None:
                    found += len(decision.operations)
            if len(claimed) < self._batch:
                break
        if found:
            self._metrics.sweep_repairs.inc(found)
            log.warning(
                "sweep found work nothing else had planned",
                extra={"action": "reconcile.sweep_repairs", "operations": found},
            )
        return found

    def _capped_doors(self, property_id: str) -> list[str]:
        prop = self._hotels.properties.get(property_id)
        if prop is None:
            return []
        return sorted(door for door, limit in prop.doors.items() if limit.capacity is not None)

    async def _reconcile(self, booking: ClaimedBooking) -> Decision | None:
        now = self._clock.now()
        context = {"source": booking.source, "booking_id": booking.booking_id}
        try:
            decision = await self._store.reconcile(
                booking,
                owner=self._owner,
                now=now,
                decide=lambda inputs: decide(inputs, self._hotels, now),
                capped_doors=self._capped_doors(booking.property_id),
            )
        except LeaseLost:
            self._metrics.reconciles.labels(result="lease_lost").inc()
            return None
        except Exception:
            self._metrics.reconciles.labels(result="error").inc()
            log.exception("reconcile failed", extra={"action": "reconcile.failed", **context})
            await self._store.release(booking, owner=self._owner, retry_at=now + RETRY_PAUSE)
            return None
        if decision is None:
            return None
        result = "planned" if decision.operations else "converged"
        self._metrics.reconciles.labels(result=result).inc()
        log.info(
            "booking reconciled",
            extra={
                "action": f"reconcile.{result}",
                "operations": [f"{op.kind}:{op.grant_key}" for op in decision.operations],
                "issues": [f"{i.kind}:{i.stay_id}" for i in decision.desired.issues],
                "next_look_at": decision.next_look_at.isoformat()
                if decision.next_look_at
                else None,
                **context,
            },
        )
        return decision
