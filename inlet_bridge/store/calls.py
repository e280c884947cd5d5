"""How is an Inlet call claimed, and its outcome recorded? The retry table's store.

A call is claimed with FOR UPDATE SKIP LOCKED and a lease that bounds one attempt; an expired
lease is simply claimable again. Every outcome is written only if this worker still holds this
attempt (state, owner and attempt re-checked in the UPDATE), and the outcome, the actual access
and the booking's next look commit in one transaction, after the booking's row is locked (as the
reconciler locks it before it plans: a plan never sees a call half-recorded). Successes are
recorded by `store/successes.py`, several in one transaction; retries and give-ups here.
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
    doubt_after_give_up,
)
from inlet_bridge.domain.changes import (
    Access,
    AccessChange,
    CallFacts,
    change_after_failure,
)
from inlet_bridge.domain.plan import EarlierGrantAttempt, Target
from inlet_bridge.domain.retry import escalation_operation
from inlet_bridge.domain.vocab import RECOVER, CallOperation, Outcome, Severity
from inlet_bridge.store.db import Database, LeaseLost, Queries, touched

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

    @property
    def database(self) -> Database:
        return self._db

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
                        call_facts(call),
                        message=attempt.message,
                        at=attempt.finished_at,
                        reason=reason,
                        held=held_access(held),
                    )
                    await record_change(queries, change, sinks)
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

    async def release_claimed(self, ids: list[int], *, owner: str) -> None:
        """Give back calls claimed but never called (still leased to `owner`): retried at once."""
        await self._db.execute("release_claimed_calls", owner, ids)

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


async def record_change(queries: Queries, change: AccessChange, sinks: Sequence[str]) -> None:
    """Store an access change and its delivery to each sink (the PMS hears of it)."""
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


def call_keys(call: ClaimedCall) -> dict[str, object]:
    return {
        "call_id": call.id,
        "grant_key": call.grant_key,
        "source": call.source,
        "booking_id": call.booking_id,
    }


def call_facts(call: ClaimedCall) -> CallFacts:
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


def held_access(row: Record | None) -> Access | None:
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
