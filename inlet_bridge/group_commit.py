"""How do many concurrent requests share one commit? The group committer.

Requests hand their events to one writer task and wait. The writer takes everything queued
(up to a limit), commits it in one transaction and answers each request when its own events
are durable. While one group is committing, the next one gathers: the ingest rate is no
longer bound to one fsync per event. Webhooks and the PMS pollers append through here.

It fails fast rather than late. The queue is bounded; once the database has failed every commit
(or connection) for `unavailable_after` seconds, new requests are refused at once; and a request
still queued when its `wait` runs out is withdrawn and refused. A refused request's events are
never stored, so the sender's retry is the only copy: a 503 never hides a commit that happens
after the client gave up. Only a request whose group is already committing waits for that
commit's outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from inlet_bridge.clock import Clock
from inlet_bridge.domain.validation import ValidEvent
from inlet_bridge.metrics import Metrics
from inlet_bridge.store.events import EventStore, EventWriter, UnitResult

log = logging.getLogger(__name__)


class IngestUnavailable(Exception):
    """The events could not be committed (database down, busy, shutting down); nothing was
    stored. `retry_after` is when to try again, in seconds."""

    def __init__(self, reason: str, retry_after: int = 1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _Waiting:
    __slots__ = ("events", "future", "started", "withdrawn")

    def __init__(self, events: Sequence[ValidEvent], future: asyncio.Future[UnitResult]) -> None:
        self.events = events
        self.future = future
        self.started = False  # taken into a group that is committing
        self.withdrawn = False  # given up by its request before a writer took it


class GroupCommitter:
    def __init__(
        self,
        store: EventStore,
        metrics: Metrics,
        clock: Clock,
        *,
        max_events: int = 1000,
        writers: int = 2,
        max_queued_events: int = 20_000,
        wait_seconds: float = 10.0,
        unavailable_after: float = 3.0,
        loop_time: Callable[[], float] | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._max_events = max_events
        self._writers = writers
        self._max_queued = max_queued_events
        self._wait_seconds = wait_seconds
        self._unavailable_after = unavailable_after
        self._loop_time = loop_time
        self._queue: asyncio.Queue[_Waiting] = asyncio.Queue()
        self._queued_events = 0
        self._failing_since: float | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self._listeners: list[Callable[[], None]] = []

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Call `listener` after each commit that stored events (wakes the local reconciler)."""
        self._listeners.append(listener)

    @property
    def queued_events(self) -> int:
        return self._queued_events

    def _now(self) -> float:
        return self._loop_time() if self._loop_time else asyncio.get_running_loop().time()

    def check_available(self) -> None:
        """Raise IngestUnavailable when a new request would not be committed in time."""
        if self._closed:
            raise IngestUnavailable("shutting down", retry_after=5)
        failing = self._failing_since
        if failing is not None and self._now() - failing >= self._unavailable_after:
            raise IngestUnavailable("database unavailable", retry_after=5)

    async def append(self, events: Sequence[ValidEvent]) -> UnitResult:
        """Store all of `events` or none; returns once they are durable (or refused).

        Only validated events can be appended: what is stored is their normalized copy.
        """
        self.check_available()
        if self._queued_events + len(events) > self._max_queued and self._queued_events:
            raise IngestUnavailable("too many events waiting to be stored", retry_after=1)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[UnitResult] = loop.create_future()
        waiting = _Waiting(events, future)
        self._queued_events += len(events)
        self._queue.put_nowait(waiting)
        # A plain timer rather than asyncio.wait or a timeout context: one handle per request,
        # and nothing that relies on the task's cancellation count, which Python 3.11.0-3.11.2
        # get wrong in a task cancelled before (gh-102780).
        timer = loop.call_later(self._wait_seconds, self._expire, waiting)
        try:
            return await future  # once committing, the commit's outcome decides
        finally:
            timer.cancel()

    def _expire(self, waiting: _Waiting) -> None:
        """A request still queued when its wait runs out is withdrawn and refused."""
        if waiting.started or waiting.future.done():
            return
        waiting.withdrawn = True
        self._queued_events -= len(waiting.events)
        waiting.future.set_exception(
            IngestUnavailable("not stored in time; the database is slow or down")
        )

    def start(self) -> None:
        # Two writers: one commits while the other gathers the next group.
        self._tasks = [
            asyncio.create_task(self._run(), name=f"group-commit-{i}") for i in range(self._writers)
        ]

    async def close(self) -> None:
        """Stop taking events; commit what is queued (within the wait a request has, so a
        database that is down cannot hold up shutdown); then stop the writers."""
        self._closed = True
        # asyncio.wait rather than a timeout context: this runs in a cancelled task (see
        # workers/runtime.py on gh-102780).
        drained = asyncio.ensure_future(self._queue.join())
        await asyncio.wait({drained}, timeout=self._wait_seconds)
        drained.cancel()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _failed(self) -> None:
        if self._failing_since is None:
            self._failing_since = self._now()

    async def _run(self) -> None:
        # Each writer holds its own connection; if it breaks, the writer takes a new one.
        while True:
            try:
                async with self._store.writer() as writer:
                    await writer.ping()
                    self._failing_since = None  # the database answers again
                    await self._write(writer)
            except asyncio.CancelledError:
                raise
            except Exception:
                self._failed()
                log.exception(
                    "group-commit writer restarting", extra={"action": "ingest.writer_restart"}
                )
                await asyncio.sleep(1)

    def _start(self, item: _Waiting) -> bool:
        """Take a request into a group; False (and done with it) when it was withdrawn."""
        if item.withdrawn:
            self._queue.task_done()
            return False
        item.started = True
        self._queued_events -= len(item.events)
        return True

    async def _write(self, writer: EventWriter) -> None:
        while True:
            first = await self._queue.get()
            if not self._start(first):
                continue
            group = [first]
            count = len(first.events)
            while count < self._max_events and not self._queue.empty():
                item = self._queue.get_nowait()
                if self._start(item):
                    group.append(item)
                    count += len(item.events)
            try:
                await self._commit(writer, group, count)
            finally:
                for _ in group:
                    self._queue.task_done()

    async def _commit(self, writer: EventWriter, group: list[_Waiting], count: int) -> None:
        try:
            results = await writer.append_group([w.events for w in group], self._clock.now())
        except asyncio.CancelledError:
            for waiting in group:
                if not waiting.future.done():
                    waiting.future.set_exception(IngestUnavailable("shutting down"))
            raise
        except Exception as exc:
            self._failed()
            log.exception(
                "group commit failed",
                extra={"action": "ingest.commit_failed", "events": count},
            )
            for waiting in group:
                if not waiting.future.done():
                    waiting.future.set_exception(IngestUnavailable(type(exc).__name__))
            raise  # the writer takes a fresh connection
        self._failing_since = None
        self._metrics.group_commit_size.observe(count)
        for listener in self._listeners:
            listener()
        for waiting, result in zip(group, results, strict=True):
            if not waiting.future.done():
                waiting.future.set_result(result)
