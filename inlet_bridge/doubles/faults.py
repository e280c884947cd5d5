"""How does a PMS emulator break on purpose? Faults queued per path prefix, counted down, and
stalls that a test (or shutdown) can end early."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Literal, Protocol, TypeVar

import msgspec
from aiohttp import web


class PathFault(Protocol):
    """What a queued fault says: its kind, for how many calls, on which path prefixes."""

    @property
    def kind(self) -> Literal["timeout", "status", "bad_json"]: ...
    @property
    def status(self) -> int: ...
    @property
    def seconds(self) -> float: ...
    @property
    def count(self) -> int | None: ...  # None: until cleared
    @property
    def paths(self) -> tuple[str, ...] | None: ...  # None: every API path


F = TypeVar("F", bound=PathFault)


@dataclass
class _Active(Generic[F]):
    fault: F
    remaining: int | None


class FaultQueue(Generic[F]):
    def __init__(self) -> None:
        self._active: list[_Active[F]] = []
        self._wake = asyncio.Event()

    def add(self, fault: F) -> None:
        self._active.append(_Active(fault=fault, remaining=fault.count))

    def clear(self) -> None:
        self._active.clear()
        self.wake_stalled()

    def wake_stalled(self) -> None:
        """Release every request stalled by a timeout fault (on clear and on shutdown)."""
        self._wake.set()
        self._wake = asyncio.Event()

    def take(self, path: str) -> F | None:
        """The first fault that applies to this path, counting it down."""
        for active in self._active:
            prefixes = active.fault.paths
            if prefixes is not None and not any(path.startswith(p) for p in prefixes):
                continue
            if active.remaining is not None:
                active.remaining -= 1
                if active.remaining <= 0:
                    self._active.remove(active)
            return active.fault
        return None

    async def stall(self, seconds: float) -> None:
        # Waiting on an event rather than sleeping lets a test or shutdown end the stall.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)


async def injected(
    faults: FaultQueue[F], path: str, error: Callable[[int, str], web.Response]
) -> web.Response | None:
    """The answer a queued fault gives instead of the API's (None: answer normally, perhaps
    after a stall). `error` words the failure as the imitated API does."""
    fault = faults.take(path)
    if fault is None:
        return None
    if fault.kind == "status":
        return error(fault.status, "injected fault")
    if fault.kind == "bad_json":
        return web.Response(text='{"truncated": [', content_type="application/json")
    await faults.stall(fault.seconds)
    return None


def add_fault_routes(
    app: web.Application,
    path: str,
    faults: FaultQueue[F],
    fault_type: type[F],
    error: Callable[[int, str], web.Response],
) -> None:
    """`POST path` queues a fault (its body a `fault_type`), `DELETE path` clears them all and
    ends any stall."""

    async def add(request: web.Request) -> web.Response:
        try:
            fault = msgspec.json.decode(await request.read(), type=fault_type)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            return error(400, str(exc))
        faults.add(fault)
        return web.Response(status=204)

    async def clear(_: web.Request) -> web.Response:
        faults.clear()
        return web.Response(status=204)

    app.router.add_post(path, add)
    app.router.add_delete(path, clear)
