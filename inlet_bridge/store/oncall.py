"""What does the person on call look at? Escalations in detail, a retry followed, bookings
found by a search, what waits, and what a re-sync would touch. Reads only."""

from __future__ import annotations

from datetime import datetime

import msgspec

from inlet_bridge.domain.follow import FollowedCall, RetryProgress, retry_progress
from inlet_bridge.store.db import Database
from inlet_bridge.store.escalations import Escalation
from inlet_bridge.store.resync import ResyncSelector


class EscalationDetail(Escalation, frozen=True, kw_only=True):
    """An escalation with what a person needs to act on it: hotel, booking, doors, validity,
    Inlet's reference and its last message."""

    reference_id: str | None
    access_points: tuple[str, ...]
    valid_from: datetime | None
    valid_to: datetime | None
    last_message: str | None


class BookingFound(msgspec.Struct, frozen=True, kw_only=True):
    source: str
    booking_id: str
    property_id: str
    marked_at: datetime
    reconciled_at: datetime | None
    statuses: tuple[str, ...]
    resources: tuple[str, ...]
    open_escalations: int


class BookingSearch(msgspec.Struct, frozen=True, kw_only=True):
    """What an operator searches bookings by; every given filter must match."""

    source: str | None = None
    booking_id: str | None = None  # a prefix
    property_id: str | None = None
    resource_id: str | None = None
    status: str | None = None
    open_escalation: bool = False


class PollerHealth(msgspec.Struct, frozen=True, kw_only=True):
    connection: str
    sync_time: datetime | None
    last_success_at: datetime | None
    last_error: str | None


class Backlog(msgspec.Struct, frozen=True, kw_only=True):
    calls_pending: int
    calls_overdue: int
    calls_failing: int
    deliveries_pending: int


class PreviewBooking(msgspec.Struct, frozen=True, kw_only=True):
    source: str
    booking_id: str
    property_id: str
    grants: int
    access_points: tuple[str, ...]


def _scope(properties: frozenset[str] | None) -> list[str] | None:
    return None if properties is None else sorted(properties)


class OnCallStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def escalations(
        self,
        *,
        open_only: bool | None = True,
        severity: str | None = None,
        property_id: str | None = None,
        properties: frozenset[str] | None = None,
        limit: int = 200,
        escalation_id: int | None = None,
    ) -> list[EscalationDetail]:
        """Open first, critical first, oldest first; only `properties`' when given."""
        rows = await self._db.fetch(
            "escalations_in_detail",
            open_only=open_only,
            severity=severity,
            property_id=property_id,
            properties=_scope(properties),
            limit=limit,
            escalation_id=escalation_id,
        )
        return [
            EscalationDetail(**{**dict(r), "access_points": tuple(r["access_points"] or ())})
            for r in rows
        ]

    async def followed(self, escalation_id: int) -> tuple[str, RetryProgress] | None:
        """The escalation's property and what its retry led to; None when there is none."""
        row = await self._db.fetchrow("escalation_followed", escalation_id)
        if row is None:
            return None
        call = None
        if row["next_call_id"] is not None:
            call = FollowedCall(
                id=row["next_call_id"],
                operation="recover" if row["next_reason"] == "recover" else row["next_operation"],
                state=row["next_state"],
                attempts=row["next_attempts"],
                last_outcome=row["next_outcome"],
                last_message=row["next_message"],
            )
        progress = retry_progress(
            retried_at=row["retried_at"],
            retried_by=row["retried_by"],
            call=call,
            delivery_state=row["delivery_state"],
            is_delivery=row["delivery_id"] is not None,
            looked_at_since=row["looked_at_since"],
            escalation_id=row["again_id"],
        )
        return row["property_id"], progress

    async def bookings(
        self,
        search: BookingSearch,
        *,
        properties: frozenset[str] | None,
        limit: int,
        offset: int,
    ) -> list[BookingFound]:
        rows = await self._db.fetch(
            "console_bookings",
            source=search.source,
            booking_prefix=search.booking_id,
            property_id=search.property_id,
            resource_id=search.resource_id,
            status=search.status,
            escalated_only=search.open_escalation,
            properties=_scope(properties),
            limit=limit,
            offset=offset,
        )
        return [
            BookingFound(
                **{
                    **dict(r),
                    "statuses": tuple(r["statuses"]),
                    "resources": tuple(r["resources"]),
                }
            )
            for r in rows
        ]

    async def pollers(self) -> list[PollerHealth]:
        return [PollerHealth(**dict(r)) for r in await self._db.fetch("console_pollers")]

    async def backlog(self, now: datetime, overdue_seconds: float) -> Backlog:
        row = await self._db.fetchrow("console_backlog", now, overdue_seconds)
        assert row is not None
        return Backlog(**dict(row))

    async def open_escalations(self) -> list[tuple[str, str, int]]:
        """(property, severity, open) for every hotel with open escalations."""
        rows = await self._db.fetch("console_open_escalations")
        return [(r["property_id"], r["severity"], r["open"]) for r in rows]

    async def resync_preview(self, selector: ResyncSelector, limit: int) -> list[PreviewBooking]:
        """The first `limit` bookings a re-sync would touch, with their grants and doors."""

        def listed(values: tuple[str, ...] | None) -> list[str] | None:
            return list(values) if values else None

        rows = await self._db.fetch(
            "resync_preview",
            property_id=selector.property_id,
            access_points=listed(selector.access_points),
            resource_ids=listed(selector.resource_ids),
            bookings=listed(selector.bookings),
            limit=limit,
        )
        return [
            PreviewBooking(**{**dict(r), "access_points": tuple(r["access_points"])}) for r in rows
        ]
