"""How is an Inlet call claimed, and its outcome recorded? The retry table's store.

A call is claimed with FOR UPDATE SKIP LOCKED and a lease that bounds one attempt; an expired
lease is simply claimable again. Every outcome is written only if this worker still holds this
attempt (state, owner and attempt re-checked in the UPDATE), and the outcome, the actual access
and the booking's next look commit in one transaction, after the booking's row is locked (as the
reconciler locks it before it plans: a plan never sees a call half-recorded). What a success
leaves behind is decided by `domain/calls.py` (`after_success`); a grant is stored with the
property, generation and Inlet account it was made under.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

import msgspec
from asyncpg import Record

from inlet_bridge.domain.access import DesiredGrant
from inlet_bridge.domain.calls import (
    BookingPlans,
    CallPlanned,
    after_success,
    doubt_after_give_up,
    needs_look_after_success,
)
from inlet_bridge.domain.changes import (
    Access,
    AccessChange,
    CallFacts,
    change_after_failure,
    change_after_success,
)
from inlet_bridge.domain.plan import EarlierGrantAttempt, Target, attempts_toward
from inlet_bridge.domain.retry import escalation_operation
from inlet_bridge.domain.vocab import RECOVER, CallOperation, Outcome, Severity
from inlet_bridge.store.db import Database, LeaseLost, Queries, touched
from inlet_bridge.store.history import grant_history

log = logging.getLogger(__name__)


class ClaimedCall(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    grant_key: str
    source: str
    booking_id: str
    property_id: str
    operation: CallOperation
    reason: str
    desired: DesiredGrant | None
    fingerprint: str
    attempts: int
    first_attempt_at: datetime
    deadline: datetime | None
    reference_id: str | None
    generation: int = 1
    external_id: str = ""
    grant_account: str | None = None  # the Inlet account the grant was made with, if known
    planned: CallPlanned | None = None  # None: nothing known of its plan (always looked at again)
    earlier_grants: bool = True  # whether the grant had GrantAccess calls before this one

    @property
    def target(self) -> Target:
        return Target(property_id=self.property_id, generation=self.generation)


class AttemptRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt's outcome as the timeline shows it (no personal data)."""

    outcome: Outcome
    http_status: int | None
    message: str
    started_at: datetime
    finished_at: datetime


class CallStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(
        self, *, owner: str, now: datetime, limit: int, lease_seconds: float
    ) -> list[ClaimedCall]:
        rows = await self._db.fetch("claim_calls", now, owner, limit, lease_seconds)
        return [
            ClaimedCall(
                id=r["id"],
                grant_key=r["grant_key"],
                source=r["source"],
                booking_id=r["booking_id"],
                property_id=r["property_id"],
                operation=r["operation"],
                reason=r["reason"],
                desired=(
                    msgspec.json.decode(r["request"], type=DesiredGrant)
                    if r["operation"] != "revoke"
                    else None
                ),
                fingerprint=r["fingerprint"],
                attempts=r["attempts"],
                first_attempt_at=r["first_attempt_at"],
                deadline=r["deadline"],
                reference_id=r["reference_id"],
                generation=r["generation"],
                external_id=r["external_id"],
                grant_account=r["grant_account"],
                planned=CallPlanned(
                    settles=r["settles"], planned_in=r["planned_in"], created_at=r["created_at"]
                ),
                earlier_grants=r["earlier_grants"],
            )
            for r in rows
        ]

    async def succeeded(
        self,
        call: ClaimedCall,
        *,
        owner: str,
        attempt: AttemptRecord,
        access: Access,
        sinks: Sequence[str] = (),
        account: str | None = None,
    ) -> bool:
        """Record success, the access Inlet now holds and the change for each sink, together;
        False if the lease was lost (nothing written). `account`: the Inlet account called."""
        now = attempt.finished_at
        try:
            async with self._db.transaction() as conn:
                queries = self._db.on(conn)
                booking = await self._lock_booking(queries, call)
                previous = None
                if sinks:  # what the PMS held before is told only to sinks
                    previous = await queries.fetchrow("previous_access", call.grant_key)
                    if previous is not None and previous["generation"] != call.generation:
                        previous = None  # another generation's code is not this grant's
                earlier = []
                if (call.operation == "grant" or call.reference_id is None) and call.earlier_grants:
                    history = await grant_history(
                        self._db, conn, grant_key=call.grant_key, before_call=call.id
                    )
                    earlier = attempts_toward(history, call.target)
                record = after_success(
                    operation=call.operation,
                    reason=call.reason,
                    sent_fingerprint=call.desired.fingerprint if call.desired else "",
                    had_reference=call.reference_id is not None,
                    returned=access,
                    earlier=earlier,
                )
                if record.unverified:
                    log.info(
                        "granted, but Inlet may hold an earlier call's content: recorded as"
                        " unverified",
                        extra={"action": "call.grant_unverified", **_keys(call)},
                    )
                look = needs_look_after_success(
                    operation=call.operation,
                    reason=call.reason,
                    record=record,
                    http_status=attempt.http_status,
                    planned=call.planned,
                    booking=booking,
                )
                # The attempt, the call, the grant, its escalations and the booking's mark: one
                # statement (docs/architecture.md rule 9).
                await self._record_success(
                    queries, call, owner, attempt, record.access, record.fingerprint, account, look
                )
                if sinks and record.tell_sinks:
                    change = change_after_success(
                        _call_facts(call),
                        message=attempt.message,
                        at=now,
                        returned=record.access,
                        previous=_held(previous),
                    )
                    await self._record_change(queries, change, sinks)
        except LeaseLost:
            return False
        return True

    async def _record_success(
        self,
        queries: Queries,
        call: ClaimedCall,
        owner: str,
        attempt: AttemptRecord,
        access: Access,
        fingerprint: str,
        account: str | None,
        look: bool,
    ) -> None:
        now = attempt.finished_at
        outcome = {
            "call_id": call.id,
            "owner": owner,
            "attempt": call.attempts,
            "started_at": attempt.started_at,
            "now": now,
            "outcome": attempt.outcome,
            "http_status": attempt.http_status,
            "message": attempt.message,
            "grant_key": call.grant_key,
            "source": call.source,
            "booking_id": call.booking_id,
            "look": look,
        }
        if call.operation == "revoke":
            finished = await queries.fetchval("record_revoke_success", **outcome)
            if not finished:
                raise LeaseLost
            # A shared door may have a free place now: under the property's door lock (as the
            # reconciler counts places), so a booking planned meanwhile sees it or is marked.
            await queries.execute("lock_property_doors_shared", call.property_id)
            await queries.execute("mark_waiting_for_doors", call.property_id, now)
            return
        desired = call.desired
        assert desired is not None
        finished = await queries.fetchval(
            "record_grant_success",
            **outcome,
            stay_id=desired.stay_id,
            property_id=call.property_id,
            state="active",
            reference_id=access.reference_id,
            code=access.code,
            code_formatted=access.code_formatted,
            link=access.link,
            access_points=list(desired.access_points),
            valid_from=desired.valid_from,
            valid_to=desired.valid_to,
            fingerprint=fingerprint,
            resource_id=desired.resource_id,
            applied=desired,
            generation=call.generation,
            external_id=call.external_id or call.grant_key,
            account=account,
        )
        if not finished:
            raise LeaseLost

    async def retry_later(
        self,
        call: ClaimedCall,
        *,
        owner: str,
        attempt: AttemptRecord,
        at: datetime,
        late_escalation: str | None,
    ) -> bool:
        try:
            async with self._db.transaction() as conn:
                queries = self._db.on(conn)
                await self._record_attempt(queries, call, attempt)
                status = await queries.execute(
                    "schedule_retry",
                    call_id=call.id,
                    owner=owner,
                    attempt=call.attempts,
                    retry_at=at,
                    outcome=attempt.outcome,
                    http_status=attempt.http_status,
                    message=attempt.message,
                )
                if not touched(status):
                    raise LeaseLost
                if late_escalation is not None:
                    await self._escalate(
                        queries,
                        call,
                        "warning",
                        "late_for_arrival",
                        late_escalation,
                        attempt.finished_at,
                    )
        except LeaseLost:
            return False
        return True

    async def gave_up(
        self,
        call: ClaimedCall,
        *,
        owner: str,
        attempt: AttemptRecord,
        severity: Severity,
        reason: str,
        sinks: Sequence[str] = (),
    ) -> int | None:
        """Mark the call failed and open an escalation; its id, or None if the lease was lost."""
        try:
            async with self._db.transaction() as conn:
                queries = self._db.on(conn)
                await self._lock_booking(queries, call)
                await self._finish(queries, call, owner, "failed", attempt)
                escalation_id: int | None = await self._escalate(
                    queries, call, severity, reason, attempt.message, attempt.finished_at
                )
                earlier = await queries.fetch("call_attempt_outcomes", call.id, call.attempts)
                doubt = doubt_after_give_up(
                    operation=call.operation,
                    reason=call.reason,
                    attempts=[
                        *(
                            EarlierGrantAttempt(
                                fingerprint=r["fingerprint"],
                                outcome=r["outcome"],
                                http_status=r["http_status"],
                            )
                            for r in earlier
                        ),
                        EarlierGrantAttempt(
                            fingerprint=call.fingerprint,
                            outcome=attempt.outcome,
                            http_status=attempt.http_status,
                        ),
                    ],
                )
                if doubt is not None:
                    await queries.execute("doubt_grant", call.grant_key, doubt)
                if sinks:
                    held = await queries.fetchrow("previous_access", call.grant_key)
                    change = change_after_failure(
                        _call_facts(call),
                        message=attempt.message,
                        at=attempt.finished_at,
                        reason=reason,
                        held=_held(held),
                    )
                    await self._record_change(queries, change, sinks)
                # The booking is looked at again; the plan will not repeat the escalated call.
                await queries.execute(
                    "mark_booking", call.source, call.booking_id, attempt.finished_at
                )
        except LeaseLost:
            return None
        return escalation_id

    async def release(self, *, owner: str) -> None:
        """Give back this worker's leases on shutdown so another replica retries at once."""
        await self._db.execute("release_calls", owner)

    async def next_due(self) -> datetime | None:
        value: datetime | None = await self._db.fetchval("next_call_due")
        return value

    async def _lock_booking(self, queries: Queries, call: ClaimedCall) -> BookingPlans:
        row = await queries.fetchrow("lock_booking_for_outcome", call.source, call.booking_id)
        if row is None:  # no booking row (a call queued by hand): it is never skipped
            return BookingPlans(plans=-1, reconciled_at=None)
        return BookingPlans(plans=row["plans"], reconciled_at=row["reconciled_at"])

    async def _finish(
        self,
        queries: Queries,
        call: ClaimedCall,
        owner: str,
        state: str,
        attempt: AttemptRecord,
    ) -> None:
        status = await queries.execute(
            "finish_call",
            call_id=call.id,
            owner=owner,
            attempt=call.attempts,
            state=state,
            started_at=attempt.started_at,
            now=attempt.finished_at,
            outcome=attempt.outcome,
            http_status=attempt.http_status,
            message=attempt.message,
        )
        if not touched(status):
            raise LeaseLost

    async def _record_change(
        self, queries: Queries, change: AccessChange, sinks: Sequence[str]
    ) -> None:
        data = change.data
        change_id = await queries.fetchval(
            "insert_access_change",
            grant_key=data.grant_key,
            source=data.source,
            booking_id=data.booking_id,
            stay_id=data.stay_id,
            property_id=data.property_id,
            kind=change.type,
            payload=change,
            now=change.timestamp,
        )
        await queries.execute(
            "insert_deliveries", change_id, data.grant_key, change.timestamp, list(sinks)
        )

    async def _record_attempt(
        self, queries: Queries, call: ClaimedCall, attempt: AttemptRecord
    ) -> None:
        await queries.execute(
            "record_attempt",
            call_id=call.id,
            attempt=call.attempts,
            started_at=attempt.started_at,
            finished_at=attempt.finished_at,
            outcome=attempt.outcome,
            http_status=attempt.http_status,
            message=attempt.message,
        )

    async def _escalate(
        self,
        queries: Queries,
        call: ClaimedCall,
        severity: Severity,
        reason: str,
        message: str,
        now: datetime,
    ) -> int | None:
        value: int | None = await queries.fetchval(
            "raise_escalation",
            grant_key=call.grant_key,
            source=call.source,
            booking_id=call.booking_id,
            property_id=call.property_id,
            call_id=call.id,
            operation=escalation_operation(call.operation, call.reason),
            severity=severity,
            reason=reason,
            message=message,
            now=now,
        )
        return value


def _keys(call: ClaimedCall) -> dict[str, object]:
    return {
        "call_id": call.id,
        "grant_key": call.grant_key,
        "source": call.source,
        "booking_id": call.booking_id,
    }


def _call_facts(call: ClaimedCall) -> CallFacts:
    return CallFacts(
        operation=call.operation,
        source=call.source,
        booking_id=call.booking_id,
        grant_key=call.grant_key,
        property_id=call.property_id,
        reference_id=call.reference_id,
        desired=call.desired,
        recovery=call.reason == RECOVER,
    )


def _held(row: Record | None) -> Access | None:
    """What the service held for a grant (a `previous_access` row)."""
    if row is None:
        return None
    return Access(
        reference_id=row["reference_id"],
        code=row["code"],
        code_formatted=row["code_formatted"],
        link=row["link"],
        active=row["active"],
        access_points=tuple(row["access_points"] or ()),
        valid_from=row["valid_from"],
        valid_to=row["valid_to"],
    )
