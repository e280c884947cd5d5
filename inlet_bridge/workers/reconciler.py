"""Who turns bookings into planned Inlet calls? The reconciler: claim, fold, plan, write.

It wakes when events are committed (in-process signal, and LISTEN/NOTIFY from other replicas)
and when a booking's look is due (send window opening, access ending). Several workers drain
the queue at once, each a batch at a time (SKIP LOCKED: one worker per booking); every claim
takes marked bookings first, then due ones, and only then the sweep's.

The sweep re-plans every active booking as a safety net and counts what it finds, which should be
nothing. It is spread over its interval: a chunk of bookings is marked (one statement) every
interval / chunks, so the swept work never comes in one burst and never goes before fresh work.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from datetime import datetime, timedelta

from inlet_bridge.clock import Clock
from inlet_bridge.domain.config import HotelsConfig
from inlet_bridge.domain.reconcile import Decision, decide
from inlet_bridge.metrics import Metrics
from inlet_bridge.store.reconcile import ClaimedBooking, Key, Reconciled, ReconcileStore

log = logging.getLogger(__name__)

RETRY_PAUSE = timedelta(seconds=30)
SWEEP_CHUNK = 1000
# A cycle's chunks are spread over this share of the interval, so a cycle ends before the next.
SWEEP_SPREAD = 0.9
_START: Key = ("", "")


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
        concurrency: int = 1,
        sweep_interval_seconds: float = 600.0,
        sweep_chunk: int = SWEEP_CHUNK,
    ) -> None:
        self._store = store
        self._hotels = hotels
        self._metrics = metrics
        self._clock = clock
        self._owner = owner
        self._batch = batch
        self._lease_seconds = lease_seconds
        self._concurrency = concurrency
        self._sweep_interval = timedelta(seconds=sweep_interval_seconds)
        self._sweep_chunk = sweep_chunk
        self._sweep_after: Key | None = None  # where the cycle under way goes on; None: between
        self._sweep_cycle_at: datetime | None = None
        self._sweep_next_at: datetime | None = None  # None: a cycle starts at the next step
        self._sweep_spacing = timedelta(0)
        self._found = 0  # operations planned for swept bookings, since start
        # Called after each batch that planned calls (the runtime wakes the call worker), so
        # calls go out while the rest of the queue is still being planned.
        self.on_planned: Callable[[], None] | None = None

    @property
    def lease_seconds(self) -> float:
        """How long a claimed booking is this reconciler's before another may take it over."""
        return self._lease_seconds

    @property
    def next_sweep_at(self) -> datetime | None:
        """When the sweep marks its next chunk (None: at the next step)."""
        return self._sweep_next_at

    async def run_once(self) -> int:
        """Reconcile every booking marked, due or swept now; returns how many were reconciled.

        One worker drains the queue; each time it claims a full batch (more is waiting) another
        worker joins, up to `concurrency`: a trickle costs one claim, a wave is planned by every
        worker at once."""
        helpers: list[asyncio.Task[int]] = []
        total = 0
        try:
            while True:
                claimed = await self._claim()
                if len(claimed) == self._batch and len(helpers) < self._concurrency - 1:
                    helpers.append(asyncio.create_task(self._drain()))
                if claimed:
                    await self._reconcile(claimed)
                total += len(claimed)
                if len(claimed) < self._batch:
                    break
        finally:
            total += sum(await asyncio.gather(*helpers))
        return total

    async def release_all(self) -> None:
        """Give back booking leases still held (shutdown)."""
        await self._store.release_all(owner=self._owner)

    async def sweep(self) -> int:
        """A whole sweep at once: mark every active booking, reconcile them all; returns how many
        operations that planned for swept bookings (nothing else had planned them)."""
        now = self._clock.now()
        after: Key | None = _START
        while after is not None:
            chunk = await self._store.sweep_mark(after=after, now=now, limit=self._sweep_chunk)
            after = chunk.last
        before = self._found
        await self.run_once()
        return self._found - before

    async def sweep_step(self) -> int:
        """Mark the sweep's next chunk if it is time; returns how many bookings it marked.

        A cycle starts with a count of the bookings, which sets the spacing of its chunks: the
        whole table is marked within SWEEP_SPREAD of the interval, and the next cycle starts one
        interval after this one did.
        """
        now = self._clock.now()
        if self._sweep_next_at is not None and now < self._sweep_next_at:
            return 0
        if self._sweep_after is None:
            self._sweep_cycle_at = now
            total = await self._store.booking_count()
            chunks = max(1, math.ceil(total / self._sweep_chunk))
            self._sweep_spacing = self._sweep_interval * SWEEP_SPREAD / chunks
            self._sweep_after = _START
        chunk = await self._store.sweep_mark(
            after=self._sweep_after, now=now, limit=self._sweep_chunk
        )
        if chunk.last is None:
            assert self._sweep_cycle_at is not None
            self._sweep_after = None
            self._sweep_next_at = self._sweep_cycle_at + self._sweep_interval
        else:
            self._sweep_after = chunk.last
            self._sweep_next_at = now + self._sweep_spacing
        return chunk.marked

    async def _claim(self) -> list[ClaimedBooking]:
        return await self._store.claim(
            owner=self._owner,
            now=self._clock.now(),
            limit=self._batch,
            lease_seconds=self._lease_seconds,
        )

    async def _drain(self) -> int:
        """One more worker: claim a batch, reconcile it, until a claim comes back short."""
        total = 0
        while True:
            claimed = await self._claim()
            if claimed:
                await self._reconcile(claimed)
            total += len(claimed)
            if len(claimed) < self._batch:
                return total

    def _capped_doors(self, property_id: str) -> dict[str, int]:
        """The property's doors with a capacity, and their capacities."""
        prop = self._hotels.properties.get(property_id)
        if prop is None:
            return {}
        return {
            door: limit.capacity
            for door, limit in sorted(prop.doors.items())
            if limit.capacity is not None
        }

    async def _reconcile(self, batch: list[ClaimedBooking]) -> None:
        now = self._clock.now()
        results = await self._store.reconcile_batch(
            batch,
            owner=self._owner,
            now=now,
            decide=lambda inputs: decide(inputs, self._hotels, now),
            capped_doors=self._capped_doors,
        )
        repairs = planned = 0
        for result in results:
            decision = await self._outcome(result, now)
            if decision is not None:
                planned += len(decision.operations)
                if result.booking.kind == "swept":
                    repairs += len(decision.operations)
        if planned and self.on_planned is not None:
            self.on_planned()
        if repairs:
            self._found += repairs
            self._metrics.sweep_repairs.inc(repairs)
            log.warning(
                "sweep found work nothing else had planned",
                extra={"action": "reconcile.sweep_repairs", "operations": repairs},
            )

    async def _outcome(self, result: Reconciled, now: datetime) -> Decision | None:
        booking = result.booking
        context = {"source": booking.source, "booking_id": booking.booking_id}
        if result.error is not None:
            self._metrics.reconciles.labels(result="error").inc()
            log.error(
                "reconcile failed",
                exc_info=result.error,
                extra={"action": "reconcile.failed", **context},
            )
            await self._store.release(booking, owner=self._owner, retry_at=now + RETRY_PAUSE)
            return None
        decision = result.decision
        if decision is None:
            self._metrics.reconciles.labels(result="lease_lost").inc()
            return None
        outcome = "planned" if decision.operations else "converged"
        self._metrics.reconciles.labels(result=outcome).inc()
        log.info(
            "booking reconciled",
            extra={
                "action": f"reconcile.{outcome}",
                "kind": booking.kind,
                "operations": [f"{op.kind}:{op.grant_key}" for op in decision.operations],
                "issues": [f"{i.kind}:{i.stay_id}" for i in decision.desired.issues],
                "next_look_at": decision.next_look_at.isoformat()
                if decision.next_look_at
                else None,
                **context,
            },
        )
        return decision
