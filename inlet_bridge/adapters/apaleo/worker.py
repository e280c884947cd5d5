"""How do apaleo notifications become events? Fetch the reservation, append its current state.

The worker claims stored notifications (SKIP LOCKED and a lease, like calls), fetches the
reservation each names and appends it through the same validation and group committer as every
other source. Every notification type leads to the same fetch of the current state, so a
duplicate changes nothing and notifications handled out of order converge: the event's
`occurred_at` is apaleo's `modified` and its id a digest of the content at that time
(`mapping.event_id`), so the fold orders states as apaleo made them and a re-fetch of an
unchanged reservation is a repeat. A fetch settles every notification of its reservation
received before it began. A failed fetch is retried with backoff (10 s doubling to 10 minutes,
for a day); a 404 is never a cancellation: it is recorded and logged, nothing is appended.

Now and then (`reconcile_interval_seconds`) one replica reads every reservation of the
property whose stay overlaps the window ahead (Inlet's 72 h plus a day), so a notification
apaleo never delivered is caught before its access is due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

import aiohttp
import msgspec

from inlet_bridge.adapters.apaleo import mapping
from inlet_bridge.adapters.apaleo.client import ApaleoClient, ApaleoError
from inlet_bridge.clock import Clock
from inlet_bridge.domain.config import HARD_MAX_WINDOW_HOURS, ApaleoConnection, HotelsConfig
from inlet_bridge.domain.retry import DeliveryPolicy, after_delivery_failure
from inlet_bridge.domain.validation import InvalidEvent, validate_event
from inlet_bridge.group_commit import GroupCommitter, IngestUnavailable
from inlet_bridge.metrics import Metrics
from inlet_bridge.store.apaleo import ClaimedNotification, NotificationStore, Outcome
from inlet_bridge.store.cursors import CursorStore

log = logging.getLogger(__name__)

# The window the reconciliation read covers: Inlet takes access at most 72 h ahead, and a
# check-in offset can start it up to 24 h before arrival.
LOOKAHEAD = timedelta(hours=HARD_MAX_WINDOW_HOURS + 24)
# A fetch that keeps failing is retried for a day; the reconciliation read covers it after.
FETCH_POLICY = DeliveryPolicy(
    first_delay_seconds=10.0, max_delay_seconds=600.0, max_attempts=1000, max_minutes=24 * 60
)
MAX_IDLE_SECONDS = 5.0


def metrics_label(name: str) -> str:
    """The `connection` label of an apaleo connection's poller metrics (its source)."""
    return f"apaleo-{name}"


class ApaleoClients:
    """One client per connection (each keeps its token), shared by the worker and the sink."""

    def __init__(self, session: aiohttp.ClientSession, hotels: HotelsConfig, clock: Clock) -> None:
        self._session = session
        self._hotels = hotels
        self._clock = clock
        self._clients: dict[str, ApaleoClient] = {}

    def get(self, name: str) -> ApaleoClient | None:
        connection = self._hotels.apaleo.get(name)
        if connection is None:
            return None
        if name not in self._clients:
            self._clients[name] = ApaleoClient(
                self._session,
                api_url=connection.api_url,
                identity_url=connection.identity_url,
                client_id=connection.client_id.reveal(),
                client_secret=connection.client_secret.reveal(),
                clock=self._clock,
                timeout_seconds=connection.timeout_seconds,
            )
        return self._clients[name]


class ReconcileReport(msgspec.Struct, frozen=True, kw_only=True):
    listed: int
    appended: int
    unchanged: int
    skipped: int


class ApaleoWorker:
    def __init__(
        self,
        *,
        hotels: HotelsConfig,
        clients: ApaleoClients,
        store: NotificationStore,
        cursors: CursorStore,
        committer: GroupCommitter,
        metrics: Metrics,
        clock: Clock,
        owner: str,
        concurrency: int,
        lease_seconds: float,
    ) -> None:
        self._hotels = hotels
        self.clients = clients
        self._store = store
        self._cursors = cursors
        self._committer = committer
        self._metrics = metrics
        self._clock = clock
        self._owner = owner
        self._concurrency = concurrency
        self._lease_seconds = lease_seconds
        self.wakeup = asyncio.Event()

    def wake(self) -> None:
        self.wakeup.set()

    async def release_all(self) -> None:
        await self._store.release(owner=self._owner)

    # --- notifications ---

    async def run_once(self) -> int:
        """Claim the due notifications and handle them; how many were claimed."""
        claimed = await self._store.claim(
            owner=self._owner,
            now=self._clock.now(),
            limit=self._concurrency,
            lease_seconds=self._lease_seconds,
        )
        # One fetch per reservation: a burst of notifications for one is settled by the first.
        await asyncio.gather(*(self._handle(c) for c in claimed))
        return len(claimed)

    async def _handle(self, claimed: ClaimedNotification) -> None:
        context = {
            "connection": claimed.connection,
            "notification_id": claimed.notification_id,
            "type": claimed.type,
            "booking_id": claimed.entity_id,
            "attempt": claimed.attempts,
        }
        connection = self._hotels.apaleo.get(claimed.connection)
        client = self.clients.get(claimed.connection)
        if connection is None or client is None:
            await self._finish(claimed, "failed", error="connection not configured")
            return
        fetched_at = self._clock.now()
        try:
            reservation = await client.reservation(claimed.entity_id)
            outcome, event_id = await self.append_reservation(
                claimed.connection, connection, reservation
            )
        except ApaleoError as exc:
            if exc.not_found:
                # Gone from apaleo (or never there): never taken as a cancellation.
                self._count(claimed.connection, "not_found")
                log.warning(
                    "apaleo reservation not found; access unchanged",
                    extra={"action": "apaleo.not_found", **context},
                )
                await self._finish(claimed, "not_found", fetched_at=fetched_at)
                return
            self._count(claimed.connection, exc.kind)
            await self._failed(claimed, exc.message, context)
            return
        except IngestUnavailable as exc:
            await self._failed(claimed, f"not stored: {exc.reason}", context)
            return
        await self._finish(claimed, outcome, fetched_at=fetched_at, event_id=event_id)
        log.info(
            "apaleo notification handled",
            extra={"action": "apaleo.fetched", "outcome": outcome, "event_id": event_id, **context},
        )

    async def _failed(
        self, claimed: ClaimedNotification, message: str, context: dict[str, object]
    ) -> None:
        now = self._clock.now()
        retry_at = after_delivery_failure(
            attempts=claimed.attempts,
            first_attempt_at=claimed.first_attempt_at,
            now=now,
            policy=FETCH_POLICY,
        )
        if retry_at is None:
            await self._finish(claimed, "failed", error=message)
            log.error(
                "apaleo reservation could not be fetched; given up (the reconciliation read"
                " still reads it if it arrives soon)",
                extra={"action": "apaleo.notification_failed", "detail": message, **context},
            )
            return
        await self._store.retry_later(claimed, owner=self._owner, at=retry_at, error=message)
        log.warning(
            "apaleo reservation could not be fetched; will retry",
            extra={
                "action": "apaleo.fetch_failed",
                "detail": message,
                "retry_at": retry_at.isoformat(),
                **context,
            },
        )

    async def _finish(
        self,
        claimed: ClaimedNotification,
        outcome: Outcome,
        *,
        fetched_at: datetime | None = None,
        event_id: str | None = None,
        error: str | None = None,
    ) -> None:
        await self._store.finish(
            claimed,
            owner=self._owner,
            outcome=outcome,
            now=self._clock.now(),
            fetched_at=fetched_at,
            event_id=event_id,
            error=error,
        )

    def _count(self, name: str, kind: str) -> None:
        self._metrics.poller_errors.labels(connection=metrics_label(name), kind=kind).inc()

    # --- one reservation's current state into the log ---

    async def append_reservation(
        self, name: str, connection: ApaleoConnection, reservation: mapping.ApaleoReservation
    ) -> tuple[Outcome, str | None]:
        """Append the reservation's state unless it is the one already logged; the outcome and
        the id of the event stored (None when nothing new was stored)."""
        source = connection.source(name)
        result = mapping.reservation_to_event(
            reservation,
            source=source,
            property_id=connection.property_id,
            apaleo_property_id=connection.apaleo_property_id,
            unit_key=connection.unit_key,
            fetched_at=self._clock.now(),
        )
        if result.event is None:
            self._count(name, "skipped")
            log.warning(
                "apaleo reservation skipped",
                extra={
                    "action": "apaleo.skipped",
                    "connection": name,
                    "booking_id": reservation.id,
                    "reason": result.skipped_reason,
                },
            )
            return "skipped", None
        event = result.event
        last = await self._cursors.last_event_for_stay(source, event.booking.stays[0].stay_id)
        valid = validate_event(event)
        if isinstance(valid, InvalidEvent):
            self._count(name, "invalid")
            log.warning(
                "apaleo reservation refused by validation",
                extra={
                    "action": "apaleo.invalid",
                    "connection": name,
                    "booking_id": event.booking.booking_id,
                    "problems": [f"{p.path}: {p.message}" for p in valid.problems],
                },
            )
            return "skipped", None
        if last is not None and last.booking == valid.event.booking:
            return "done", None  # the state already logged (a duplicate notification)
        appended = await self._committer.append([valid])
        if appended.results[0].status != "stored":
            return "done", None
        if valid.warnings:
            log.warning(
                "contact details dropped",
                extra={
                    "action": "ingest.contact_dropped",
                    "connection": name,
                    "source": source,
                    "event_id": event.event_id,
                    "booking_id": event.booking.booking_id,
                    "property_id": event.booking.property_id,
                    "paths": [w.path for w in valid.warnings],
                },
            )
        return "done", event.event_id

    # --- the reconciliation read ---

    async def reconcile_once(self, name: str) -> ReconcileReport:
        """Read every reservation whose stay overlaps the window ahead and append what changed;
        raises ApaleoError when apaleo fails (nothing is lost: the next read tries again)."""
        connection = self._hotels.apaleo[name]
        client = self.clients.get(name)
        assert client is not None
        label = metrics_label(name)
        cursor = await self._cursors.get(label)
        last = cursor.last_success_at if cursor is not None else None
        self._metrics.poller_last_success.labels(connection=label).set(
            last.timestamp() if last is not None else 0.0
        )
        now = self._clock.now()
        try:
            listed = await client.reservations_overlapping(
                connection.apaleo_property_id, now, now + LOOKAHEAD
            )
        except ApaleoError as exc:
            self._count(name, exc.kind)
            await self._cursors.failed(label, exc.message, now)
            raise
        appended = unchanged = skipped = 0
        for reservation in listed:
            outcome, event_id = await self.append_reservation(name, connection, reservation)
            if outcome == "skipped":
                skipped += 1
            elif event_id is None:
                unchanged += 1
            else:
                appended += 1
        await self._cursors.save(label, sync_time=now, held=(), now=now)
        self._metrics.poller_last_success.labels(connection=label).set(now.timestamp())
        report = ReconcileReport(
            listed=len(listed), appended=appended, unchanged=unchanged, skipped=skipped
        )
        log.info(
            "apaleo reconciliation read done",
            extra={
                "action": "apaleo.reconciled",
                "connection": name,
                **msgspec.to_builtins(report),
            },
        )
        return report

    async def reconcile_due(self, name: str) -> bool:
        """Whether no replica has read the window within the interval."""
        cursor = await self._cursors.get(metrics_label(name))
        last = cursor.last_success_at if cursor is not None else None
        interval = timedelta(seconds=self._hotels.apaleo[name].reconcile_interval_seconds)
        return last is None or self._clock.now() - last >= interval

    # --- the loops ---

    async def notification_loop(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            self.wakeup.clear()
            due: datetime | None = None
            try:
                if await self.run_once():
                    continue
                due = await self._store.next_due()
            except Exception:
                log.exception("apaleo loop error", extra={"action": "apaleo.loop_error"})
            timeout = MAX_IDLE_SECONDS
            if due is not None:
                timeout = min(timeout, max(0.0, (due - self._clock.now()).total_seconds()))
            await _wait_any(stopping, self.wakeup, timeout)

    async def reconcile_loop(self, name: str, stopping: asyncio.Event) -> None:
        """Read the window whenever it is due; one replica at a time (advisory lock)."""
        interval = self._hotels.apaleo[name].reconcile_interval_seconds
        while not stopping.is_set():
            try:
                async with self._cursors.leadership(metrics_label(name)) as lock:
                    if lock.leader and await self.reconcile_due(name):
                        await self.reconcile_once(name)
            except ApaleoError as exc:
                log.warning(
                    "apaleo reconciliation read failed; tried again later",
                    extra={
                        "action": "apaleo.reconcile_failed",
                        "connection": name,
                        "kind": exc.kind,
                        "status": exc.status,
                    },
                )
            except Exception:
                log.exception(
                    "apaleo reconciliation read failed",
                    extra={"action": "apaleo.reconcile_error", "connection": name},
                )
            await _wait_any(stopping, asyncio.Event(), min(interval, 60.0))


async def _wait_any(stopping: asyncio.Event, wakeup: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            stop = asyncio.ensure_future(stopping.wait())
            wake = asyncio.ensure_future(wakeup.wait())
            try:
                await asyncio.wait({stop, wake}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.cancel()
                wake.cancel()
