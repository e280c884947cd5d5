"""A test double of the store, the workers and Inlet, to drive the pure core through any history.

What it answers: when the real domain functions (`decide`, `fingerprint_after_grant`,
`attempts_toward`, `after_failure`, `revocation_believed`, `call_deadline`) are driven the way the
store and the workers drive them, through any order of events and any outcome of Inlet calls,
what does Inlet hold, and what does the service believe it holds?

It copies the shell's semantics, not its code, and nothing here decides anything the domain
decides. The store: the event log (a repeated event_id is a no-op, an `occurred_at` too far ahead
of its receipt is refused), the grants (one row per stay, `upsert_grant`), the retry table
(`insert_call`, `supersede_call`, `claim_calls` with a lease, `schedule_retry`, `finish_call`),
the attempts of GrantAccess calls since a grant's last confirmed revocation
(`earlier_grant_attempts`) and escalations (one open per grant and reason). Inlet, as the sandbox
plays it, is `tests/unit/inlet_model.py`; the faults of a call (an answer lost, a worker dying
after Inlet acted) are injected here, between the two.

Everything is synchronous and the clock is `ModelWorld.now`, moved only by the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from inlet_bridge.domain.access import DesiredGrant
from inlet_bridge.domain.booking import BookingEvent
from inlet_bridge.domain.calls import doubt_after_give_up
from inlet_bridge.domain.config import HotelsConfig
from inlet_bridge.domain.fold import LoggedEvent
from inlet_bridge.domain.plan import (
    ActualGrant,
    EarlierGrantAttempt,
    GrantCall,
    PendingCall,
    Target,
    attempts_toward,
    call_deadline,
    fingerprint_after_grant,
    revocation_believed,
)
from inlet_bridge.domain.reconcile import BookingInputs, Decision, decide
from inlet_bridge.domain.retry import GiveUp, after_failure
from inlet_bridge.domain.vocab import RECOVER
from tests.unit.inlet_model import Content, ModelInlet

# What happens to one attempt of a call. "temporary"/"permanent": Inlet did nothing and answered
# (or did not answer) so; "lost": Inlet did it, the answer never came (recorded as temporary);
# "crash": Inlet did it and the worker died before recording anything (its lease runs out).
FaultKind = Literal["success", "temporary", "permanent", "lost", "crash"]
Outcome = Literal["success", "temporary", "permanent"]


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    http_status: int | None = None


OK = Fault("success", None)


@dataclass
class Attempt:
    outcome: Outcome
    http_status: int | None


@dataclass
class Call:
    """A row of the retry table; `attempts[i]` is attempt i+1 (None: started, never recorded)."""

    id: int
    grant_key: str
    property_id: str
    operation: Literal["grant", "update", "revoke"]
    reason: str
    request: DesiredGrant | None
    fingerprint: str
    generation: int
    external_id: str
    deadline: datetime | None
    next_attempt_at: datetime
    state: Literal["pending", "succeeded", "failed", "superseded"] = "pending"
    attempts: list[Attempt | None] = field(default_factory=list)
    first_attempt_at: datetime | None = None
    lease_until: datetime | None = None
    last_http_status: int | None = None
    unheard: bool = False  # Inlet carried out an attempt whose answer was never recorded

    @property
    def target(self) -> Target:
        return Target(property_id=self.property_id, generation=self.generation)

    def due_at(self) -> datetime:
        """When a worker may claim it: its next attempt, or just after a lease runs out."""
        if self.lease_until is None:
            return self.next_attempt_at
        return max(self.next_attempt_at, self.lease_until + timedelta(microseconds=1))


Screen = Callable[[Call, Fault], Fault]


@dataclass
class GrantRow:
    state: Literal["active", "revoked"]
    reference_id: str | None
    fingerprint: str
    property_id: str
    generation: int
    account: str | None


@dataclass
class Escalation:
    grant_key: str
    call_id: int | None
    reason: str
    open: bool = True


class ModelWorld:
    """One booking's store, its two workers and Inlet, on a clock the test moves."""

    def __init__(
        self,
        hotels: HotelsConfig,
        *,
        source: str,
        booking_id: str,
        now: datetime,
        after_revoke: Literal["new", "revoked"],
        refuse_ahead: bool = True,
        lease: timedelta = timedelta(seconds=30),
    ) -> None:
        self.hotels = hotels
        self.source = source
        self.booking_id = booking_id
        self.now = now
        self.refuse_ahead = refuse_ahead  # ingest's rule; False: rows stored before it existed
        self.lease = lease
        self.inlet = ModelInlet(after_revoke)
        self.events: list[LoggedEvent] = []
        self.grants: dict[str, GrantRow] = {}
        self.calls: list[Call] = []
        self.escalations: list[Escalation] = []
        self.trace: list[str] = []

    def log(self, line: str) -> None:
        self.trace.append(f"[{self.now:%d %H:%M:%S}] {line}")

    # -- ingest ---------------------------------------------------------------------------------

    def deliver(self, event: BookingEvent) -> None:
        if any(e.event.event_id == event.event_id for e in self.events):
            self.log(f"event {event.event_id}: repeat, nothing stored")
            return
        skew = self.hotels.events.max_clock_skew
        if self.refuse_ahead and event.occurred_at - self.now > skew:
            self.log(f"event {event.event_id}: refused, occurred_at {event.occurred_at} ahead")
            return
        position = len(self.events) + 1
        self.events.append(LoggedEvent(position=position, received_at=self.now, event=event))
        self.log(f"event {event.event_id} stored at {position}: {_describe(event)}")

    # -- the reconciler (inlet_bridge/store/reconcile.py) ---------------------------------------------

    def inputs(self) -> BookingInputs:
        pending: dict[str, PendingCall] = {}
        for call in self.calls:  # by id: the newest escalated call of a grant wins
            if call.state == "failed" and any(
                e.open and e.call_id == call.id for e in self.escalations
            ):
                pending[call.grant_key] = _pending(call, "escalated")
        open_calls = [c for c in self.calls if c.state == "pending"]
        for call in open_calls:  # a pending call outranks an escalated one
            in_flight = call.lease_until is not None and call.lease_until >= self.now
            pending[call.grant_key] = _pending(call, "in_flight" if in_flight else "queued")
        return BookingInputs(
            source=self.source,
            booking_id=self.booking_id,
            property_id=self.events[-1].event.booking.property_id,
            events=tuple(self.events),
            actual={
                key: ActualGrant(
                    grant_key=key,
                    state=row.state,
                    reference_id=row.reference_id,
                    fingerprint=row.fingerprint,
                    property_id=row.property_id,
                    generation=row.generation,
                )
                for key, row in sorted(self.grants.items())
            },
            pending=pending,
            sent=self.sent(),
        )

    def decide(self) -> Decision:
        return decide(self.inputs(), self.hotels, self.now)

    def reconcile(self) -> Decision | None:
        """Decide and write the decision as `ReconcileStore._write` does; None: no events yet."""
        if not self.events:
            return None
        decision = self.decide()
        for op in decision.operations:
            if op.supersedes is not None:
                replaced = self._call(op.supersedes)
                # supersede_call: only a pending call that no worker holds
                assert replaced.state == "pending", f"superseding {replaced}"
                assert replaced.lease_until is None or replaced.lease_until < self.now
                replaced.state, replaced.lease_until = "superseded", None
                if op.doubt is not None and op.grant_key in self.grants:
                    row = self.grants[op.grant_key]
                    if row.state == "active":  # doubt_grant
                        row.fingerprint = op.doubt
            if op.kind == "cancel" or op.target is None:
                self.log(f"plan: cancel call {op.supersedes} of {op.grant_key}")
                continue
            if op.kind == "recover":
                operation: Literal["grant", "update", "revoke"] = "grant"
                reason, deadline = RECOVER, None
            else:
                operation, reason = op.kind, "booking"
                deadline = call_deadline(op.desired, self.now)
            call = Call(
                id=len(self.calls) + 1,
                grant_key=op.grant_key,
                property_id=op.target.property_id,
                operation=operation,
                reason=reason,
                request=op.desired,
                fingerprint=op.desired.fingerprint if op.desired else "",
                generation=op.target.generation,
                external_id=op.target.external_id(op.grant_key),
                deadline=deadline,
                next_attempt_at=self.now,
            )
            self.calls.append(call)
            self.log(f"plan: call {call.id} {op.kind} {call.external_id} at {call.property_id}")
        wanted = set()
        for issue in decision.desired.issues:
            if issue.escalate:
                key = f"{self.source}:{self.booking_id}:{issue.stay_id}"
                wanted.add((key, issue.kind))
                self._escalate(key, None, issue.kind)
        for e in self.escalations:  # resolve_stay_escalations
            if e.open and e.call_id is None and (e.grant_key, e.reason) not in wanted:
                e.open = False
        return decision

    def sent(
        self, grant_key: str | None = None, before_call: int | None = None
    ) -> dict[str, tuple[GrantCall, ...]]:
        """`earlier_grant_attempts`: GrantAccess calls since each grant's confirmed revocation."""
        out: dict[str, list[GrantCall]] = {}
        for call in self.calls:
            if call.operation != "grant" or not call.attempts:
                continue
            if grant_key is not None and call.grant_key != grant_key:
                continue
            if before_call is not None and call.id >= before_call:
                continue
            if call.id <= self._confirmed_revocation(call.grant_key):
                continue
            assert call.request is not None
            attempts = tuple(
                EarlierGrantAttempt(
                    fingerprint=call.fingerprint,
                    outcome=a.outcome if a else None,
                    http_status=a.http_status if a else None,
                )
                for a in call.attempts
            )
            out.setdefault(call.grant_key, []).append(
                GrantCall(
                    call_id=call.id,
                    request=call.request,
                    attempts=attempts,
                    generation=call.generation,
                )
            )
        return {key: tuple(calls) for key, calls in sorted(out.items())}

    def _confirmed_revocation(self, grant_key: str) -> int:
        return max(
            (
                c.id
                for c in self.calls
                if c.grant_key == grant_key
                and c.operation == "revoke"
                and c.state == "succeeded"
                and c.last_http_status is not None
            ),
            default=0,
        )

    # -- operators (inlet_bridge/store/escalations.py) ------------------------------------------------

    def retry_escalations(self) -> None:
        """An operator retries every open escalation: it is resolved, the booking looked at."""
        for e in self.escalations:
            if e.open:
                e.open = False
                self.log(f"operator retries {e.reason} of {e.grant_key}")

    # -- the call worker (inlet_bridge/workers/calls.py, inlet_bridge/store/calls.py) ----------------------

    def due_calls(self) -> list[Call]:
        due = [
            c
            for c in self.calls
            if c.state == "pending"
            and c.next_attempt_at <= self.now
            and (c.lease_until is None or c.lease_until < self.now)
        ]
        priority = {"revoke": 0, "update": 1, "grant": 2}
        return sorted(
            due,
            key=lambda c: (
                0 if c.reason == RECOVER else priority[c.operation],
                c.next_attempt_at,
                c.id,
            ),
        )

    def run_calls(self, faults: Iterable[Fault], screen: Screen | None = None) -> int:
        """Claim due calls one by one, each meeting the next fault (as `screen` lets it through,
        if given); returns how many ran."""
        ran = 0
        for fault in faults:
            due = self.due_calls()
            if not due:
                break
            self.run(due[0], screen(due[0], fault) if screen else fault)
            ran += 1
        return ran

    def run(self, call: Call, fault: Fault) -> None:
        # claim_calls: the attempt counts at claim; the grant's reference and account are read
        call.attempts.append(None)
        call.first_attempt_at = call.first_attempt_at or self.now
        call.lease_until = self.now + self.lease
        row = self.grants.get(call.grant_key)
        reference_id = row.reference_id if row else None
        grant_account = row.account if row else None
        account = self.hotels.inlet_account(call.property_id)
        outcome: Outcome
        if account is None:
            outcome, status, returned = "permanent", None, None
        elif call.operation == "revoke" and reference_id is None:
            outcome, status, returned = "success", None, None  # nothing to revoke
        elif fault.kind in ("temporary", "permanent"):
            outcome, status, returned = fault.kind, fault.http_status, None  # Inlet did nothing
        else:
            status, returned = self._inlet(call, account.account, reference_id)
            if call.operation == "revoke":
                outcome = "success" if status in (200, 404) else "permanent"
                if outcome == "success" and not revocation_believed(
                    http_status=status, grant_account=grant_account, called_account=account.account
                ):
                    outcome = "permanent"
            else:
                outcome = "success" if status == 200 else "permanent"
            # Inlet acted (a 2xx), and the service will not hear of it
            call.unheard = call.unheard or (fault.kind in ("crash", "lost") and status == 200)
            if fault.kind == "crash":
                self.log(f"call {call.id} {call.operation} {call.external_id}: done, not recorded")
                return  # the lease runs out; the attempt stays without an outcome
            if fault.kind == "lost":
                outcome, status, returned = "temporary", fault.http_status, None
        self.log(
            f"call {call.id} {call.operation}/{call.reason} {call.external_id} at "
            f"{call.property_id}: {fault.kind} -> {outcome} {status} {returned or ''}"
        )
        call.attempts[-1] = Attempt(outcome, status)
        call.lease_until = None
        call.last_http_status = status
        if outcome == "success":
            call.state = "succeeded"
            self._succeeded(call, reference_id, returned, account.account if account else None)
            return
        step = after_failure(
            operation=call.operation,
            reason=call.reason,
            permanent=outcome == "permanent",
            attempts=len(call.attempts),
            first_attempt_at=call.first_attempt_at,
            now=self.now,
            deadline=call.deadline,
            policy=self.hotels.retry,
        )
        if isinstance(step, GiveUp):
            call.state = "failed"
            self._escalate(call.grant_key, call.id, step.reason)
            doubt = doubt_after_give_up(
                operation=call.operation, reason=call.reason, attempts=_attempts(call)
            )
            row = self.grants.get(call.grant_key)
            if doubt is not None and row is not None and row.state == "active":  # doubt_grant
                row.fingerprint = doubt
            return
        call.next_attempt_at = step.at
        if step.late:
            self._escalate(call.grant_key, call.id, "late_for_arrival")

    def _inlet(self, call: Call, account: str, reference_id: str | None) -> tuple[int, str | None]:
        """Inlet's answer to the call the worker makes (GrantAccess when no reference is held)."""
        if call.operation == "revoke":
            assert reference_id is not None
            return self.inlet.revoke(account, reference_id), None
        assert call.request is not None
        content = Content.of(call.request)
        if call.operation == "grant" or reference_id is None:
            return self.inlet.grant(account, call.external_id, content, self.now)
        return self.inlet.update(account, reference_id, content), None

    def _succeeded(
        self, call: Call, claimed_reference: str | None, returned: str | None, account: str | None
    ) -> None:
        if call.operation == "revoke":
            row = self.grants[call.grant_key]
            row.state, row.fingerprint = "revoked", ""
        else:
            request = call.request
            assert request is not None
            row = self.grants.get(call.grant_key)
            fingerprint = request.fingerprint
            if call.operation == "grant" or claimed_reference is None:
                history = self.sent(call.grant_key, before_call=call.id)
                earlier = attempts_toward(history.get(call.grant_key, ()), call.target)
                fingerprint = fingerprint_after_grant(request.fingerprint, earlier)
            same = row is not None and row.generation == call.generation
            reference_id = (returned or row.reference_id) if same and row else returned
            self.grants[call.grant_key] = GrantRow(
                state="active",
                reference_id=reference_id,
                fingerprint=fingerprint,
                property_id=call.property_id,
                generation=call.generation,
                account=account,
            )
        for e in self.escalations:  # resolve_call_escalations
            if e.open and e.grant_key == call.grant_key and e.call_id is not None:
                e.open = False

    def _escalate(self, grant_key: str, call_id: int | None, reason: str) -> None:
        """raise_escalation: nothing new while the same one is open for the grant."""
        if any(
            e.open and e.grant_key == grant_key and e.reason == reason for e in self.escalations
        ):
            return
        self.escalations.append(Escalation(grant_key, call_id, reason))
        self.log(f"escalation {reason} of {grant_key} (call {call_id})")

    def _call(self, call_id: int) -> Call:
        return self.calls[call_id - 1]


def _pending(call: Call, status: Literal["queued", "in_flight", "escalated"]) -> PendingCall:
    operation: Literal["grant", "update", "revoke", "recover"] = (
        "recover" if call.operation == "grant" and call.reason == RECOVER else call.operation
    )
    return PendingCall(
        call_id=call.id,
        grant_key=call.grant_key,
        operation=operation,
        fingerprint=call.fingerprint,
        status=status,
        # unsettled_call_attempts: loaded for updates and revocations
        attempts=_attempts(call) if call.operation in ("update", "revoke") else (),
    )


def _attempts(call: Call) -> tuple[EarlierGrantAttempt, ...]:
    """A call's attempts as far as their outcomes are known (None: never recorded)."""
    return tuple(
        EarlierGrantAttempt(
            fingerprint=call.fingerprint,
            outcome=a.outcome if a else None,
            http_status=a.http_status if a else None,
        )
        for a in call.attempts
    )


def _describe(event: BookingEvent) -> str:
    b = event.booking
    stays = ", ".join(
        f"{s.stay_id} {s.resource_id} {s.status} {s.arrival:%d %H:%M}-{s.departure:%d %H:%M}"
        for s in b.stays
    )
    return f"occurred {event.occurred_at:%d %H:%M}, {b.property_id}{' deleted' if b.deleted else ''}: {stays}"
