"""How is one booking's plan written? Claim marked bookings, load their facts, write the plan.

Everything a reconcile writes (superseded calls, new calls, escalations, the next look) commits
in one transaction; a crash leaves the booking marked, and its lease expires. The transaction
first locks the booking's row, as the call worker does before it records an outcome: the grants
and pending calls read after the lock are one state, so a call that finishes meanwhile is seen
either as pending or as done, never as neither (which would send its change twice). A recovery
is stored as a GrantAccess call with the reason `recover` (so a release that does not know it
sends it as the contact-free GrantAccess it is). Each call is stored with the property and
grant generation it goes to (`Operation.target`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import msgspec

from service.domain.booking import grant_key
from service.domain.calls import Superseded, new_calls, stored_operation
from service.domain.plan import ActualGrant, PendingCall
from service.domain.reconcile import BookingInputs, Decision
from service.store.db import Connection, Database, LeaseLost, touched
from service.store.events import logged_events
from service.store.history import grant_history

__all__ = ["ClaimedBooking", "LeaseLost", "ReconcileStore"]


class ClaimedBooking(msgspec.Struct, frozen=True, kw_only=True):
    source: str
    booking_id: str
    property_id: str
    marked_seq: int


class ReconcileStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(
        self, *, owner: str, now: datetime, limit: int, lease_seconds: float
    ) -> list[ClaimedBooking]:
        rows = await self._db.fetch("claim_bookings", now, owner, limit, lease_seconds)
        return [
            ClaimedBooking(
                source=r["source"],
                booking_id=r["booking_id"],
                property_id=r["property_id"],
                marked_seq=r["marked_seq"],
            )
            for r in rows
        ]

    async def reconcile(
        self,
        claimed: ClaimedBooking,
        *,
        owner: str,
        now: datetime,
        decide: Callable[[BookingInputs], Decision],
        capped_doors: Sequence[str] = (),
    ) -> Decision | None:
        """Load, decide, write; raises LeaseLost when another worker took over (nothing written).

        `capped_doors` are the property's doors with a capacity: their use by other bookings
        is loaded so the decision can keep within it.
        """
        async with self._db.transaction() as conn:
            held = await conn.fetchrow(
                self._db.sql("lock_booking"), claimed.source, claimed.booking_id, owner
            )
            if held is None:
                raise LeaseLost
            inputs = await self._inputs(conn, claimed, now, capped_doors)
            decision = decide(inputs)
            await self._write(conn, claimed, decision, now)
            status = await self._db.on(conn).execute(
                "finish_booking",
                source=claimed.source,
                booking_id=claimed.booking_id,
                seen_seq=claimed.marked_seq,
                due_at=decision.next_look_at,
                now=now,
                owner=owner,
            )
            if not touched(status):
                raise LeaseLost
        return decision

    async def release(self, claimed: ClaimedBooking, *, owner: str, retry_at: datetime) -> None:
        await self._db.execute(
            "release_booking", claimed.source, claimed.booking_id, retry_at, owner
        )

    async def release_all(self, *, owner: str) -> None:
        await self._db.execute("release_bookings", owner)

    async def mark(self, source: str, booking_id: str, now: datetime) -> None:
        await self._db.execute("mark_booking", source, booking_id, now)

    async def active_bookings(self) -> list[tuple[str, str]]:
        return [(r["source"], r["booking_id"]) for r in await self._db.fetch("active_bookings")]

    async def next_due(self) -> datetime | None:
        value: datetime | None = await self._db.fetchval("next_booking_due")
        return value

    async def _inputs(
        self,
        conn: Connection,
        claimed: ClaimedBooking,
        now: datetime,
        capped_doors: Sequence[str],
    ) -> BookingInputs:
        key = (claimed.source, claimed.booking_id)
        usage: dict[str, int] = {}
        if capped_doors:
            rows = await conn.fetch(
                self._db.sql("door_usage"), claimed.property_id, *key, list(capped_doors)
            )
            usage = {r["door"]: r["used"] for r in rows}
        events = await self._db.on(conn).fetch("booking_events", *key)
        grants = await conn.fetch(self._db.sql("booking_grants"), *key)
        locked = await conn.fetch(self._db.sql("lock_pending_calls"), *key)
        escalated = await conn.fetch(self._db.sql("escalated_calls"), *key)
        sent = await grant_history(self._db, conn, *key)
        pending: dict[str, PendingCall] = {
            r["grant_key"]: PendingCall(
                call_id=r["id"],
                grant_key=r["grant_key"],
                operation=stored_operation(r["operation"], r["reason"]),
                fingerprint=r["fingerprint"],
                status="escalated",
            )
            for r in escalated
        }
        for r in locked:  # a pending call outranks an escalated one for the same grant
            in_flight = r["lease_until"] is not None and r["lease_until"] >= now
            pending[r["grant_key"]] = PendingCall(
                call_id=r["id"],
                grant_key=r["grant_key"],
                operation=stored_operation(r["operation"], r["reason"]),
                fingerprint=r["fingerprint"],
                status="in_flight" if in_flight else "queued",
            )
        return BookingInputs(
            source=claimed.source,
            booking_id=claimed.booking_id,
            property_id=claimed.property_id,
            events=logged_events(events),
            actual={
                r["grant_key"]: ActualGrant(
                    grant_key=r["grant_key"],
                    state=r["state"],
                    reference_id=r["reference_id"],
                    fingerprint=r["fingerprint"],
                    property_id=r["property_id"],
                    generation=r["generation"],
                )
                for r in grants
            },
            pending=pending,
            door_usage=usage,
            sent=sent,
        )

    async def _write(
        self, conn: Connection, claimed: ClaimedBooking, decision: Decision, now: datetime
    ) -> None:
        queries = self._db.on(conn)
        property_id = decision.state.booking.property_id if decision.state else claimed.property_id
        superseded: dict[int, Superseded] = {}
        for op in decision.operations:
            if op.supersedes is None:
                continue
            replaced = await conn.fetchrow(self._db.sql("supersede_call"), op.supersedes, now)
            if replaced is None:
                raise LeaseLost  # a worker took the call after all: plan again later
            superseded[op.supersedes] = Superseded(
                call_id=op.supersedes, reason=replaced["reason"], resync_id=replaced["resync_id"]
            )
        for call in new_calls(decision.operations, superseded, now):
            await queries.fetchval(
                "insert_call",
                grant_key=call.grant_key,
                source=claimed.source,
                booking_id=claimed.booking_id,
                property_id=call.property_id,
                operation=call.operation,
                reason=call.reason,
                request=call.request if call.request is not None else {},
                fingerprint=call.fingerprint,
                priority=call.priority,
                now=now,
                deadline=call.deadline,
                resync_id=call.resync_id,
                generation=call.generation,
                external_id=call.external_id,
            )
        open_issues = []
        for issue in decision.desired.issues:
            if not issue.escalate:
                continue
            key = grant_key(claimed.source, claimed.booking_id, issue.stay_id)
            open_issues.append(f"{key}/{issue.kind}")
            await queries.fetchval(
                "raise_escalation",
                grant_key=key,
                source=claimed.source,
                booking_id=claimed.booking_id,
                property_id=property_id,
                call_id=None,
                operation=None,
                severity="high",
                reason=issue.kind,
                message=issue.message,
                now=now,
            )
        await conn.execute(
            self._db.sql("resolve_stay_escalations"),
            claimed.source,
            claimed.booking_id,
            open_issues,
            now,
        )
