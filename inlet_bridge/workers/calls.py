"""Who makes the Inlet calls? The call worker: claim due calls, call Inlet, record the outcome.

Calls run with bounded concurrency. Inlet's answer (its body, not only the status) decides:
success stores the reference, code and link; a temporary failure is retried by the policy;
a permanent failure, or the retry limit, escalates for manual follow-up.

Each call goes to the Inlet account (base URL and API key) of the property it was planned for:
the grant's own property for updates and revocations, wherever the booking is now. A 404 on a
revocation counts as "already gone" only from the account the grant was made with.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

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

log = logging.getLogger(__name__)


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
        self._client = client
        self._hotels = hotels
        self._metrics = metrics
        self._clock = clock
        self._owner = owner
        self._concurrency = concurrency
        self._lease_seconds = lease_seconds
        self._in_flight: set[int] = set()
        # Outcomes being recorded: at most `concurrency` at once, beside the calls at Inlet.
        self._recording = asyncio.Semaphore(concurrency)
        # Called when a call's answer is in (its slot is free for the next call while the
        # outcome is recorded); the runtime wakes its call loop.
        self.on_slot_free: Callable[[], None] | None = None

    @property
    def in_flight(self) -> set[int]:
        return set(self._in_flight)

    async def run_once(self) -> int:
        """Claim what is due now, run it, record it; returns how many calls were made."""
        calls = await self.claim_free()
        if calls:
            await asyncio.gather(*(self._execute(call) for call in calls))
        return len(calls)

    async def claim_free(self) -> list[ClaimedCall]:
        """Claim as many due calls as there are free slots (the service's continuous mode)."""
        free = self._concurrency - len(self._in_flight)
        if free <= 0:
            return []
        calls = await self._store.claim(
            owner=self._owner, now=self._clock.now(), limit=free, lease_seconds=self._lease_seconds
        )
        self._in_flight.update(call.id for call in calls)
        return calls

    async def execute(self, call: ClaimedCall) -> None:
        await self._execute(call)

    async def release_all(self) -> None:
        """Give back leases still held (shutdown): another replica retries them at once."""
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
            kept = await self._store.succeeded(
                call,
                owner=self._owner,
                attempt=attempt,
                access=access,
                sinks=sinks_for(call.source, self._hotels),
                account=account.account if account else None,
            )
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
