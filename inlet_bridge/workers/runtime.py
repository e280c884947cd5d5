"""How do the workers run inside the service, and how do they stop? The runtime.

The reconciler and the call worker run as aiojobs jobs. Each loop sleeps until woken (a commit
here, a NOTIFY from another replica, a finished call) or until the next due time, capped so
a moved clock or a missed signal is noticed soon. On shutdown (as soon as the server stops
listening) the loops stop taking work, calls in flight finish within the grace period counted
from then, and leases still held are given back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime

import aiohttp
import aiojobs
from aiohttp import web

from inlet_bridge.adapters.apaleo.worker import ApaleoClients, ApaleoWorker
from inlet_bridge.adapters.spectra.client import SpectraClient
from inlet_bridge.adapters.spectra.leader import SpectraLeader
from inlet_bridge.adapters.spectra.poller import SpectraPoller
from inlet_bridge.clock import Clock
from inlet_bridge.domain.config import HotelsConfig
from inlet_bridge.domain.retry import DeliveryPolicy
from inlet_bridge.group_commit import GroupCommitter
from inlet_bridge.inlet.client import InletClient
from inlet_bridge.keys import CLOCK, COMMITTER, DATABASE, HOTELS, METRICS, RUNTIME, SETTINGS
from inlet_bridge.metrics import Metrics
from inlet_bridge.settings import Settings
from inlet_bridge.sinks.apaleo import ApaleoSink
from inlet_bridge.sinks.spectra import SpectraSink
from inlet_bridge.sinks.webhook import WebhookSink
from inlet_bridge.store.apaleo import NotificationStore
from inlet_bridge.store.calls import CallStore, ClaimedCall
from inlet_bridge.store.cursors import CursorStore
from inlet_bridge.store.db import Database
from inlet_bridge.store.deliveries import DeliveryStore
from inlet_bridge.store.reconcile import ReconcileStore
from inlet_bridge.workers.calls import CallWorker
from inlet_bridge.workers.deliveries import DeliveryWorker
from inlet_bridge.workers.reconciler import Reconciler

log = logging.getLogger(__name__)

MAX_IDLE_SECONDS = 5.0
ERROR_PAUSE_SECONDS = 5.0
NOTIFY_CHANNEL = "inlet_bridge_marked"


class Runtime:
    def __init__(
        self,
        reconciler: Reconciler,
        calls: CallWorker,
        deliveries: DeliveryWorker,
        clock: Clock,
        spectra: Sequence[SpectraLeader] = (),
        apaleo: ApaleoWorker | None = None,
    ) -> None:
        self.reconciler = reconciler
        reconciler.on_planned = self.wake_calls
        calls.on_slot_free = self.wake_calls
        calls.on_marked = self.wake_reconciler
        calls.on_changed = self.wake_deliveries
        self.apaleo = apaleo  # apaleo notifications and reconciliation reads (adapters/apaleo)
        self.calls = calls
        self.deliveries = deliveries
        self.spectra = list(spectra)  # one leadership loop per Spectra connection
        self._clock = clock
        self.reconcile_wakeup = asyncio.Event()
        self.calls_wakeup = asyncio.Event()
        self.deliveries_wakeup = asyncio.Event()
        self.stopping = asyncio.Event()

    @property
    def pollers(self) -> list[SpectraPoller]:
        return [leader.poller for leader in self.spectra]

    def spectra_leader(self, connection: str) -> SpectraLeader:
        (leader,) = [leader for leader in self.spectra if leader.name == connection]
        return leader

    def wake_reconciler(self) -> None:
        self.reconcile_wakeup.set()

    def wake_deliveries(self) -> None:
        self.deliveries_wakeup.set()

    def wake_calls(self) -> None:
        self.calls_wakeup.set()

    async def reconcile_loop(self, next_due: Callable[[], Awaitable[datetime | None]]) -> None:
        while not self.stopping.is_set():
            self.reconcile_wakeup.clear()
            try:
                # The sweep marks a chunk when one is due; fresh work is still claimed first.
                await self.reconciler.sweep_step()
                if await self.reconciler.run_once():
                    self.wake_calls()
                due = _earliest(await next_due(), self.reconciler.next_sweep_at)
            except Exception:
                log.exception("reconcile loop error", extra={"action": "reconcile.loop_error"})
                due = None
            await self._sleep(self.reconcile_wakeup, due)

    async def call_loop(self, next_due: Callable[[], Awaitable[datetime | None]]) -> None:
        """Keep up to the concurrency of calls in flight; a slow call never holds up the rest."""
        running: set[asyncio.Task[None]] = set()

        def finished(task: asyncio.Task[None]) -> None:
            running.discard(task)
            # A slot is free. The reconciler and the delivery loop are woken by the call worker
            # only when an outcome marked a booking or stored an access change (a wake-up costs
            # each of them a claim and a look at what is due next), or here when the outcome
            # could not be recorded: the database may be back, and their loops wait otherwise.
            self.wake_calls()
            if not task.cancelled() and task.exception() is not None:
                self.wake_reconciler()
                self.wake_deliveries()

        def start(call: ClaimedCall) -> None:
            task = asyncio.create_task(self.calls.execute(call))
            running.add(task)
            task.add_done_callback(finished)

        def slot_free() -> None:
            # A call's answer is in: a call claimed ahead takes its slot now, without waiting
            # for this loop to wake and claim; the loop is woken to claim the next ones.
            if not self.stopping.is_set() and (call := self.calls.next_ready()) is not None:
                start(call)
            self.wake_calls()

        self.calls.on_slot_free = slot_free
        try:
            while not self.stopping.is_set():
                self.calls_wakeup.clear()
                due: datetime | None = None
                try:
                    claimed = await self.calls.claim_free(ahead=True)
                    for call in claimed:
                        start(call)
                    if claimed or self.calls.claimed_ahead:
                        continue  # more may be due
                    if not running:
                        due = await next_due()
                except Exception:
                    log.exception("call loop error", extra={"action": "calls.loop_error"})
                await self._sleep(self.calls_wakeup, due)
        finally:
            self.calls.on_slot_free = self.wake_calls
            # Calls in flight finish (the scheduler's close timeout bounds this), then stop;
            # calls claimed ahead are given back with the other leases (`release_all`).
            await asyncio.gather(*running, return_exceptions=True)

    async def delivery_loop(self, next_due: Callable[[], Awaitable[datetime | None]]) -> None:
        while not self.stopping.is_set():
            self.deliveries_wakeup.clear()
            try:
                if await self.deliveries.run_once():
                    continue
                due = await next_due()
            except Exception:
                log.exception("delivery loop error", extra={"action": "delivery.loop_error"})
                due = None
            await self._sleep(self.deliveries_wakeup, due)

    async def _sleep(self, wakeup: asyncio.Event, due: datetime | None) -> None:
        timeout = MAX_IDLE_SECONDS
        if due is not None:
            timeout = min(timeout, max(0.0, (due - self._clock.now()).total_seconds()))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                stop = asyncio.ensure_future(self.stopping.wait())
                wake = asyncio.ensure_future(wakeup.wait())
                try:
                    await asyncio.wait({stop, wake}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    stop.cancel()
                    wake.cancel()


def _earliest(*times: datetime | None) -> datetime | None:
    known = [t for t in times if t is not None]
    return min(known) if known else None


def build_runtime(
    *,
    settings: Settings,
    hotels: HotelsConfig,
    db: Database,
    metrics: Metrics,
    clock: Clock,
    client: InletClient,
    session: aiohttp.ClientSession,
    committer: GroupCommitter,
    owner: str,
) -> Runtime:
    """The workers of one replica; tests build them the same way and drive `run_once`."""
    apaleo_clients = ApaleoClients(session, hotels, clock)
    runtime = Runtime(
        Reconciler(
            store=ReconcileStore(db),
            hotels=hotels,
            metrics=metrics,
            clock=clock,
            owner=owner,
            batch=settings.reconcile_batch,
            lease_seconds=settings.reconcile_lease_seconds,
            concurrency=settings.reconcile_concurrency,
            sweep_interval_seconds=settings.sweep_interval_seconds,
        ),
        CallWorker(
            store=CallStore(db),
            client=client,
            hotels=hotels,
            metrics=metrics,
            clock=clock,
            owner=owner,
            concurrency=settings.call_concurrency,
            lease_seconds=settings.lease_seconds,
        ),
        DeliveryWorker(
            store=DeliveryStore(db),
            sinks={
                "webhook": WebhookSink(session, hotels, clock),
                "spectra": SpectraSink(session, hotels),
                "apaleo": ApaleoSink(apaleo_clients),
            },
            metrics=metrics,
            clock=clock,
            owner=owner,
            concurrency=settings.call_concurrency,
            lease_seconds=settings.lease_seconds,
            policy=DeliveryPolicy.within(hotels.retry),
        ),
        clock,
        apaleo=ApaleoWorker(
            hotels=hotels,
            clients=apaleo_clients,
            store=NotificationStore(db),
            cursors=CursorStore(db),
            committer=committer,
            metrics=metrics,
            clock=clock,
            owner=owner,
            concurrency=settings.call_concurrency,
            lease_seconds=settings.lease_seconds,
        ),
    )
    runtime.spectra = [
        SpectraLeader(
            SpectraPoller(
                name=name,
                connection=connection,
                prop=hotels.properties[connection.property_id],
                client=SpectraClient(
                    session,
                    base_url=connection.base_url,
                    username=connection.username.reveal(),
                    password=connection.password.reveal(),
                    hotel_code=connection.hotel_code,
                    timeout_seconds=connection.timeout_seconds,
                ),
                cursors=CursorStore(db),
                committer=committer,
                metrics=metrics,
                clock=clock,
            ),
            cursors=CursorStore(db),
            metrics=metrics,
            clock=clock,
            on_polled=runtime.wake_reconciler,
        )
        for name, connection in sorted(hotels.spectra.items())
    ]
    return runtime


async def workers_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    hotels = app[HOTELS]
    db = app[DATABASE]
    session = aiohttp.ClientSession()
    client = InletClient(
        session, base_url=hotels.inlet.base_url, timeout_seconds=hotels.inlet.timeout_seconds
    )
    runtime = build_runtime(
        settings=settings,
        hotels=hotels,
        db=db,
        metrics=app[METRICS],
        clock=app[CLOCK],
        client=client,
        session=session,
        committer=app[COMMITTER],
        owner=f"{settings.instance_id}:{id(app):x}",
    )
    app[RUNTIME] = runtime
    app[COMMITTER].on_commit(runtime.wake_reconciler)
    loop = asyncio.get_running_loop()
    stop_requested_at: float | None = None

    async def stop_taking_work(_: web.Application) -> None:
        # On SIGTERM aiohttp closes the listening sockets, runs on_shutdown, waits up to its
        # shutdown timeout for the requests in flight, and only then runs the cleanup below.
        # Stop taking work here, and count the grace period from here, so one slow request
        # neither lets the workers claim new calls nor doubles the time to exit.
        nonlocal stop_requested_at
        if stop_requested_at is None:
            stop_requested_at = loop.time()
        runtime.stopping.set()

    # on_shutdown is still open while cleanup contexts start (aiohttp freezes the app after).
    with contextlib.suppress(RuntimeError):
        app.on_shutdown.append(stop_taking_work)
    scheduler = aiojobs.Scheduler(close_timeout=settings.shutdown_timeout_seconds)
    reconcile_store = ReconcileStore(db)
    call_store = CallStore(db)
    async with db.listening(NOTIFY_CHANNEL, runtime.wake_reconciler):
        await scheduler.spawn(runtime.reconcile_loop(reconcile_store.next_due))
        await scheduler.spawn(runtime.call_loop(call_store.next_due))
        await scheduler.spawn(runtime.delivery_loop(DeliveryStore(db).next_due))
        for leader in runtime.spectra:
            interval = hotels.spectra[leader.name].poll_interval_seconds
            await scheduler.spawn(leader.run(interval, runtime.stopping))
        if runtime.apaleo is not None and hotels.apaleo:
            await scheduler.spawn(runtime.apaleo.notification_loop(runtime.stopping))
            for name in sorted(hotels.apaleo):
                await scheduler.spawn(runtime.apaleo.reconcile_loop(name, runtime.stopping))
        log.info("workers started", extra={"action": "workers.started"})
        try:
            yield
        finally:
            runtime.stopping.set()
            # In-flight calls finish (within the grace period); then leases still held go back.
            grace = settings.shutdown_timeout_seconds
            if stop_requested_at is not None:
                grace = max(0.0, grace - (loop.time() - stop_requested_at))
            # The wait runs in a task of its own: aiohttp runs this cleanup in the main task
            # after cancelling it, and there an asyncio.timeout that expires raises
            # CancelledError instead of TimeoutError on Python 3.11.0-3.11.2 (gh-102780),
            # which would skip giving the leases back below.
            closing = asyncio.ensure_future(scheduler.wait_and_close(timeout=grace))
            await asyncio.wait({closing})
            if closing.exception() is not None:
                log.error(
                    "workers did not stop cleanly",
                    exc_info=closing.exception(),
                    extra={"action": "workers.stop_failed"},
                )
            try:
                await runtime.calls.release_all()
                await runtime.deliveries.release_all()
                await runtime.reconciler.release_all()
                if runtime.apaleo is not None:
                    await runtime.apaleo.release_all()
            except Exception:
                # Not fatal: the leases expire (LEASE_SECONDS) and another replica takes the
                # calls then; but say so, or the delay has no explanation.
                log.exception(
                    "could not give back call leases",
                    extra={"action": "calls.release_failed"},
                )
            await session.close()
            log.info("workers stopped", extra={"action": "workers.stopped"})
