"""How are bookings' plans written? Claim marked bookings, load their facts, write the plans.

Bookings are claimed in batches (SKIP LOCKED): marked ones first, then due ones, then those the
sweep marked, each through its own partial index. A batch is reconciled in one transaction with
a fixed number of round trips whatever its size: lock the batch's rows, read the events, grants,
pending calls, escalated calls and GrantAccess history of all of them, decide each (pure), then
write every plan in one statement. A crash leaves the bookings marked, and their leases expire.

The transaction first locks the bookings' rows, as the call worker does before it records an
outcome: the grants and pending calls read after the lock are one state, so a call that finishes
meanwhile is seen either as pending or as done, never as neither (which would send its change
twice; docs/architecture.md rule 13). A row locked at that moment (an outcome being recorded,
or for an instant another worker's claim) is skipped and reconciled on its own right after,
waiting for the lock, as a batch of one; so is every booking of a batch whose write failed.
The holders of a property's doors with a capacity are read under a per-property lock and kept
up to date as the batch is planned in turn (`DoorHolders`), so two bookings never both take
the last place, in one batch or two; a batch that wants none of the doors (cancellations)
takes that lock shared, so it never waits for another one freeing places.

A recovery is stored as a GrantAccess call with the reason `recover` (so a release that does not
know it sends it as the contact-free GrantAccess it is). Each call is stored with the property and
grant generation it goes to (`Operation.target`), whether its success settles its grant and the
plan that queued it (`needs_look_after_success`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import msgspec
from asyncpg import Record

from inlet_bridge.domain.booking import grant_key
from inlet_bridge.domain.calls import Superseded, new_calls, stored_operation
from inlet_bridge.domain.plan import ActualGrant, EarlierGrantAttempt, GrantCall, PendingCall
from inlet_bridge.domain.reconcile import BookingInputs, Decision
from inlet_bridge.store.db import Connection, Database, LeaseLost, Queries
from inlet_bridge.store.doors import DoorCount, DoorHolders, DoorsWanted
from inlet_bridge.store.events import logged_events
from inlet_bridge.store.history import grant_calls

__all__ = ["ClaimedBooking", "LeaseLost", "ReconcileStore", "Reconciled", "SweepChunk"]

WorkKind = Literal["marked", "due", "swept"]
# The order in which work is claimed: fresh work always before the sweep's.
CLAIM_ORDER: tuple[WorkKind, ...] = ("marked", "due", "swept")
_CLAIMS = {kind: f"claim_{kind}_bookings" for kind in CLAIM_ORDER}

Key = tuple[str, str]


class ClaimedBooking(msgspec.Struct, frozen=True, kw_only=True):
    source: str
    booking_id: str
    property_id: str
    marked_seq: int
    kind: WorkKind = "marked"

    @property
    def key(self) -> Key:
        return (self.source, self.booking_id)


@dataclass(frozen=True)
class Reconciled:
    """One claimed booking's reconcile: its decision, or None when another worker took it over
    (nothing written), or the error that stopped it (nothing written; give it back)."""

    booking: ClaimedBooking
    decision: Decision | None = None
    error: Exception | None = None


class SweepChunk(msgspec.Struct, frozen=True, kw_only=True):
    marked: int
    read: int
    last: Key | None  # where the next chunk starts; None at the end of the table


Decide = Callable[[BookingInputs], Decision]


class ReconcileStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(
        self,
        *,
        owner: str,
        now: datetime,
        limit: int,
        lease_seconds: float,
        kinds: Sequence[WorkKind] = CLAIM_ORDER,
    ) -> list[ClaimedBooking]:
        """Up to `limit` bookings: marked ones first, then due ones, then swept ones."""
        claimed: list[ClaimedBooking] = []
        for kind in kinds:
            if len(claimed) >= limit:
                break
            rows = await self._db.fetch(
                _CLAIMS[kind],
                now=now,
                owner=owner,
                limit=limit - len(claimed),
                lease_seconds=lease_seconds,
            )
            claimed.extend(
                ClaimedBooking(
                    source=r["source"],
                    booking_id=r["booking_id"],
                    property_id=r["property_id"],
                    marked_seq=r["marked_seq"],
                    kind=r["kind"],
                )
                for r in rows
            )
        return claimed

    async def reconcile_batch(
        self,
        batch: Sequence[ClaimedBooking],
        *,
        owner: str,
        now: datetime,
        decide: Decide,
        capped_doors: Callable[[str], Mapping[str, int]] = lambda _: {},
    ) -> list[Reconciled]:
        """Reconcile a claimed batch; one result per booking, in no particular order."""
        results: list[Reconciled] = []
        try:
            done, alone = await self._reconcile_together(batch, owner, now, decide, capped_doors)
        except Exception:
            # One booking's write failed the batch (nothing was written): each on its own.
            done, alone = [], list(batch)
        results.extend(done)
        for booking in alone:
            results.append(await self._reconcile_alone(booking, owner, now, decide, capped_doors))
        return results

    async def release(self, claimed: ClaimedBooking, *, owner: str, retry_at: datetime) -> None:
        await self._db.execute(
            "release_booking", claimed.source, claimed.booking_id, retry_at, owner
        )

    async def release_all(self, *, owner: str) -> None:
        await self._db.execute("release_bookings", owner)

    async def mark(self, source: str, booking_id: str, now: datetime) -> None:
        await self._db.execute("mark_booking", source, booking_id, now)

    async def sweep_mark(self, *, after: Key, now: datetime, limit: int) -> SweepChunk:
        """Mark the next `limit` bookings after `after` that have access or a look to come."""
        row = await self._db.fetchrow(
            "sweep_mark_bookings",
            after_source=after[0],
            after_booking_id=after[1],
            now=now,
            limit=limit,
        )
        assert row is not None
        last = None
        if row["last_source"] is not None and row["read"] >= limit:
            last = (row["last_source"], row["last_booking_id"])
        return SweepChunk(marked=row["marked"], read=row["read"], last=last)

    async def booking_count(self) -> int:
        value: int = await self._db.fetchval("count_bookings")
        return value

    async def sweep_waiting(self) -> int:
        value: int = await self._db.fetchval("sweep_waiting")
        return value

    async def next_due(self) -> datetime | None:
        value: datetime | None = await self._db.fetchval("next_booking_due")
        return value

    # ------------------------------------------------------------------ one transaction

    async def _reconcile_together(
        self,
        batch: Sequence[ClaimedBooking],
        owner: str,
        now: datetime,
        decide: Decide,
        capped_doors: Callable[[str], Mapping[str, int]],
    ) -> tuple[list[Reconciled], list[ClaimedBooking]]:
        """The batch in one transaction; returns the results and the bookings it skipped."""
        by_key = {b.key: b for b in batch}
        async with self._db.transaction() as conn:
            rows = await self._db.on(conn).fetch(
                "lock_bookings",
                sources=[b.source for b in batch],
                booking_ids=[b.booking_id for b in batch],
                owner=owner,
            )
            locked = {(r["source"], r["booking_id"]): int(r["plans"]) for r in rows}
            claimed = [by_key[key] for key in sorted(locked)]
            inputs = await self._inputs(conn, claimed, now)
            results = await self._plan_and_write(
                conn, claimed, inputs, locked, owner, now, decide, capped_doors
            )
        skipped = [b for b in batch if b.key not in locked]
        return results, skipped

    async def _exact_doors(
        self, conn: Connection, property_id: str, doors: Mapping[str, int]
    ) -> DoorHolders:
        rows = await self._db.on(conn).fetch(
            "capped_door_holders", property_id=property_id, doors=list(doors)
        )
        return DoorHolders(list(doors), rows)

    async def _reconcile_alone(
        self,
        booking: ClaimedBooking,
        owner: str,
        now: datetime,
        decide: Decide,
        capped_doors: Callable[[str], Mapping[str, int]],
    ) -> Reconciled:
        """One booking in its own transaction, waiting for its row (as a batch of one: its door
        counted the same way, so a booking a batch skipped never reads a whole property)."""
        try:
            async with self._db.transaction() as conn:
                held = await conn.fetchrow(
                    self._db.sql("lock_booking"), booking.source, booking.booking_id, owner
                )
                if held is None:
                    raise LeaseLost
                inputs = await self._inputs(conn, [booking], now)
                (result,) = await self._plan_and_write(
                    conn,
                    [booking],
                    inputs,
                    {booking.key: int(held["plans"])},
                    owner,
                    now,
                    decide,
                    capped_doors,
                )
                if result.error is not None:
                    return result  # nothing was written for it
        except LeaseLost:
            return Reconciled(booking=booking)
        except Exception as exc:
            return Reconciled(booking=booking, error=exc)
        return result

    async def _plan_and_write(
        self,
        conn: Connection,
        claimed: Sequence[ClaimedBooking],
        inputs: Mapping[Key, BookingInputs],
        plans: Mapping[Key, int],
        owner: str,
        now: datetime,
        decide: Decide,
        capped_doors: Callable[[str], Mapping[str, int]] = lambda _: {},
    ) -> list[Reconciled]:
        """Decide every booking and write the plans. Where a property has doors of a capacity,
        its door lock is taken (in property order) and the plans are checked against their use
        (`DoorsWanted`): a batch wanting none of them takes the lock shared (it may free places,
        so it waits for a plan counting them, but never for another batch freeing them or for a
        revocation being recorded); else alone, and close to capacity the property's bookings
        are planned again counting each door's holders exactly (`DoorHolders`)."""
        if not claimed:
            return []
        properties = sorted({b.property_id for b in claimed})
        wanted = {p: DoorsWanted(doors) for p in properties if (doors := capped_doors(p))}
        decided, results = self._decide(claimed, inputs, decide, wanted)
        for property_id, count in wanted.items():
            if not count.wanted_any():
                await conn.execute(self._db.sql("lock_property_doors_shared"), property_id)
                continue
            await conn.execute(self._db.sql("lock_property_doors"), property_id)
            bound = await conn.fetchval(self._db.sql("door_use_bound"), property_id)
            if count.far_from_capacity(int(bound)):
                continue
            exact = await self._exact_doors(conn, property_id, count.capacity)
            again = [b for b, _ in decided if b.property_id == property_id]
            redone, failed = self._decide(again, inputs, decide, {property_id: exact})
            decided = [(b, d) for b, d in decided if b.property_id != property_id] + redone
            results += failed
        await self._write(conn, decided, plans, owner, now)
        results.extend(Reconciled(booking=b, decision=d) for b, d in decided)
        return results

    @staticmethod
    def _decide(
        claimed: Sequence[ClaimedBooking],
        inputs: Mapping[Key, BookingInputs],
        decide: Decide,
        doors: Mapping[str, DoorCount],
    ) -> tuple[list[tuple[ClaimedBooking, Decision]], list[Reconciled]]:
        decided: list[tuple[ClaimedBooking, Decision]] = []
        failed: list[Reconciled] = []
        for booking in claimed:
            facts = inputs[booking.key]
            count = doors.get(booking.property_id)
            if count is not None:
                facts = msgspec.structs.replace(facts, door_usage=count.usage(booking.key))
            try:
                decision = decide(facts)
            except Exception as exc:  # one booking's bad data must not stop the others
                failed.append(Reconciled(booking=booking, error=exc))
                continue
            decided.append((booking, decision))
            if count is not None:
                count.planned(booking.key, decision)
        return decided, failed

    async def _inputs(
        self,
        conn: Connection,
        claimed: Sequence[ClaimedBooking],
        now: datetime,
    ) -> dict[Key, BookingInputs]:
        """Every claimed booking's facts, in one read per kind of fact for the whole batch."""
        queries = self._db.on(conn)
        keys = {
            "sources": [b.source for b in claimed],
            "booking_ids": [b.booking_id for b in claimed],
        }
        events = _grouped(await queries.fetch("bookings_events", **keys))
        grants = _grouped(await queries.fetch("bookings_grants", **keys))
        locked = _grouped(await queries.fetch("lock_bookings_pending_calls", **keys))
        escalated = _grouped(await queries.fetch("bookings_escalated_calls", **keys))
        history = _grouped(await queries.fetch("bookings_grant_history", **keys))
        attempts: dict[int, list[EarlierGrantAttempt]] = {}
        for r in await queries.fetch("bookings_unsettled_call_attempts", **keys):
            attempts.setdefault(r["call_id"], []).append(
                EarlierGrantAttempt(
                    fingerprint=r["fingerprint"], outcome=r["outcome"], http_status=r["http_status"]
                )
            )
        inputs = {}
        for booking in claimed:
            key = booking.key
            pending: dict[str, PendingCall] = {
                r["grant_key"]: PendingCall(
                    call_id=r["id"],
                    grant_key=r["grant_key"],
                    operation=stored_operation(r["operation"], r["reason"]),
                    fingerprint=r["fingerprint"],
                    status="escalated",
                    attempts=tuple(attempts.get(r["id"], ())),
                )
                for r in escalated.get(key, ())
            }
            for r in locked.get(key, ()):  # a pending call outranks an escalated one
                in_flight = r["lease_until"] is not None and r["lease_until"] >= now
                pending[r["grant_key"]] = PendingCall(
                    call_id=r["id"],
                    grant_key=r["grant_key"],
                    operation=stored_operation(r["operation"], r["reason"]),
                    fingerprint=r["fingerprint"],
                    status="in_flight" if in_flight else "queued",
                    attempts=tuple(attempts.get(r["id"], ())),
                )
            sent: dict[str, tuple[GrantCall, ...]] = grant_calls(history.get(key, []))
            inputs[key] = BookingInputs(
                source=booking.source,
                booking_id=booking.booking_id,
                property_id=booking.property_id,
                events=logged_events(events.get(key, [])),
                actual={
                    r["grant_key"]: ActualGrant(
                        grant_key=r["grant_key"],
                        state=r["state"],
                        reference_id=r["reference_id"],
                        fingerprint=r["fingerprint"],
                        property_id=r["property_id"],
                        generation=r["generation"],
                    )
                    for r in grants.get(key, ())
                },
                pending=pending,
                sent=sent,
            )
        return inputs

    async def _write(
        self,
        conn: Connection,
        decided: Sequence[tuple[ClaimedBooking, Decision]],
        plans: Mapping[Key, int],
        owner: str,
        now: datetime,
    ) -> None:
        """Every plan of the batch in one statement (plus one to withdraw replaced calls)."""
        if not decided:
            return
        queries = self._db.on(conn)
        superseded = await self._withdraw(queries, decided, now)
        calls, issues, open_issues = _plan_rows(decided, superseded, plans, now)
        row = await queries.fetchrow(
            "write_plans",
            **calls,
            **issues,
            open_issues=open_issues,
            sources=[b.source for b, _ in decided],
            booking_ids=[b.booking_id for b, _ in decided],
            seen_seqs=[b.marked_seq for b, _ in decided],
            due_ats=[d.next_look_at for _, d in decided],
            now=now,
            owner=owner,
        )
        assert row is not None
        if row["finished"] != len(decided):
            raise LeaseLost

    @staticmethod
    async def _withdraw(
        queries: Queries, decided: Sequence[tuple[ClaimedBooking, Decision]], now: datetime
    ) -> dict[int, Superseded]:
        """Withdraw the queued calls the plans replace (recording any doubt they leave)."""
        replaced = [op.supersedes for _, d in decided for op in d.operations if op.supersedes]
        if not replaced:
            return {}
        rows = await queries.fetch("supersede_calls", call_ids=replaced, now=now)
        superseded = {
            r["id"]: Superseded(call_id=r["id"], reason=r["reason"], resync_id=r["resync_id"])
            for r in rows
        }
        if len(superseded) != len(set(replaced)):
            raise LeaseLost  # a worker took a call after all: plan again later
        for _, decision in decided:
            for op in decision.operations:
                if op.supersedes is not None and op.doubt is not None:
                    # the withdrawn call may have changed the grant: Inlet's content is in doubt
                    await queries.execute("doubt_grant", op.grant_key, op.doubt)
        return superseded


def _plan_rows(
    decided: Sequence[tuple[ClaimedBooking, Decision]],
    superseded: Mapping[int, Superseded],
    plans: Mapping[Key, int],
    now: datetime,
) -> tuple[dict[str, list[object]], dict[str, list[object]], list[str]]:
    """The columns of write_plans: the calls to queue, the stay escalations, the open issues."""
    calls: dict[str, list[object]] = {name: [] for name in _CALL_COLUMNS}
    issues: dict[str, list[object]] = {name: [] for name in _ISSUE_COLUMNS}
    open_issues: list[str] = []
    for booking, decision in decided:
        planned_in = plans[booking.key] + 1
        for call in new_calls(decision.operations, superseded, now):
            for name, value in zip(
                _CALL_COLUMNS,
                (
                    call.grant_key,
                    booking.source,
                    booking.booking_id,
                    call.property_id,
                    call.operation,
                    call.reason,
                    msgspec.json.encode(call.request or {}).decode(),
                    call.fingerprint,
                    call.priority,
                    call.deadline,
                    call.resync_id,
                    call.generation,
                    call.external_id,
                    call.settles,
                    planned_in,
                ),
                strict=True,
            ):
                calls[name].append(value)
        state = decision.state
        property_id = state.booking.property_id if state else booking.property_id
        for issue in decision.desired.issues:
            if not issue.escalate:
                continue
            key = grant_key(booking.source, booking.booking_id, issue.stay_id)
            open_issues.append(f"{key}/{issue.kind}")
            for name, value in zip(
                _ISSUE_COLUMNS,
                (key, booking.source, booking.booking_id, property_id, issue.kind, issue.message),
                strict=True,
            ):
                issues[name].append(value)
    return calls, issues, open_issues


_CALL_COLUMNS = (
    "call_grant_keys",
    "call_sources",
    "call_booking_ids",
    "call_property_ids",
    "call_operations",
    "call_reasons",
    "call_requests",
    "call_fingerprints",
    "call_priorities",
    "call_deadlines",
    "call_resync_ids",
    "call_generations",
    "call_external_ids",
    "call_settles",
    "call_planned_in",
)
_ISSUE_COLUMNS = (
    "issue_grant_keys",
    "issue_sources",
    "issue_booking_ids",
    "issue_property_ids",
    "issue_reasons",
    "issue_messages",
)


def _grouped(rows: Sequence[Record]) -> dict[Key, list[Record]]:
    """Rows of a batch read, per booking, in the order the query gave them."""
    grouped: dict[Key, list[Record]] = {}
    for r in rows:
        grouped.setdefault((r["source"], r["booking_id"]), []).append(r)
    return grouped
