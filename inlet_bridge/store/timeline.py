"""What happened to one booking? Everything an operator needs to troubleshoot it, in one read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from inlet_bridge.domain.booking import Problem
from inlet_bridge.domain.calls import stored_operation
from inlet_bridge.domain.config import HotelsConfig
from inlet_bridge.domain.fold import LoggedEvent
from inlet_bridge.domain.plan import PendingCall
from inlet_bridge.domain.reconcile import BookingInputs, Decision, decide
from inlet_bridge.domain.stay_access import HeldGrant, OpenEscalation
from inlet_bridge.store.db import Database
from inlet_bridge.store.events import decode_warnings, logged_events


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
    grants: tuple[HeldGrant, ...]
    calls: tuple[CallView, ...]
    escalations: tuple[EscalationView, ...]
    deliveries: tuple[DeliveryView, ...] = ()

    def open_escalations(self) -> list[OpenEscalation]:
        """The escalations of a call or a delivery still waiting for a person."""
        return [
            OpenEscalation(
                grant_key=e.grant_key, operation=e.operation, reason=e.reason, message=e.message
            )
            for e in self.escalations
            if e.resolved_at is None and (e.call_id is not None or e.delivery_id is not None)
        ]

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
            unsettled[call.grant_key] = PendingCall(
                call_id=call.id,
                grant_key=call.grant_key,
                operation=stored_operation(call.operation, call.reason),
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
    grants = await db.fetch_as(HeldGrant, "booking_grants", source, booking_id)
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
                position=logged.position,
                received_at=logged.received_at,
                event=logged.event,
                warnings=decode_warnings(r["warnings"]),
            )
            for logged, r in zip(logged_events(events), events, strict=True)
        ),
        grants=tuple(grants),
        calls=tuple(
            CallView(**dict(r), attempt_log=tuple(by_call.get(r["id"], []))) for r in calls
        ),
        escalations=tuple(EscalationView(**dict(r)) for r in escalations),
        deliveries=tuple(DeliveryView(**dict(r)) for r in deliveries),
    )
