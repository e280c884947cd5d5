"""How do many concurrent requests share one commit? The group committer.

Requests hand their events to one writer task and wait. The writer takes everything queued
(up to a limit), commits it in one transaction and answers each request when its own events
are durable. While one group is committing, the next one gathers: the ingest rate is no
longer bound to one fsync per event. Webhooks and the PMS pollers append through here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from service.domain.validation import ValidEvent
from service.metrics import Metrics
from service.store.events import EventStore, EventWriter, UnitResult

log = logging.getLogger(__name__)


class IngestUnavailable(Exception):
    """The events could not be committed (database down, shutting down); nothing was stored."""


class _Waiting:
    __slots__ = ("events", "future")

    def __init__(self, events: Sequence[ValidEvent], future: asyncio.Future[UnitResult]) -> None:
        self.events = events
        self.future = future


class GroupCommitter:
    def __init__(
        self, store: EventStore, metrics: Metrics, *, max_events: int = 1000, writers: int = 2
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._max_events = max_events
        self._writers = writers
        self._queue: asyncio.Queue[_Waiting] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self._listeners: list[Callable[[], None]] = []

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Call `listener` after each commit that stored events (wakes the local reconciler)."""
        self._listeners.append(listener)

    async def append(self, events: Sequence[ValidEvent]) -> UnitResult:
        """Store all of `events` or none; returns once they are durable (or refused).

        Only validated events can be appended: what is stored is their normalized copy.
        """
        if self._closed:
            raise IngestUnavailable("shutting down")
        future: asyncio.Future[UnitResult] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Waiting(events, future))
        return await future

    def start(self) -> None:
        # Two writers: one commits while the other gathers the next group.
        self._tasks = [
            asyncio.create_task(self._run(), name=f"group-commit-{i}") for i in range(self._writers)
        ]

    async def close(self) -> None:
        """Stop taking events; commit what is queued; then stop the writers."""
        self._closed = True
        await self._queue.join()  # every queued group committed (or failed) and answered
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        # Each writer holds its own connection; if it breaks, the writer takes a new one.
        while True:
            try:
                async with self._store.writer() as writer:
                    await self._write(writer)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "group-commit writer restarting", extra={"action": "ingest.writer_restart"}
                )
                await asyncio.sleep(1)

    async def _write(self, writer: EventWriter) -> None:
        while True:
            group = [await self._queue.get()]
            count = len(group[0].events)
            while count < self._max_events and not self._queue.empty():
                item = self._queue.get_nowait()
                group.append(item)
                count += len(item.events)
            try:
                await self._commit(writer, group, count)
            finally:
                for _ in group:
                    self._queue.task_done()

    async def _commit(self, writer: EventWriter, group: list[_Waiting], count: int) -> None:
        try:
            results = await writer.append_group([w.events for w in group])
        except asyncio.CancelledError:
            for waiting in group:
                if not waiting.future.done():
                    waiting.future.set_exception(IngestUnavailable("shutting down"))
            raise
        except Exception as exc:
            log.exception(
                "group commit failed",
                extra={"action": "ingest.commit_failed", "events": count},
            )
            for waiting in group:
                if not waiting.future.done():
                    waiting.future.set_exception(IngestUnavailable(type(exc).__name__))
            raise  # the writer takes a fresh connection
        self._metrics.group_commit_size.observe(count)
        for listener in self._listeners:
            listener()
        for waiting, result in zip(group, results, strict=True):
            if not waiting.future.done():
                waiting.future.set_result(result)
