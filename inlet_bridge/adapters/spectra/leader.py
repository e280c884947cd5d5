"""Which replica polls a Spectra connection, and how often? The poller's leadership loop.

Every replica runs this loop for every connection; only the one holding the connection's lock
(a PostgreSQL advisory lock, `CursorStore.leadership`) polls. The lock is asked for again
before every poll: if its database session ended (and another replica may have taken it),
this replica steps down and tries again later. A failed poll backs off (`poll_delay`: the
interval doubled per failure in a row, capped) and is recorded on the connection's cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from inlet_bridge.adapters.spectra.client import SpectraError
from inlet_bridge.adapters.spectra.poller import SpectraPoller
from inlet_bridge.clock import Clock
from inlet_bridge.domain.retry import poll_delay
from inlet_bridge.metrics import Metrics
from inlet_bridge.store.cursors import CursorStore, Leadership

log = logging.getLogger(__name__)

MAX_POLL_BACKOFF_SECONDS = 600.0


class SpectraLeader:
    """Polls one connection while this replica leads it; `run` returns once `stopping` is set."""

    def __init__(
        self,
        poller: SpectraPoller,
        *,
        cursors: CursorStore,
        metrics: Metrics,
        clock: Clock,
        on_polled: Callable[[], None],
    ) -> None:
        self.poller = poller
        self.cursors = cursors
        self._metrics = metrics
        self._clock = clock
        self._on_polled = on_polled  # a poll may have appended events: wake the reconciler
        self._stopping = asyncio.Event()

    @property
    def name(self) -> str:
        return self.poller.name

    async def run(self, interval: float, stopping: asyncio.Event) -> None:
        self._stopping = stopping
        while not stopping.is_set():
            try:
                async with self.cursors.leadership(self.name) as lock:
                    await self._lead(lock, interval)
            except Exception:
                # The database is unreachable (or the lock's session broke mid-poll): the
                # loop must outlive it, or the connection would never be polled again.
                log.exception(
                    "spectra poller could not lead",
                    extra={"action": "spectra.leadership_error", "connection": self.name},
                )
            if not stopping.is_set():
                await self._pause(interval)  # another replica polls; try again later

    async def _lead(self, lock: Leadership, interval: float) -> None:
        failures = 0
        while lock.leader and not self._stopping.is_set():
            if not await lock.still_held():
                log.warning(
                    "spectra poller lost its lock; stepping down",
                    extra={"action": "spectra.leadership_lost", "connection": self.name},
                )
                return
            try:
                await self.poller.poll_once()
                failures = 0
                self._on_polled()
            except SpectraError as exc:
                failures += 1
                self._metrics.poller_errors.labels(connection=self.name, kind=exc.kind).inc()
                await self.cursors.failed(self.name, exc.message, self._clock.now())
                log.warning(
                    "spectra poll failed; backing off",
                    extra={
                        "action": "spectra.poll_failed",
                        "connection": self.name,
                        "kind": exc.kind,
                        "status": exc.status,
                        "failures": failures,
                    },
                )
            except Exception:
                failures += 1
                self._metrics.poller_errors.labels(connection=self.name, kind="internal").inc()
                log.exception(
                    "poll failed",
                    extra={"action": "spectra.poll_error", "connection": self.name},
                )
            await self._pause(
                poll_delay(
                    interval=interval, failures=failures, max_backoff=MAX_POLL_BACKOFF_SECONDS
                )
            )

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
