"""What happened to one booking? Everything an operator needs to troubleshoot it, in one read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from service.domain.booking import BookingEvent, Problem
from service.domain.fold import LoggedEvent
from service.domain.plan import RECOVER, ActualGrant, PendingCall
from service.domain.reconcile import BookingInputs, Decision, decide
from service.properties import HotelsConfig
from service.store.db import Database
from service.store.events import decode_warnings


class EventView(LoggedEvent, frozen=True, kw_only=True):
    """A logged event with the contact details dropped from it at ingest (paths, never values)."""

    warnings: tuple[Problem, ...] = ()


class CallView(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    grant_key: str
    operation: str
    reason: str
    state: str
    attempts: int
    next_attempt_at: datetime
    first_attempt_at: datetime | None
    deadline: datetime | None
    last_outcome: str | None
    last_http_status: int | None
    last_message: str | None
    created_at: datetime
    finished_at: datetime | None
    attempt_log: tuple[dict[str, Any], ...] = ()


class GrantView(msgspec.Struct, frozen=True, kw_only=True):
    """What Inlet holds for a grant: where it was made (property), which generation
    (externalId), and its reference, code and link."""

    grant_key: str
    stay_id: str
    property_id: str
    generation: int
    external_id: str
    state: str
    reference_id: str | None
    code: str | None
    code_formatted: str | None
    link: str | None
    access_points: tuple[str, ...]
    valid_from: datetime | None
    valid_to: datetime | None
    message: str | None
    updated_at: datetime


class EscalationView(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    grant_key: str
    call_id: int | None
    delivery_id: int | None
    operation: str | None
    severity: str
    reason: str
    message: str | None
    created_at: datetime
    resolved_at: datetime | None
    resolved_note: str | None


class DeliveryView(msgspec.Struct, frozen=True, kw_only=True):
    """One delivery of an access change to a sink of the PMS (its webhook, Spectra's write-back)."""

    id: int
    sink: str
    grant_key: str
    kind: str
    state: str
    attempts: int
    last_status: int | None
    last_message: str | None
    created_at: datetime
    finished_at: datetime | None


class Timeline(msgspec.Struct, frozen=True, kw_only=True):
    source: str
    booking_id: str
    property_id: str
    due_at: datetime | None
    reconciled_at: datetime | None
    events: tuple[EventView, ...]
    grants: tuple[GrantView, ...]
    calls: tuple[CallView, ...]
    escalations: tuple[EscalationView, ...]
    deliveries: tuple[DeliveryView, ...] = ()

    def held(self) -> dict[str, ActualGrant]:
        """What Inlet holds for each grant, as the plan sees it."""
        return {
            g.grant_key: ActualGrant(
                grant_key=g.grant_key,
                state="active" if g.state == "active" else "revoked",
                reference_id=g.reference_id,
                fingerprint="",
                property_id=g.property_id,
                generation=g.generation,
            )
            for g in self.grants
        }

    def unsettled(self) -> dict[str, PendingCall]:
        """Each grant's call not yet settled: pending, or failed with an open escalation
        (a pending call outranks an escalated one, as in the reconciler)."""
        open_calls = {
            e.call_id for e in self.escalations if e.call_id is not None and e.resolved_at is None
        }
        unsettled: dict[str, PendingCall] = {}
        for call in self.calls:  # oldest first: a later call of a grant replaces an earlier
            if call.state == "pending":
                status = "queued"
            elif call.state == "failed" and call.id in open_calls:
                status = "escalated"
            else:
                continue
            known = unsettled.get(call.grant_key)
            if known is not None and known.status == "queued" and status == "escalated":
                continue
            operation = "recover" if call.reason == RECOVER else call.operation
            unsettled[call.grant_key] = PendingCall(
                call_id=call.id,
                grant_key=call.grant_key,
                operation=operation,  # type: ignore[arg-type]
                fingerprint="",
                status=status,  # type: ignore[arg-type]
            )
        return unsettled


async def current_decision(
    db: Database, timeline: Timeline, hotels: HotelsConfig, now: datetime
) -> Decision:
    """What the reconciler would decide now (door usage included), for read endpoints."""
    prop = hotels.properties.get(timeline.property_id)
    doors = [d for d, limit in prop.doors.items() if limit.capacity is not None] if prop else []
    usage: dict[str, int] = {}
    if doors:
        rows = await db.fetch(
            "door_usage", timeline.property_id, timeline.source, timeline.booking_id, doors
        )
        usage = {r["door"]: r["used"] for r in rows}
    inputs = BookingInputs(
        source=timeline.source,
        booking_id=timeline.booking_id,
        property_id=timeline.property_id,
        events=timeline.events,
        actual={},
        pending={},
        door_usage=usage,
    )
    return decide(inputs, hotels, now)


async def load_timeline(db: Database, source: str, booking_id: str) -> Timeline | None:
    row = await db.fetchrow("booking_row", source, booking_id)
    if row is None:
        return None
    events = await db.fetch("booking_events", source, booking_id)
    grants = await db.fetch("booking_grants", source, booking_id)
    calls = await db.fetch("booking_calls", source, booking_id)
    attempts = await db.fetch("booking_attempts", source, booking_id)
    escalations = await db.fetch("booking_escalations", source, booking_id)
    deliveries = await db.fetch("booking_deliveries", source, booking_id)
    by_call: dict[int, list[dict[str, Any]]] = {}
    for a in attempts:
        entry = dict(a)
        by_call.setdefault(entry.pop("call_id"), []).append(entry)
    return Timeline(
        source=source,
        booking_id=booking_id,
        property_id=row["property_id"],
        due_at=row["due_at"],
        reconciled_at=row["reconciled_at"],
        events=tuple(
            EventView(
                position=r["position"],
                received_at=r["received_at"],
                event=msgspec.json.decode(r["event"], type=BookingEvent),
                warnings=decode_warnings(r["warnings"]),
            )
            for r in events
        ),
        grants=tuple(
            GrantView(
                grant_key=r["grant_key"],
                stay_id=r["stay_id"],
                property_id=r["property_id"],
                generation=r["generation"],
                external_id=r["external_id"],
                state=r["state"],
                reference_id=r["reference_id"],
                code=r["code"],
                code_formatted=r["code_formatted"],
                link=r["link"],
                access_points=tuple(r["access_points"]),
                valid_from=r["valid_from"],
                valid_to=r["valid_to"],
                message=r["message"],
                updated_at=r["updated_at"],
            )
            for r in grants
        ),
        calls=tuple(
            CallView(**dict(r), attempt_log=tuple(by_call.get(r["id"], []))) for r in calls
        ),
        escalations=tuple(EscalationView(**dict(r)) for r in escalations),
        deliveries=tuple(DeliveryView(**dict(r)) for r in deliveries),
    )
