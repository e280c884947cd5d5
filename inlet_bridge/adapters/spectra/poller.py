"""How do Spectra's reservations become events? The poller of one Spectra connection.

It reads the events feed from a cursor in PostgreSQL (re-reading a small overlap, since the
feed's clock and ours differ), fetches each changed reservation, maps it to a normalized event
and appends it through the same path as webhooks (validation, idempotency, the reconciler).
The cursor moves only after the events are committed, so a poller stopped half-way re-reads
from where it was: repeats are idempotent, nothing is lost. A reservation that cannot be read
(a 500, a body that is not JSON) does not hold up the others: it is saved with the cursor and
read again on every poll until it can be, and escalated when it keeps failing. A first start,
or a gap older than the feed keeps, is filled from the reservation list for the window ahead
and from every reservation we know to have access (a cancellation in the gap is seen, though
its feed item is gone); each later poll lists the arrival days that came into that window, so
a reservation nobody touches is still read before its access is due. Only the replica
holding the connection's advisory lock polls it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec

from inlet_bridge.adapters.spectra import holds, mapping
from inlet_bridge.adapters.spectra.client import SpectraClient, SpectraError
from inlet_bridge.clock import Clock
from inlet_bridge.domain.booking import BookingEvent
from inlet_bridge.domain.config import HARD_MAX_WINDOW_HOURS, Property, SpectraConnection
from inlet_bridge.domain.validation import InvalidEvent, validate_event
from inlet_bridge.group_commit import GroupCommitter
from inlet_bridge.metrics import Metrics
from inlet_bridge.store.cursors import Cursor, CursorStore

log = logging.getLogger(__name__)

# What one read of a hotel gave: its mode, how far the feed was read, the reservations fetched
# (with the feed's event time when there is one), the deletions, and how many were re-read.
_Read = tuple[
    str,
    datetime,
    list[tuple["mapping.SpectraReservation", datetime | None]],
    list[tuple[str, datetime | None]],
    int,
]

FEED_OVERLAP = timedelta(minutes=2)
FEED_MAX_AGE = timedelta(hours=24)
# How far ahead reservations are read from the list: Inlet takes access at most 72 h before it
# starts, and a check-in offset can start access up to 24 h before arrival.
LOOKAHEAD = timedelta(hours=HARD_MAX_WINDOW_HOURS + 24)
# Polls in a row a reservation may fail before it is escalated (logged as an error).
FAILURES_BEFORE_ESCALATION = 3


class PollReport(msgspec.Struct, frozen=True, kw_only=True):
    mode: str  # "feed" or "backfill"
    fetched: int
    appended: int
    unchanged: int
    skipped: int
    held: int  # held back, unpaid
    failed: int = 0  # could not be read; read again next poll
    rechecked: int = 0  # reservations with access read one by one by a backfill
    waiting_for_room: int = 0  # held back until the room is ready (hold_until_room_status)


class SpectraPoller:
    def __init__(
        self,
        *,
        name: str,
        connection: SpectraConnection,
        prop: Property,
        client: SpectraClient,
        cursors: CursorStore,
        committer: GroupCommitter,
        metrics: Metrics,
        clock: Clock,
    ) -> None:
        self.name = name
        self._connection = connection
        self._prop = prop
        self._client = client
        self._cursors = cursors
        self._committer = committer
        self._metrics = metrics
        self._clock = clock
        self._source = connection.source(name)
        self._zone: ZoneInfo | None = None
        # Failed polls in a row per unreadable reservation (this replica's count; the
        # reservations themselves are kept with the cursor, so a restart loses none of them).
        self._failing: dict[str, int] = {}

    async def poll_once(self) -> PollReport:
        """One poll; raises SpectraError (the cursor stays where it was) when Spectra fails.

        Only a failure of the whole hotel (settings, feed, list, conferences) fails the poll;
        one reservation that cannot be read is kept with the cursor and read again next poll.
        """
        now = self._clock.now()
        cursor = await self._cursors.get(self.name)
        self._export_progress(cursor, now)
        zone = await self._hotel_zone()
        failed: dict[str, SpectraError] = {}  # read again on the next poll
        last_read = cursor.last_success_at if cursor else None
        if (
            cursor is None
            or cursor.sync_time is None
            or last_read is None
            or now - last_read > FEED_MAX_AGE
        ):
            read = await self._backfill(now, zone, failed)
        else:
            read = await self._read_feed(cursor.sync_time, last_read, now, zone, failed)
        mode, sync_time, fetched, deletions, rechecked = read
        seen = {r.reservation_guid for r, _ in fetched} | {g for g, _ in deletions} | set(failed)
        for guid in cursor.held if cursor else ():
            if guid not in seen:  # held back or unreadable last time: look again
                reservation = await self._fetch(guid, failed)
                if reservation is not None:
                    fetched.append((reservation, None))
        events, holding, skipped = await self._map(fetched, zone, now, failed)
        # Held back (unpaid, room not ready): saved with the cursor, read again next poll. A
        # reservation that could not be read does not stop the others either: the cursor moves
        # on and the reservation is saved with it, in the same row, to be read again next poll.
        held = list(holding) + [guid for guid in failed if guid not in holding]
        events += await self._deleted(deletions, now)
        events += await self._conferences(zone, now)
        appended, unchanged = await self._append(events)
        # The feed was read up to now: a quiet hotel's cursor still moves (minus the overlap that
        # covers changes Spectra commits a little late), so the lag gauge stays honest.
        sync_time = max(sync_time, now - FEED_OVERLAP)
        await self._cursors.save(self.name, sync_time=sync_time, held=tuple(held), now=now)
        self._metrics.poller_last_success.labels(connection=self.name).set(now.timestamp())
        self._metrics.poller_lag.labels(connection=self.name).set(
            max(0.0, (now - sync_time).total_seconds())
        )
        report = PollReport(
            mode=mode,
            fetched=len(fetched),
            appended=appended,
            unchanged=unchanged,
            skipped=skipped,
            held=sum(1 for r in holding.values() if r == "unpaid"),
            waiting_for_room=sum(1 for r in holding.values() if r == "room_not_ready"),
            failed=len(failed),
            rechecked=rechecked,
        )
        self._track_failures(failed)
        log.info(
            "spectra poll done",
            extra={
                "action": "spectra.polled",
                "connection": self.name,
                **msgspec.to_builtins(report),
            },
        )
        return report

    async def _backfill(
        self, now: datetime, zone: ZoneInfo, failed: dict[str, SpectraError]
    ) -> _Read:
        """A first start, or a gap older than the feed keeps: the reservation list, and every
        reservation of this connection with access (one that arrived before the list's window,
        cancelled or moved while the feed aged out, is seen)."""
        local = now.astimezone(zone)
        start = (local - timedelta(hours=self._connection.backfill_hours)).date()
        reservations = await self._client.all_reservations(start, (local + LOOKAHEAD).date())
        fetched: list[tuple[mapping.SpectraReservation, datetime | None]] = [
            (r, None) for r in reservations
        ]
        with_access = await self._with_access({r.reservation_guid for r in reservations})
        for guid, booking_id in with_access:
            reservation = await self._fetch(guid, failed, booking_id=booking_id)
            if reservation is not None:
                fetched.append((reservation, None))
        return "backfill", now, fetched, [], len(with_access)

    async def _read_feed(
        self,
        since: datetime,
        last_read: datetime,
        now: datetime,
        zone: ZoneInfo,
        failed: dict[str, SpectraError],
    ) -> _Read:
        """The event feed from the cursor (with an overlap), and the arrival days that came
        into reach since the last read."""
        sync_time = since
        fetched: list[tuple[mapping.SpectraReservation, datetime | None]] = []
        deletions: list[tuple[str, datetime | None]] = []
        items = await self._client.events_since(since - FEED_OVERLAP)
        latest: dict[str, mapping.SpectraFeedItem] = {}
        for item in sorted(items, key=lambda i: mapping.feed_event_time(i) or now):
            latest[item.reservation_guid] = item
            sync_time = max(sync_time, mapping.feed_event_time(item) or sync_time)
        for guid, item in latest.items():
            at = mapping.feed_event_time(item)
            if mapping.is_deletion(item):
                deletions.append((guid, at))
                continue
            reservation = await self._fetch(guid, failed)
            if reservation is not None:
                fetched.append((reservation, at))
        known = {r.reservation_guid for r, _ in fetched} | {g for g, _ in deletions}
        for reservation in await self._entering_lookahead(last_read, now, zone):
            if reservation.reservation_guid not in known:
                fetched.append((reservation, None))
                failed.pop(reservation.reservation_guid, None)  # the list had it after all
        return "feed", sync_time, fetched, deletions, 0

    def _export_progress(self, cursor: Cursor | None, now: datetime) -> None:
        """The connection's gauges as PostgreSQL knows them, before Spectra is asked anything.

        A connection whose polls all fail (a wrong password at deploy) is exported too: its
        last success is the one any replica recorded, or 0 when it never had one, and its lag
        grows with the outage. Otherwise the stale-poller alerts would have nothing to read.
        """
        last = cursor.last_success_at if cursor is not None else None
        self._metrics.poller_last_success.labels(connection=self.name).set(
            last.timestamp() if last is not None else 0.0
        )
        if cursor is not None and cursor.sync_time is not None:
            self._metrics.poller_lag.labels(connection=self.name).set(
                max(0.0, (now - cursor.sync_time).total_seconds())
            )

    async def _entering_lookahead(
        self, last_success_at: datetime | None, now: datetime, zone: ZoneInfo
    ) -> list[mapping.SpectraReservation]:
        """Reservations whose arrival day came into the look-ahead since the last poll.

        The feed tells only of changes: a reservation made before the first start (or during
        a gap) that arrives beyond the backfill's look-ahead and is never changed again would
        otherwise never be read. Each arrival day is listed once, as it comes into reach.
        """
        if last_success_at is None:
            return []
        reached = (last_success_at.astimezone(zone) + LOOKAHEAD).date()
        horizon = (now.astimezone(zone) + LOOKAHEAD).date()
        if horizon <= reached:
            return []
        return await self._client.all_reservations(reached + timedelta(days=1), horizon)

    async def _hotel_zone(self) -> ZoneInfo:
        if self._zone is None:
            hotels = await self._client.hotel_settings()
            for hotel in hotels:
                if (hotel.hotel_code or "").lower() == self._connection.hotel_code.lower():
                    self._zone = mapping.hotel_zone(hotel)
            if self._zone is None:
                self._zone = self._prop.timezone  # the properties file's zone as a fallback
        return self._zone

    async def _with_access(self, listed: set[str]) -> list[tuple[str, str]]:
        """(GUID, booking ID) of the reservations with access that the backfill's list left out.

        The list holds only arrivals from `backfill_hours` back: a guest who arrived earlier, or
        a reservation moved out of the window, would keep its access unseen while the feed that
        told of its cancellation has aged out. Conferences are read whole on every poll anyway.
        """
        found: dict[str, str] = {}
        for stay in await self._cursors.stays_with_access(self._source):
            if stay.stay_id in listed or mapping.is_conference_booking(
                stay.booking_id, stay.stay_id
            ):
                continue
            found.setdefault(stay.stay_id, stay.booking_id)
        return list(found.items())

    async def _fetch(
        self, guid: str, failed: dict[str, SpectraError], *, booking_id: str | None = None
    ) -> mapping.SpectraReservation | None:
        """One reservation; None if Spectra has it no more, or could not give it (see `failed`)."""
        try:
            return await self._client.reservation(guid)
        except SpectraError as exc:
            if exc.status == 404:
                # Gone from the PMS without a deletion: never taken as a cancellation.
                log.warning(
                    "spectra reservation not found; access unchanged",
                    extra={
                        "action": "spectra.not_found",
                        "connection": self.name,
                        "stay_id": guid,
                        "booking_id": booking_id,
                    },
                )
                return None
            self._unreadable(guid, exc, failed)
            return None

    def _unreadable(self, guid: str, exc: SpectraError, failed: dict[str, SpectraError]) -> None:
        failed[guid] = exc
        self._metrics.poller_errors.labels(connection=self.name, kind="reservation").inc()
        log.warning(
            "spectra reservation could not be read; read again next poll",
            extra={
                "action": "spectra.reservation_failed",
                "connection": self.name,
                "stay_id": guid,
                "kind": exc.kind,
                "status": exc.status,
                "failures": self._failing.get(guid, 0) + 1,
            },
        )

    def _track_failures(self, failed: dict[str, SpectraError]) -> None:
        """Count each reservation's failed polls in a row; escalate the ones that keep failing."""
        for guid in [g for g in self._failing if g not in failed]:
            del self._failing[guid]
            log.info(
                "spectra reservation no longer failing",
                extra={
                    "action": "spectra.reservation_recovered",
                    "connection": self.name,
                    "stay_id": guid,
                },
            )
        for guid, exc in failed.items():
            count = self._failing.get(guid, 0) + 1
            self._failing[guid] = count
            if count % FAILURES_BEFORE_ESCALATION == 0:
                log.error(
                    "spectra reservation keeps failing; its changes are not coming in",
                    extra={
                        "action": "spectra.reservation_failing",
                        "connection": self.name,
                        "stay_id": guid,
                        "kind": exc.kind,
                        "status": exc.status,
                        "failures": count,
                    },
                )

    async def _map(
        self,
        fetched: list[tuple[mapping.SpectraReservation, datetime | None]],
        zone: ZoneInfo,
        now: datetime,
        failed: dict[str, SpectraError],
    ) -> tuple[list[BookingEvent], dict[str, holds.HoldReason], int]:
        events: list[BookingEvent] = []
        held: dict[str, holds.HoldReason] = {}
        skipped = 0
        rooms: dict[str, str | None] | None = None  # read once per poll, when a hold needs it
        for reservation, at in fetched:
            result = mapping.reservation_to_event(
                reservation,
                source=self._source,
                property_id=self._connection.property_id,
                tz=zone,
                observed_at=now,
                event_time=at,
            )
            if result.event is None:
                skipped += 1
                log.warning(
                    "spectra reservation skipped",
                    extra={
                        "action": "spectra.skipped",
                        "connection": self.name,
                        "stay_id": reservation.reservation_guid,
                        "reason": result.skipped_reason,
                    },
                )
                continue
            stay = result.event.booking.stays[0]
            ready_states = self._connection.hold_until_room_status
            if rooms is None and holds.room_hold(
                stay, now=now, room_state=None, ready_states=ready_states
            ):
                rooms = await self._room_states()  # a failure fails the poll, like settings
            try:
                balance = (
                    (await self._client.balance(stay.stay_id)).balance
                    if holds.needs_balance(stay, hold_unpaid=self._connection.hold_unpaid)
                    else None
                )
            except SpectraError as exc:
                self._unreadable(reservation.reservation_guid, exc, failed)
                continue
            reason = holds.hold_reason(
                stay,
                now=now,
                ready_states=ready_states,
                room_states=rooms or {},
                balance=balance,
            )
            if reason is not None:
                held[reservation.reservation_guid] = reason
                log.info(
                    "spectra reservation held back",
                    extra={
                        "action": "spectra.held",
                        "connection": self.name,
                        "stay_id": reservation.reservation_guid,
                        "booking_id": result.event.booking.booking_id,
                        "reason": reason,
                    },
                )
                continue
            events.append(result.event)
        return events, held, skipped

    async def _room_states(self) -> dict[str, str | None]:
        """Room number -> housekeeping state, as `GET /api/v1/rooms` says now."""
        states: dict[str, str | None] = {}
        for room in await self._client.rooms():
            number = mapping.room_key(room)
            if number is not None:
                states[number] = room.status
        return states

    async def _deleted(
        self, deletions: list[tuple[str, datetime | None]], now: datetime
    ) -> list[BookingEvent]:
        events = []
        for guid, at in deletions:
            last = await self._cursors.last_event_for_stay(self._source, guid)
            if last is None or last.booking.deleted:
                continue
            when = at or now
            events.append(
                msgspec.structs.replace(
                    last,
                    event_id=f"spectra.{guid}.deleted.{int(when.timestamp())}",
                    occurred_at=when,
                    booking=msgspec.structs.replace(last.booking, deleted=True),
                )
            )
        return events

    async def _conferences(self, zone: ZoneInfo, now: datetime) -> list[BookingEvent]:
        events = []
        for conference in await self._client.conferences():
            result = mapping.conference_to_event(
                conference,
                source=self._source,
                property_id=self._connection.property_id,
                tz=zone,
                observed_at=now,
            )
            if result.event is not None:
                events.append(result.event)
        return events

    async def _append(self, events: list[BookingEvent]) -> tuple[int, int]:
        """Append what changed, one event per unit; an unchanged booking is left alone."""
        appended = unchanged = 0
        for event in events:
            stay_id = event.booking.stays[0].stay_id if event.booking.stays else None
            last = (
                await self._cursors.last_event_for_stay(self._source, stay_id) if stay_id else None
            )
            if last is not None and last.booking == _normalized(event).booking:
                unchanged += 1
                continue
            valid = validate_event(event)
            if isinstance(valid, InvalidEvent):
                self._metrics.poller_errors.labels(connection=self.name, kind="invalid").inc()
                log.warning(
                    "spectra reservation refused by validation",
                    extra={
                        "action": "spectra.invalid",
                        "connection": self.name,
                        "booking_id": event.booking.booking_id,
                        "problems": [f"{p.path}: {p.message}" for p in valid.problems],
                    },
                )
                continue
            result = await self._committer.append([valid])
            if result.results[0].status == "stored":
                appended += 1
                if valid.warnings:
                    # An invalid email or phone never blocks access: the reservation is stored
                    # without it. Paths only: the values are personal data.
                    log.warning(
                        "contact details dropped",
                        extra={
                            "action": "ingest.contact_dropped",
                            "connection": self.name,
                            "source": self._source,
                            "event_id": event.event_id,
                            "booking_id": event.booking.booking_id,
                            "property_id": event.booking.property_id,
                            "paths": [w.path for w in valid.warnings],
                        },
                    )
            else:
                unchanged += 1
        return appended, unchanged


def _normalized(event: BookingEvent) -> BookingEvent:
    valid = validate_event(event)
    return event if isinstance(valid, InvalidEvent) else valid.event
