"""Who makes the Inlet calls? The call worker: claim due calls, call Inlet, record the outcome.

Calls run with bounded concurrency. Inlet's answer (its body, not only the status) decides:
success stores the reference, code and link; a temporary failure is retried by the policy;
a permanent failure, or the retry limit, escalates for manual follow-up.

Answers that arrive while successes are being recorded wait and are recorded together, in one
transaction (`store/successes.py`), at most one call per booking at a time: under load a
success costs a share of one BEGIN, lock and COMMIT rather than its own.

In the service's continuous mode a few calls are claimed ahead of a free slot (at most a quarter
of the concurrency, only while every slot is busy), so a slot whose answer is in starts its next
call at once, without waiting for a wake-up and a claim's round trip. Their leases run while
they wait; one that waited longer than READY_SECONDS is given back uncalled (its lease must
still cover the call), and on shutdown they are given back with every other lease.

Each call goes to the Inlet account (base URL and API key) of the property it was planned for:
the grant's own property for updates and revocations, wherever the booking is now. A 404 on a
revocation counts as "already gone" only from the account the grant was made with.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime

from inlet_bridge.clock import Clock
from inlet_bridge.domain.access import DesiredGrant
from inlet_bridge.domain.changes import Access, sinks_for
from inlet_bridge.domain.config import HotelsConfig
from inlet_bridge.domain.plan import revocation_believed
from inlet_bridge.domain.retry import GiveUp, after_failure
from inlet_bridge.inlet.client import InletClient, redact_message
from inlet_bridge.inlet.protocol import GrantRequest, InletResult, split_phone, update_from_grant
from inlet_bridge.metrics import Metrics
from inlet_bridge.store.calls import AttemptRecord, CallStore, ClaimedCall
from inlet_bridge.store.successes import Recorded, Success, SuccessStore

log = logging.getLogger(__name__)

# Batches of successes in flight at once: one being written, one waiting for a door lock.
MAX_BATCHES = 2

# The longest a call claimed ahead waits for a slot before it is given back uncalled (and never
# more than a tenth of its lease, so the lease left covers the call as a fresh claim's does).
READY_SECONDS = 2.0

# A success waiting to be recorded, and where its caller waits for what recording it did.
_Waiting = tuple[Success, "asyncio.Future[Recorded]"]


def grant_request(
    desired: DesiredGrant, partner: str, external_id: str | None = None
) -> GrantRequest:
    """What Inlet is sent for a desired grant; contact fields left out when messages are off.

    `external_id`: the grant generation's externalId (the grant key for the first)."""
    phone_number = country_code = None
    if desired.phone:
        phone_number, country_code = split_phone(desired.phone)
    return GrantRequest(
        operation=desired.operation,
        partner=partner,
        booking_id=desired.booking_id,
        external_id=external_id or desired.grant_key,
        locks=desired.access_points,
        start=desired.valid_from,
        end=desired.valid_to,
        guest_name=desired.guest_name,
        email=desired.email,
        phone_number=phone_number,
        country_code=country_code,
    )


def _personal(desired: DesiredGrant | None) -> list[str | None]:
    if desired is None:
        return []
    national = split_phone(desired.phone)[0] if desired.phone else None
    return [desired.guest_name, desired.email, desired.phone, national]


class CallWorker:
    def __init__(
        self,
        *,
        store: CallStore,
        client: InletClient,
        hotels: HotelsConfig,
        metrics: Metrics,
        clock: Clock,
        owner: str,
        concurrency: int,
        lease_seconds: float,
    ) -> None:
        self._store = store
        self._successes = SuccessStore(store.database)
        # Successes waiting to be recorded; whether a batch is being written (one at a time);
        # the batches' tasks (held so none is dropped before it ends).
        self._waiting: list[_Waiting] = []
        self._writing = False
        self._batches: set[asyncio.Task[None]] = set()
        self._client = client
        self._hotels = hotels
        self._metrics = metrics
        self._clock = clock
        self._owner = owner
        self._concurrency = concurrency
        self._lease_seconds = lease_seconds
        self._in_flight: set[int] = set()
        # Calls claimed ahead of a free slot, with when they were claimed (see the docstring).
        self._ready: deque[tuple[datetime, ClaimedCall]] = deque()
        self._ahead = max(1, concurrency // 4)
        self._stale: list[int] = []  # claimed ahead, waited too long: to be given back
        self.claimed_ahead = False  # whether the last claim_free queued calls ahead
        self._ready_seconds = min(READY_SECONDS, lease_seconds / 10)
        # Outcomes being recorded: at most `concurrency` at once, beside the calls at Inlet.
        self._recording = asyncio.Semaphore(concurrency)
        # Called when a call's answer is in (its slot is free for the next call while the
        # outcome is recorded); the runtime wakes its call loop.
        self.on_slot_free: Callable[[], None] | None = None
        # Called when an outcome marked a booking for a look (the runtime wakes its reconciler),
        # and when it stored an access change for the PMS (the delivery loop): only then.
        self.on_marked: Callable[[], None] | None = None
        self.on_changed: Callable[[], None] | None = None

    @property
    def in_flight(self) -> set[int]:
        return set(self._in_flight)

    @property
    def ready(self) -> list[int]:
        """The calls claimed ahead, waiting for a slot (in the order they will start)."""
        return [call.id for _, call in self._ready]

    async def run_once(self) -> int:
        """Claim what is due now, run it, record it; returns how many calls were made."""
        calls = await self.claim_free()
        if calls:
            await asyncio.gather(*(self._execute(call) for call in calls))
        return len(calls)

    async def claim_free(self, *, ahead: bool = False) -> list[ClaimedCall]:
        """The calls for the free slots: those claimed ahead first, then claimed now.

        `ahead` (the service's continuous mode): when every slot is taken, also claim up to the
        bound of calls to start as soon as slots free (`next_ready`). Returns the calls to
        start now; `claimed_ahead` says whether this claim also queued some."""
        calls: list[ClaimedCall] = []
        while (call := self.next_ready()) is not None:
            calls.append(call)
        await self._give_back_stale()
        self.claimed_ahead = False
        free = self._concurrency - len(self._in_flight)
        # Topped up only once half the bound is gone: a claim (and its commit) for every call
        # that left would cost PostgreSQL more than the calls' own recording.
        top_up = ahead and len(self._ready) <= self._ahead // 2
        wanted = free + (self._ahead - len(self._ready) if top_up else 0)
        if wanted <= 0 or (ahead and free <= 0 and calls):
            return calls  # the slots just took calls claimed ahead: top up on the next turn
        now = self._clock.now()
        claimed = await self._store.claim(
            owner=self._owner, now=now, limit=wanted, lease_seconds=self._lease_seconds
        )
        started, queued = claimed[: max(free, 0)], claimed[max(free, 0) :]
        self._in_flight.update(call.id for call in started)
        self._ready.extend((now, call) for call in queued)
        self.claimed_ahead = bool(queued)
        return calls + started

    def next_ready(self) -> ClaimedCall | None:
        """A call claimed ahead, taken for a free slot, or None (no slot, or none waiting).
        One that waited past READY_SECONDS is set aside to be given back, not called."""
        if len(self._in_flight) >= self._concurrency:
            return None
        now = self._clock.now()
        while self._ready:
            claimed_at, call = self._ready.popleft()
            if (now - claimed_at).total_seconds() <= self._ready_seconds:
                self._in_flight.add(call.id)
                return call
            self._stale.append(call.id)
        return None

    async def _give_back_stale(self) -> None:
        if self._stale:
            stale, self._stale = self._stale, []
            await self._store.release_claimed(stale, owner=self._owner)

    async def execute(self, call: ClaimedCall) -> None:
        await self._execute(call)

    async def release_all(self) -> None:
        """Give back leases still held (shutdown), those claimed ahead too: another replica
        retries them at once."""
        self._ready.clear()
        self._stale = []
        await self._store.release(owner=self._owner)

    async def _execute(self, call: ClaimedCall) -> None:
        try:
            started = self._clock.now()
            t0 = time.perf_counter()
            result = await self._call_inlet(call)
            self._metrics.inlet_call_seconds.labels(operation=call.operation).observe(
                time.perf_counter() - t0
            )
            self._metrics.inlet_calls.labels(operation=call.operation, outcome=result.outcome).inc()
            attempt = AttemptRecord(
                outcome=result.outcome,
                http_status=result.http_status,
                message=result.message,
                started_at=started,
                finished_at=self._clock.now(),
            )
            async with self._recording:
                # The call is no longer at Inlet: once its outcome has room to be recorded,
                # its slot takes the next call (the lease holds this one until it is recorded;
                # an answer waiting for room keeps its slot, so nothing piles up).
                self._in_flight.discard(call.id)
                if self.on_slot_free is not None:
                    self.on_slot_free()
                await self._record(call, result, attempt)
        finally:
            self._in_flight.discard(call.id)

    async def _call_inlet(self, call: ClaimedCall) -> InletResult:
        account = self._hotels.inlet_account(call.property_id)
        if account is None:
            return InletResult(
                outcome="permanent",
                http_status=None,
                message=f"property {call.property_id!r} is not configured",
            )
        api_key, base_url = account.api_key.reveal(), account.base_url
        if call.operation == "revoke":
            if call.reference_id is None:
                return InletResult(outcome="success", http_status=None, message="nothing to revoke")
            result = await self._client.revoke_access(api_key, call.reference_id, base_url=base_url)
            if result.outcome == "success" and not revocation_believed(
                http_status=result.http_status,
                grant_account=call.grant_account,
                called_account=account.account,
            ):
                return InletResult(
                    outcome="permanent",
                    http_status=result.http_status,
                    message=f"{result.message}, but the grant was made under another Inlet"
                    " account or URL: it may still work; revoke it there",
                )
            return result
        assert call.desired is not None
        request = grant_request(call.desired, self._hotels.inlet.partner, call.external_id)
        if call.operation == "grant" or call.reference_id is None:
            return await self._client.grant_access(api_key, request, base_url=base_url)
        update = update_from_grant(call.reference_id, request, regenerate=call.reason == "resync")
        return await self._client.update_access(api_key, update, base_url=base_url)

    async def _record(self, call: ClaimedCall, result: InletResult, attempt: AttemptRecord) -> None:
        context = {
            "call_id": call.id,
            "grant_key": call.grant_key,
            "source": call.source,
            "booking_id": call.booking_id,
            "property_id": call.property_id,
            "operation": call.operation,
            "reason": call.reason,  # "recover": a GrantAccess to get back a grant to revoke
            "attempt": call.attempts,
            "outcome": result.outcome,
            "http_status": result.http_status,
            # Inlet may echo what we sent (a name, an email): never log it in clear text.
            "inlet_message": redact_message(result.message, _personal(call.desired)),
        }
        if result.outcome == "success":
            access = Access(
                reference_id=result.reference_id,
                code=result.code,
                code_formatted=result.code_formatted,
                link=result.link,
            )
            account = self._hotels.inlet_account(call.property_id)
            recorded = await self._record_success(
                Success(
                    call=call,
                    attempt=attempt,
                    access=access,
                    sinks=tuple(sinks_for(call.source, self._hotels)),
                    account=account.account if account else None,
                )
            )
            kept = recorded.kept
            self._tell(marked=recorded.marked, changed=recorded.changed)
            log.info(
                "inlet call succeeded", extra={"action": "call.succeeded", "kept": kept, **context}
            )
            return
        policy = self._hotels.retry
        step = after_failure(
            operation=call.operation,
            reason=call.reason,
            permanent=result.outcome == "permanent",
            attempts=call.attempts,
            first_attempt_at=call.first_attempt_at,
            now=attempt.finished_at,
            deadline=call.deadline,
            policy=policy,
        )
        if isinstance(step, GiveUp):
            escalation = await self._store.gave_up(
                call,
                owner=self._owner,
                attempt=attempt,
                severity=step.severity,
                reason=step.reason,
                sinks=sinks_for(call.source, self._hotels),
            )
            if escalation is not None:
                self._tell(marked=True, changed=bool(sinks_for(call.source, self._hotels)))
                self._metrics.escalations_raised.labels(
                    operation=call.operation, severity=step.severity, reason=step.reason
                ).inc()
            log.error(
                "inlet call escalated",
                extra={
                    "action": "call.escalated",
                    "severity": step.severity,
                    "reason": step.reason,
                    "escalation_id": escalation,
                    **context,
                },
            )
            return
        late = (
            "the call is still failing and access should start before the next retry"
            if step.late
            else None
        )
        await self._store.retry_later(
            call, owner=self._owner, attempt=attempt, at=step.at, late_escalation=late
        )
        if step.late:
            self._metrics.escalations_raised.labels(
                operation=call.operation, severity="warning", reason="late_for_arrival"
            ).inc()
        log.warning(
            "inlet call failed; will retry",
            extra={"action": "call.retry_scheduled", "retry_at": step.at.isoformat(), **context},
        )

    def _tell(self, *, marked: bool, changed: bool) -> None:
        if marked and self.on_marked is not None:
            self.on_marked()
        if changed and self.on_changed is not None:
            self.on_changed()

    async def _record_success(self, success: Success) -> Recorded:
        """Record a success with whatever others are waiting (see the module's docstring)."""
        future: asyncio.Future[Recorded] = asyncio.get_running_loop().create_future()
        self._waiting.append((success, future))
        self._next_batch()
        # Shielded: a caller cancelled (shutdown) leaves its success to be recorded all the same.
        return await asyncio.shield(future)

    def _next_batch(self) -> None:
        """Start recording the waiting successes unless a batch is being written: answers that
        arrive meanwhile wait for it and go together in the next. A batch about to wait for a
        door lock (a plan may hold it for a while) lets the next one start, up to MAX_BATCHES
        in flight (each holds a pooled connection)."""
        if self._writing or not self._waiting or len(self._batches) >= MAX_BATCHES:
            return
        self._writing = True
        task = asyncio.create_task(self._write_batch())
        self._batches.add(task)
        task.add_done_callback(self._batch_done)

    def _batch_done(self, task: asyncio.Task[None]) -> None:
        self._batches.discard(task)
        self._next_batch()  # answers may be waiting for a batch to finish

    async def _write_batch(self) -> None:
        batch: list[_Waiting] = []
        writing = True

        def done_writing() -> None:
            nonlocal writing
            if writing:
                writing = self._writing = False
                self._next_batch()

        try:
            await asyncio.sleep(0)  # answers read in this turn of the loop join the batch
            batch, self._waiting = _one_per_booking(self._waiting, self._concurrency)
            await self._record_batch(batch, done_writing)
            batch = []
        except BaseException:
            # Cancelled (the loop is closing): nobody may wait for an answer that never comes.
            for _, future in [*batch, *self._waiting]:
                future.cancel()
            self._waiting = []
            raise
        finally:
            done_writing()

    async def _record_batch(self, batch: list[_Waiting], before_doors: Callable[[], None]) -> None:
        try:
            results = await self._successes.record(
                [s for s, _ in batch], owner=self._owner, before_doors=before_doors
            )
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            # One call's failure must not cost the others theirs: each is recorded alone.
            log.warning(
                "recording successes together failed; recording each alone",
                exc_info=True,
                extra={"action": "call.batch_failed", "calls": len(batch)},
            )
            for item in batch:
                await self._record_batch([item], before_doors)
            return
        for (_, future), recorded in zip(batch, results, strict=True):
            _settle(future, recorded)


def _one_per_booking(waiting: list[_Waiting], limit: int) -> tuple[list[_Waiting], list[_Waiting]]:
    """The next batch (in arrival order, at most `limit`, one call per booking) and the rest."""
    batch: list[_Waiting] = []
    rest: list[_Waiting] = []
    bookings: set[tuple[str, str]] = set()
    for item in waiting:
        if item[0].booking in bookings or len(batch) >= limit:
            rest.append(item)  # its booking's other call goes in a later batch
        else:
            bookings.add(item[0].booking)
            batch.append(item)
    return batch, rest


def _settle(future: asyncio.Future[Recorded], outcome: Recorded | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
