"""How is an Inlet call claimed, and its outcome recorded? The retry table's store.

A call is claimed with FOR UPDATE SKIP LOCKED and a lease that bounds one attempt; an expired
lease is simply claimable again. Every outcome is written only if this worker still holds this
attempt (state, owner and attempt re-checked in the UPDATE), and the outcome, the actual access
and the booking's next look commit in one transaction, after the booking's row is locked (as the
reconciler locks it before it plans: a plan never sees a call half-recorded). A grant is stored
with the property, generation and Inlet account it was made under. After a GrantAccess, the content is
recorded as unverified when an earlier GrantAccess of the grant may have left other content at
Inlet (see `fingerprint_after_grant`). A recovery (a GrantAccess to get back a grant that must
go) records only the ReferenceId, unverified, and tells the sinks nothing: the next plan revokes
the grant, and that revocation is the change they hear of.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import msgspec
from asyncpg import Record

from service.domain.access import DesiredGrant
from service.domain.changes import (
    Access,
    AccessChange,
    CallFacts,
    change_after_failure,
    change_after_success,
)
from service.domain.plan import (
    RECOVER,
    UNVERIFIED,
    Target,
    attempts_toward,
    fingerprint_after_grant,
)
from service.domain.retry import escalation_operation
from service.store.db import Connection, Database
from service.store.history import grant_history

log = logging.getLogger(__name__)

Operation = Literal["grant", "update", "revoke"]


class ClaimedCall(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    grant_key: str
    source: str
    booking_id: str
    property_id: str
    operation: Operation
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

    @property
    def target(self) -> Target:
        return Target(property_id=self.property_id, generation=self.generation)


class AttemptRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt's outcome as the timeline shows it (no personal data)."""

    outcome: Literal["success", "temporary", "permanent"]
    http_status: int | None
    message: str
    started_at: datetime
    finished_at: datetime


class AccessData(msgspec.Struct, frozen=True, kw_only=True):
    reference_id: str | None
    code: str | None
    code_formatted: str | None
    link: str | None


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
            )
            for r in rows
        ]

    async def succeeded(
        self,
        call: ClaimedCall,
        *,
        owner: str,
        attempt: AttemptRecord,
        access: AccessData,
        sinks: Sequence[str] = (),
        account: str | None = None,
    ) -> bool:
        """Record success, the access Inlet now holds and the change for each sink, together;
        False if the lease was lost (nothing written). `account`: the Inlet account called."""
        now = attempt.finished_at
        recovery = call.reason == RECOVER
        if recovery:
            # The code was never the guest's to have, nor the PMS's to show: keep only the
            # ReferenceId the revocation needs.
            access = AccessData(
                reference_id=access.reference_id, code=None, code_formatted=None, link=None
            )
        try:
            async with self._db.transaction() as conn:
                await self._lock_booking(conn, call)
                await self._finish(conn, call, owner, "succeeded", attempt)
                previous = await conn.fetchrow(self._db.sql("previous_access"), call.grant_key)
                if previous is not None and previous["generation"] != call.generation:
                    previous = None  # another generation's code is not this grant's
                await self._apply_access(conn, call, attempt, access, account)
                if sinks and not recovery:
                    change = change_after_success(
                        _call_facts(call),
                        message=attempt.message,
                        at=attempt.finished_at,
                        returned=_access(access),
                        previous=_access(previous),
                    )
                    await self._record_change(conn, change, sinks)
                await conn.execute(self._db.sql("resolve_call_escalations"), call.grant_key, now)
                await conn.execute(self._db.sql("mark_booking"), call.source, call.booking_id, now)
        except _Rollback:
            return False
        return True

    async def _apply_access(
        self,
        conn: Connection,
        call: ClaimedCall,
        attempt: AttemptRecord,
        access: AccessData,
        account: str | None,
    ) -> None:
        now = attempt.finished_at
        if call.operation == "revoke":
            await conn.execute(self._db.sql("revoke_grant"), call.grant_key, attempt.message, now)
            # a shared door may have a free place now
            await conn.execute(self._db.sql("mark_waiting_for_doors"), call.property_id, now)
        else:
            desired = call.desired
            assert desired is not None
            fingerprint = desired.fingerprint
            if call.operation == "grant" or call.reference_id is None:
                # A GrantAccess: Inlet may have answered with a grant an earlier call made.
                history = await grant_history(
                    self._db,
                    conn,
                    call.source,
                    call.booking_id,
                    grant_key=call.grant_key,
                    before_call=call.id,
                )
                earlier = attempts_toward(history.get(call.grant_key, ()), call.target)
                fingerprint = fingerprint_after_grant(desired.fingerprint, earlier)
                if fingerprint == UNVERIFIED and call.reason != RECOVER:
                    log.info(
                        "granted, but Inlet may hold an earlier call's content: recorded as unverified",
                        extra={
                            "action": "call.grant_unverified",
                            "call_id": call.id,
                            "grant_key": call.grant_key,
                            "source": call.source,
                            "booking_id": call.booking_id,
                        },
                    )
            await conn.execute(
                self._db.sql("upsert_grant"),
                call.grant_key,
                call.source,
                call.booking_id,
                desired.stay_id,
                call.property_id,
                "active",
                access.reference_id,
                access.code,
                access.code_formatted,
                access.link,
                list(desired.access_points),
                desired.valid_from,
                desired.valid_to,
                fingerprint,
                attempt.message,
                now,
                desired.resource_id,
                msgspec.json.encode(desired).decode(),
                call.generation,
                call.external_id or call.grant_key,
                account,
            )

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
                await self._record_attempt(conn, call, attempt)
                status = await conn.execute(
                    self._db.sql("schedule_retry"),
                    call.id,
                    owner,
                    call.attempts,
                    at,
                    attempt.outcome,
                    attempt.http_status,
                    attempt.message,
                )
                if status.endswith(" 0"):
                    raise _Rollback
                if late_escalation is not None:
                    await self._escalate(
                        conn,
                        call,
                        "warning",
                        "late_for_arrival",
                        late_escalation,
                        attempt.finished_at,
                    )
        except _Rollback:
            return False
        return True

    async def gave_up(
        self,
        call: ClaimedCall,
        *,
        owner: str,
        attempt: AttemptRecord,
        severity: str,
        reason: str,
        sinks: Sequence[str] = (),
    ) -> int | None:
        """Mark the call failed and open an escalation; its id, or None if the lease was lost."""
        try:
            async with self._db.transaction() as conn:
                await self._lock_booking(conn, call)
                await self._finish(conn, call, owner, "failed", attempt)
                escalation_id: int | None = await self._escalate(
                    conn, call, severity, reason, attempt.message, attempt.finished_at
                )
                if sinks:
                    held = await conn.fetchrow(self._db.sql("previous_access"), call.grant_key)
                    change = change_after_failure(
                        _call_facts(call),
                        message=attempt.message,
                        at=attempt.finished_at,
                        reason=reason,
                        held=_access(held),
                    )
                    await self._record_change(conn, change, sinks)
                # The booking is looked at again; the plan will not repeat the escalated call.
                await conn.execute(
                    self._db.sql("mark_booking"), call.source, call.booking_id, attempt.finished_at
                )
        except _Rollback:
            return None
        return escalation_id

    async def release(self, *, owner: str) -> None:
        """Give back this worker's leases on shutdown so another replica retries at once."""
        await self._db.execute("release_calls", owner)

    async def next_due(self) -> datetime | None:
        value: datetime | None = await self._db.fetchval("next_call_due")
        return value

    async def _lock_booking(self, conn: Connection, call: ClaimedCall) -> None:
        await conn.execute(self._db.sql("lock_booking_for_outcome"), call.source, call.booking_id)

    async def _finish(
        self,
        conn: Connection,
        call: ClaimedCall,
        owner: str,
        state: str,
        attempt: AttemptRecord,
    ) -> None:
        await self._record_attempt(conn, call, attempt)
        status = await conn.execute(
            self._db.sql("finish_call"),
            call.id,
            owner,
            call.attempts,
            state,
            attempt.finished_at,
            attempt.outcome,
            attempt.http_status,
            attempt.message,
        )
        if status.endswith(" 0"):
            raise _Rollback

    async def _record_change(
        self, conn: Connection, change: AccessChange, sinks: Sequence[str]
    ) -> None:
        data = change.data
        change_id = await conn.fetchval(
            self._db.sql("insert_access_change"),
            data.grant_key,
            data.source,
            data.booking_id,
            data.stay_id,
            data.property_id,
            change.type,
            msgspec.json.encode(change).decode(),
            change.timestamp,
        )
        await conn.execute(
            self._db.sql("insert_deliveries"),
            change_id,
            data.grant_key,
            change.timestamp,
            list(sinks),
        )

    async def _record_attempt(
        self, conn: Connection, call: ClaimedCall, attempt: AttemptRecord
    ) -> None:
        await conn.execute(
            self._db.sql("record_attempt"),
            call.id,
            call.attempts,
            attempt.started_at,
            attempt.finished_at,
            attempt.outcome,
            attempt.http_status,
            attempt.message,
        )

    async def _escalate(
        self,
        conn: Connection,
        call: ClaimedCall,
        severity: str,
        reason: str,
        message: str,
        now: datetime,
    ) -> int | None:
        value: int | None = await conn.fetchval(
            self._db.sql("raise_escalation"),
            call.grant_key,
            call.source,
            call.booking_id,
            call.property_id,
            call.id,
            escalation_operation(call.operation, call.reason),
            severity,
            reason,
            message,
            now,
        )
        return value


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


def _access(values: AccessData | Record | None) -> Access | None:
    if values is None:
        return None
    if isinstance(values, AccessData):
        return Access(**msgspec.structs.asdict(values))
    return Access(
        reference_id=values["reference_id"],
        code=values["code"],
        code_formatted=values["code_formatted"],
        link=values["link"],
        active=values["active"],
        access_points=tuple(values["access_points"] or ()),
        valid_from=values["valid_from"],
        valid_to=values["valid_to"],
    )


class _Rollback(Exception):
    """The lease was lost: undo this transaction's writes."""
