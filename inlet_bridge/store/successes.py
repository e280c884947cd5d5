"""How are the successes of Inlet calls recorded, several in one transaction?

Calls whose answers arrive together share one transaction: one BEGIN, one statement locking
all their booking rows (in key order, as every batch locks them, so two never wait for each
other in a circle) and one COMMIT, and one statement per kind (grants and updates; revocations)
writes every call's attempt, the call succeeded, what Inlet now holds, the grant's escalations
resolved and the booking's mark. As for one call alone: each booking is locked before its
outcome is recorded (a plan never sees a call half-recorded), and a call is written only if
this worker still holds this attempt's lease; a call whose lease was lost gets nothing written
and the others are recorded as if it were not there. What a success leaves behind is decided by
`domain/calls.py` (`after_success`, `needs_look_after_success`). A batch holds at most one call
per booking: the caller keeps the others for the next.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import msgspec

from inlet_bridge.domain.calls import (
    BookingPlans,
    SuccessRecord,
    after_success,
    needs_look_after_success,
)
from inlet_bridge.domain.changes import Access, change_after_success
from inlet_bridge.domain.plan import attempts_toward
from inlet_bridge.store.calls import (
    AttemptRecord,
    ClaimedCall,
    call_facts,
    call_keys,
    held_access,
    record_change,
)
from inlet_bridge.store.db import Connection, Database, Queries, touched
from inlet_bridge.store.history import grant_history

log = logging.getLogger(__name__)

Key = tuple[str, str]
_NO_ROW = BookingPlans(plans=-1, reconciled_at=None)  # a call queued by hand: never skipped


class Success(msgspec.Struct, frozen=True, kw_only=True):
    """One call's success to record: what Inlet answered, and where its changes go."""

    call: ClaimedCall
    attempt: AttemptRecord
    access: Access
    sinks: tuple[str, ...] = ()
    account: str | None = None  # the Inlet account called

    @property
    def booking(self) -> Key:
        return (self.call.source, self.call.booking_id)


class Recorded(msgspec.Struct, frozen=True, kw_only=True):
    """What recording one success did."""

    kept: bool  # False: the lease was lost, nothing was written for this call
    marked: bool = False  # a booking was marked for another look (its own, or one owed a door)
    changed: bool = False  # an access change was stored for the PMS


class _Decided(msgspec.Struct, frozen=True, kw_only=True):
    success: Success
    record: SuccessRecord
    look: bool
    previous: Access | None


class SuccessStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(
        self,
        successes: Sequence[Success],
        *,
        owner: str,
        before_doors: Callable[[], None] | None = None,
    ) -> list[Recorded]:
        """Record `successes` (at most one per booking) in one transaction; one `Recorded` each,
        in order. Raises if the transaction fails: then nothing of any of them is written.

        `before_doors` is called before the transaction waits for a property's door lock (a plan
        may hold it for a while), when the batch holds revocations."""
        bookings = [s.booking for s in successes]
        if len(set(bookings)) != len(bookings):
            raise ValueError("at most one call per booking is recorded in one transaction")
        async with self._db.transaction() as conn:
            queries = self._db.on(conn)
            rows = await queries.fetch(
                "lock_bookings_for_outcomes",
                sources=[source for source, _ in bookings],
                booking_ids=[booking_id for _, booking_id in bookings],
            )
            locked = {
                (r["source"], r["booking_id"]): BookingPlans(
                    plans=r["plans"], reconciled_at=r["reconciled_at"]
                )
                for r in rows
            }
            decided = [
                await self._decide(conn, s, locked.get(s.booking, _NO_ROW)) for s in successes
            ]
            # A revocation may free a place on a shared door: its property's door lock is held
            # (shared, in property order) before anything is written, as the reconciler holds it
            # alone while it counts places, so a plan counts the place or its booking is marked
            # below. Taken first, its wait holds no row another batch needs.
            freeing = sorted({d.success.call.property_id for d in decided if _revoke(d)})
            if freeing and before_doors is not None:
                before_doors()
            for property_id in freeing:
                await queries.execute("lock_property_doors_shared", property_id)
            finished = await self._write(queries, decided, owner)
            owed_doors = await self._owed_doors(queries, decided, finished)
            results = []
            for d in decided:
                call = d.success.call
                if call.id not in finished:
                    results.append(Recorded(kept=False))
                    continue
                if d.record.unverified:
                    log.info(
                        "granted, but Inlet may hold an earlier call's content: recorded as"
                        " unverified",
                        extra={"action": "call.grant_unverified", **call_keys(call)},
                    )
                changed = False
                if d.success.sinks and d.record.tell_sinks:
                    change = change_after_success(
                        call_facts(call),
                        message=d.success.attempt.message,
                        at=d.success.attempt.finished_at,
                        returned=d.record.access,
                        previous=d.previous,
                    )
                    await record_change(queries, change, d.success.sinks)
                    changed = True
                marked = d.look or (call.operation == "revoke" and call.property_id in owed_doors)
                results.append(Recorded(kept=True, marked=marked, changed=changed))
        return results

    async def _decide(self, conn: Connection, success: Success, booking: BookingPlans) -> _Decided:
        """Under the booking's lock: what the success leaves behind, and whether it needs a look."""
        call, queries = success.call, self._db.on(conn)
        previous = None
        if success.sinks:  # what the PMS held before is told only to sinks
            row = await queries.fetchrow("previous_access", call.grant_key)
            if row is not None and row["generation"] == call.generation:
                previous = held_access(row)  # another generation's code is not this grant's
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
            returned=success.access,
            earlier=earlier,
        )
        look = needs_look_after_success(
            operation=call.operation,
            reason=call.reason,
            record=record,
            http_status=success.attempt.http_status,
            planned=call.planned,
            booking=booking,
        )
        return _Decided(success=success, record=record, look=look, previous=previous)

    async def _write(self, queries: Queries, decided: Sequence[_Decided], owner: str) -> set[int]:
        """One statement per kind (docs/architecture.md rule 9); the ids of the calls written."""
        grants = [
            _json(_grant_outcome(d, owner)) for d in decided if d.success.call.operation != "revoke"
        ]
        revokes = [
            _json(_outcome(d, owner)) for d in decided if d.success.call.operation == "revoke"
        ]
        finished: set[int] = set()
        if grants:
            rows = await queries.fetch(
                "record_grant_successes",
                outcomes=grants,
                call_ids=[d.success.call.id for d in decided if not _revoke(d)],
            )
            finished.update(r["id"] for r in rows)
        if revokes:
            rows = await queries.fetch(
                "record_revoke_successes",
                outcomes=revokes,
                call_ids=[d.success.call.id for d in decided if _revoke(d)],
            )
            finished.update(r["id"] for r in rows)
        return finished

    async def _owed_doors(
        self, queries: Queries, decided: Sequence[_Decided], finished: set[int]
    ) -> set[str]:
        """Under the door locks: a few bookings owed a door of each property where a revocation
        was recorded are marked. The properties where some were."""
        latest: dict[str, datetime] = {}
        for d in decided:
            if _revoke(d) and d.success.call.id in finished:
                at, property_id = d.success.attempt.finished_at, d.success.call.property_id
                latest[property_id] = max(at, latest.get(property_id, at))
        marked = set()
        for property_id in sorted(latest):
            status = await queries.execute(
                "mark_waiting_for_doors", property_id, latest[property_id]
            )
            if touched(status):
                marked.add(property_id)
        return marked


def _revoke(d: _Decided) -> bool:
    return d.success.call.operation == "revoke"


def _json(outcome: dict[str, Any]) -> str:
    return msgspec.json.encode(outcome).decode()


def _outcome(d: _Decided, owner: str) -> dict[str, Any]:
    call, attempt = d.success.call, d.success.attempt
    return {
        "call_id": call.id,
        "owner": owner,
        "attempt": call.attempts,
        "started_at": attempt.started_at,
        "now": attempt.finished_at,
        "outcome": attempt.outcome,
        "http_status": attempt.http_status,
        "message": attempt.message,
        "grant_key": call.grant_key,
        "source": call.source,
        "booking_id": call.booking_id,
        "look": d.look,
    }


def _grant_outcome(d: _Decided, owner: str) -> dict[str, Any]:
    call, access = d.success.call, d.record.access
    desired = call.desired
    assert desired is not None
    return {
        **_outcome(d, owner),
        "stay_id": desired.stay_id,
        "property_id": call.property_id,
        "reference_id": access.reference_id,
        "code": access.code,
        "code_formatted": access.code_formatted,
        "link": access.link,
        "access_points": list(desired.access_points),
        "valid_from": desired.valid_from,
        "valid_to": desired.valid_to,
        "fingerprint": d.record.fingerprint,
        "resource_id": desired.resource_id,
        "applied": desired,
        "generation": call.generation,
        "external_id": call.external_id or call.grant_key,
        "account": d.success.account,
    }
