"""How does a PMS hand us a booking? `POST /v1/events` and `POST /v1/events:batch`.

Order of checks: size (413), credentials (401), the source's rate limit (429), a replayed
webhook-id (409), decoding (422 with every problem), the body's source against the credentials
(403), each `booking.property_id`: configured (else 422) and served by the source (else 403),
validation (422), then the group commit. A body over `OFF_LOOP_BYTES` is decoded on a worker
thread (a refused one is walked there for every problem) and its events are validated in
slices that give the event loop back every few milliseconds, as are the log lines of a large
batch: a few maximum batches never stall `/healthz` or other requests.
202 means committed; a repeat answers like the first; a changed body under a stored id is 409.
An invalid email or phone does not refuse the event: it is dropped before the event is stored
and the answer lists it under `warnings` (a 422 lists them too, beside the problems).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from inlet_bridge.api.auth import SourceCaller, admit_source, forget_webhook_id
from inlet_bridge.api.responses import error, json_response
from inlet_bridge.domain.booking import BookingEvent, Problem
from inlet_bridge.domain.decoding import decode_batch, decode_event
from inlet_bridge.domain.validation import (
    InvalidEvent,
    ReceivedAt,
    ValidEvent,
    combine_batch,
    validate_event,
)
from inlet_bridge.group_commit import IngestUnavailable
from inlet_bridge.keys import CLOCK, COMMITTER, HOTELS, METRICS, REQUEST_ID, SETTINGS
from inlet_bridge.store.events import AppendResult

log = logging.getLogger(__name__)

# Bodies larger than this are decoded on a worker thread and validated in slices (a batch of
# 500 events takes hundreds of milliseconds of pure Python; a small event is quicker inline).
OFF_LOOP_BYTES = 64 * 1024
# How long the loop may be held between two yields while a large batch is validated or logged.
SLICE_SECONDS = 0.002


class LargeBodies:
    """Where large bodies are decoded (one thread) and validated (one at a time, in slices):
    however many arrive together, the loop is held for one slice at a time."""

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        self.executor = executor
        self.gate = asyncio.Semaphore(1)


VALIDATION: web.AppKey[LargeBodies] = web.AppKey("validation", LargeBodies)
_REASONS = {401: "unauthorized", 409: "replayed", 429: "rate_limited", 503: "unavailable"}


class _Refused(Exception):
    """A refusal, with what its log line needs so the sender can find the booking and the
    fields at fault: the decoded events (when the body decoded) and the problems' paths."""

    def __init__(
        self,
        response: web.Response,
        reason: str,
        *,
        events: Sequence[BookingEvent] = (),
        problems: Sequence[Problem] = (),
    ) -> None:
        self.response = response
        self.reason = reason
        self.events = events
        self.paths = [p.path for p in problems]

    def keys(self, *, batch: bool) -> dict[str, object]:
        """The ids of the refused events (a list for a batch), and the paths, never values."""
        if not self.events:
            return {"paths": self.paths} if self.paths else {}
        event_ids = [e.event_id for e in self.events]
        booking_ids = [e.booking.booking_id for e in self.events]
        return {
            "event_id": event_ids if batch else event_ids[0],
            "booking_id": booking_ids if batch else booking_ids[0],
            "paths": self.paths,
        }


async def _read_body(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _Refused(
            error(
                413,
                "too_large",
                f"the body is larger than {request.app[SETTINGS].max_body_bytes} bytes",
            ),
            "too_large",
        ) from None


async def post_event(request: web.Request) -> web.Response:
    return await _ingest(request, batch=False)


async def post_batch(request: web.Request) -> web.Response:
    return await _ingest(request, batch=True)


async def _ingest(request: web.Request, *, batch: bool) -> web.Response:
    metrics = request.app[METRICS]
    endpoint = "batch" if batch else "event"
    started = time.perf_counter()
    source = "unknown"
    caller: SourceCaller | None = None
    try:
        body = await _read_body(request)
        admitted = await admit_source(request, body)
        if isinstance(admitted, web.Response):
            raise _Refused(admitted, _REASONS.get(admitted.status, "unauthorized"))
        caller = admitted
        source = caller.source
        try:  # refuse at once, before any work, while the database is known to be down
            request.app[COMMITTER].check_available()
        except IngestUnavailable as exc:
            raise _unavailable(exc) from None
        received = ReceivedAt(
            at=request.app[CLOCK].now(), max_skew=request.app[HOTELS].events.max_clock_skew
        )
        decode = functools.partial(
            _decode,
            body,
            batch=batch,
            source=source,
            served=caller.served,
            configured=request.app[HOTELS].properties.keys(),
        )
        if len(body) > OFF_LOOP_BYTES:
            large = request.app[VALIDATION]
            async with large.gate:
                loop = asyncio.get_running_loop()
                decoded = await loop.run_in_executor(large.executor, decode)
                verdicts = [v async for v in _validate_in_slices(decoded, received)]
        else:
            decoded = decode()
            verdicts = [validate_event(e, received) for e in decoded]
        events = _judge(decoded, verdicts, batch=batch)
        results = await _commit(request, events, batch=batch)
    except _Refused as refused:
        if caller is not None:
            await forget_webhook_id(request, caller)
        metrics.events_rejected.labels(source=source, reason=refused.reason).inc()
        log.info(
            "event refused",
            extra={
                "action": "ingest.refused",
                "source": source,
                "reason": refused.reason,
                "status": refused.response.status,
                "request_id": request.get(REQUEST_ID),
                **refused.keys(batch=batch),
            },
        )
        return refused.response
    finally:
        metrics.ingest_seconds.labels(endpoint=endpoint).observe(time.perf_counter() - started)
    last_yield = time.perf_counter()
    for result, valid in zip(results, events, strict=True):
        if time.perf_counter() - last_yield > SLICE_SECONDS:
            await asyncio.sleep(0)  # a large batch's log lines: let the loop breathe
            last_yield = time.perf_counter()
        stored = result.status == "stored"
        counter = metrics.events_accepted if stored else metrics.events_duplicate
        counter.labels(source=source).inc()
        keys = {
            "source": source,
            "event_id": valid.event.event_id,
            "booking_id": valid.event.booking.booking_id,
            "property_id": valid.event.booking.property_id,
            "position": result.position,
            "request_id": request.get(REQUEST_ID),
        }
        log.info(
            "event stored" if stored else "event repeated",
            extra={"action": "ingest.accepted" if stored else "ingest.duplicate", **keys},
        )
        if stored and valid.warnings:
            # Paths only: the dropped values are personal data.
            log.warning(
                "contact details dropped",
                extra={
                    "action": "ingest.contact_dropped",
                    "paths": [w.path for w in valid.warnings],
                    **keys,
                },
            )
    replayed = all(r.status == "duplicate" for r in results)
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    if batch:
        answers = [_answer(r, v) for r, v in zip(results, events, strict=True)]
        return json_response({"results": answers}, status=202, headers=headers)
    return json_response(_answer(results[0], events[0]), status=202, headers=headers)


def _invalid(
    message: str, problems: Sequence[Problem], warnings: Sequence[Problem]
) -> web.Response:
    """The 422 of validation: the error shape, plus what would have been dropped."""
    body: dict[str, Any] = {"error": "invalid", "message": message, "problems": list(problems)}
    if warnings:
        body["warnings"] = list(warnings)
    return json_response(body, status=422)


def _decode(
    body: bytes,
    *,
    batch: bool,
    source: str,
    served: Collection[str],
    configured: Collection[str],
) -> tuple[BookingEvent, ...]:
    """The body's events, if they are structurally events of this source for its properties.
    Runs on a worker thread for a large body: it touches nothing but its arguments."""
    decoded: tuple[BookingEvent, ...] | BookingEvent | list[Problem]
    decoded = decode_batch(body) if batch else decode_event(body)
    if isinstance(decoded, list):
        raise _Refused(error(422, "invalid", "the body is not a valid event", decoded), "malformed")
    events = decoded if isinstance(decoded, tuple) else (decoded,)

    def prefix(i: int) -> str:
        return f"events[{i}]." if batch else ""

    foreign = [
        Problem(path=f"{prefix(i)}source", message="does not match the authenticated source")
        for i, e in enumerate(events)
        if e.source != source
    ]
    if foreign:
        raise _Refused(
            error(403, "forbidden", "the event's source is not yours", foreign),
            "forbidden",
            problems=foreign,
        )
    unknown = [
        Problem(path=f"{prefix(i)}booking.property_id", message="no such property is configured")
        for i, e in enumerate(events)
        if e.booking.property_id not in configured
    ]
    if unknown:
        raise _Refused(
            error(422, "invalid", "the property is not configured", unknown),
            "unknown_property",
            events=events,
            problems=unknown,
        )
    not_served = [
        Problem(path=f"{prefix(i)}booking.property_id", message="is not served by this source")
        for i, e in enumerate(events)
        if e.booking.property_id not in served
    ]
    if not_served:
        raise _Refused(
            error(403, "forbidden", "the property is not one this source serves", not_served),
            "foreign_property",
            events=events,
            problems=not_served,
        )
    seen: dict[str, int] = {}
    repeated = []
    for i, e in enumerate(events):
        if e.event_id in seen:
            repeated.append(
                Problem(path=f"{prefix(i)}event_id", message="repeated within the batch")
            )
        seen[e.event_id] = i
    if repeated:
        raise _Refused(
            error(422, "invalid", "the batch is not valid", repeated),
            "invalid",
            events=events,
            problems=repeated,
        )
    return events


async def _validate_in_slices(
    events: Sequence[BookingEvent], received: ReceivedAt
) -> AsyncIterator[ValidEvent | InvalidEvent]:
    """Each event's verdict, giving the loop back every `SLICE_SECONDS`."""
    last_yield = time.perf_counter()
    for event in events:
        if time.perf_counter() - last_yield > SLICE_SECONDS:
            await asyncio.sleep(0)
            last_yield = time.perf_counter()
        yield validate_event(event, received)


def _judge(
    events: Sequence[BookingEvent],
    verdicts: Sequence[ValidEvent | InvalidEvent],
    *,
    batch: bool,
) -> tuple[ValidEvent, ...]:
    """The events fit to store, or the 422 naming every problem (and what would be dropped)."""
    validated = combine_batch(verdicts) if batch else verdicts[0]
    if isinstance(validated, InvalidEvent):
        what = "the batch is not valid" if batch else "the event is not valid"
        raise _Refused(
            _invalid(what, validated.problems, validated.warnings),
            "invalid",
            events=events,
            problems=validated.problems,
        )
    return validated if isinstance(validated, tuple) else (validated,)


async def _commit(
    request: web.Request, events: Sequence[ValidEvent], *, batch: bool
) -> tuple[AppendResult, ...]:
    try:
        unit = await request.app[COMMITTER].append(events)
    except IngestUnavailable as exc:
        raise _unavailable(exc) from None
    if unit.conflict:
        problems = [
            Problem(
                path=f"events[{i}].event_id" if batch else "event_id",
                message="already stored with a different body",
            )
            for i, r in enumerate(unit.results)
            if r.status == "conflict"
        ]
        raise _Refused(
            error(
                409, "conflict", "an event with this id was stored with a different body", problems
            ),
            "conflict",
            events=[v.event for v in events],
            problems=problems,
        )
    return unit.results


def _unavailable(exc: IngestUnavailable) -> _Refused:
    """503 with Retry-After: nothing was stored, the sender should send it again later."""
    response = error(503, "unavailable", f"the event was not stored ({exc.reason}); retry later")
    response.headers["Retry-After"] = str(exc.retry_after)
    return _Refused(response, "unavailable")


def _answer(result: AppendResult, valid: ValidEvent) -> dict[str, object]:
    """One event's answer; a repeat carries the same warnings, since its body is the same."""
    answer: dict[str, object] = {
        "event_id": result.event_id,
        "position": result.position,
        "received_at": result.received_at,
    }
    if valid.warnings:
        answer["warnings"] = list(valid.warnings)
    return answer
