"""How does a scenario record what it did and what it saw? The scenario context and results.

Besides its checks, a scenario's result carries what Inlet's reviewer needs to find it in
Inlet's own logs: its time window, and the bookingIds, externalIds and ReferenceIds that went
over the wire (read from the recorded calls, so they are what was really sent and answered).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Literal

import msgspec

from inlet_bridge.certify.stage import Stage
from inlet_bridge.keys import SETTINGS
from inlet_bridge.logs import Masker

Status = Literal["pass", "fail", "not_run"]
Target = Literal["sandbox", "inlet-test"]

NEEDS_SANDBOX = "needs the Inlet sandbox's test endpoints"
NEEDS_FAULTS = "needs fault injection: the target does not answer GET /_sandbox/faults"

SOURCE = "demo-pms"
PROPERTY = "oslo-1"
OLA = {"name": "Ola Nordmann", "email": "ola@example.no", "phone": "+4791234567"}
KARI = {"name": "Kari Nordmann", "email": "kari@example.no", "phone": "+4791234568"}
PER = {"name": "Per Hansen", "email": "per@example.no", "phone": "+4791234569"}
_PERSONAL = frozenset(
    {
        "name",
        "firstName",
        "lastName",
        "guestName",
        "email",
        "phone",
        "phoneNumber",
        "mobile",
        "code",
        "codeFormatted",
        "link",
        "recipient",
    }
)


class Check(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    status: Status
    detail: str = ""


class ScenarioResult(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    title: str
    reference: str
    status: Status
    checks: tuple[Check, ...]
    events: tuple[Any, ...]
    inlet_calls: tuple[Any, ...]
    log_lines: tuple[str, ...]
    seconds: float
    error: str | None = None
    not_run_reason: str | None = None
    # The scenario's time window on the run's clock, and the ids to look up at Inlet.
    started_at: datetime | None = None
    ended_at: datetime | None = None
    booking_ids: tuple[str, ...] = ()
    external_ids: tuple[str, ...] = ()
    reference_ids: tuple[str, ...] = ()


def sent_ids(calls: list[dict[str, Any]]) -> tuple[tuple[str, ...], ...]:
    """The bookingIds, externalIds and ReferenceIds (sent, or answered by Inlet) of some
    recorded Inlet calls, each in the order first seen."""
    found: tuple[dict[str, None], ...] = ({}, {}, {})
    for call in calls:
        for part in (call.get("body"), call.get("response")):
            if not isinstance(part, dict):
                continue
            for index, key in enumerate(("bookingId", "externalId", "ReferenceId")):
                value = part.get(key)
                if isinstance(value, str | int) and not isinstance(value, bool) and value != "":
                    found[index][str(value)] = None
    return tuple(tuple(ids) for ids in found)


def redact(node: Any, masker: Masker) -> Any:
    """A copy with personal values (names, contacts, codes, links) masked."""
    if isinstance(node, dict):
        return {
            k: masker.mask(v) if k in _PERSONAL and isinstance(v, str) else redact(v, masker)
            for k, v in node.items()
        }
    if isinstance(node, list | tuple):
        return [redact(v, masker) for v in node]
    return node


# Short values (a bare 4-digit code, a national phone number) could match inside any number or
# tag of a log line by chance; those are looked for in their longer forms (codeFormatted, E.164).
_MIN_TRACEABLE = 6


def personal_values(node: Any) -> set[str]:
    """The personal values (names, contacts, formatted codes, links) anywhere in `node`, as
    sent or answered: what the service's logs must never hold in clear text."""
    found: set[str] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            if k in _PERSONAL and isinstance(v, str) and len(v.strip()) >= _MIN_TRACEABLE:
                found.add(v.strip())
            else:
                found |= personal_values(v)
    elif isinstance(node, list | tuple):
        for v in node:
            found |= personal_values(v)
    return found


class Context:
    """One scenario's run: helpers to send bookings, and the record of checks and evidence."""

    def __init__(self, stage: Stage, scenario_id: str, *, run_tag: str = "") -> None:
        self.stage = stage
        # Booking ids start with the run's tag (when it has one): a run against a long-lived
        # Inlet never meets the externalIds of an earlier run, and its bookings are found by it.
        scenario = scenario_id.replace(".", "-").upper()
        self.prefix = f"{run_tag}-{scenario}" if run_tag else scenario
        # the service's key: a tag in the evidence matches the same value's tag in its logs
        self.masker = Masker(stage.app[SETTINGS].log_mask_key)
        self.checks: list[Check] = []
        self.events: list[Any] = []
        self.booking_ids: set[str] = set()
        self.bookings: set[tuple[str, str]] = set()  # (source, booking_id) as stored
        self.personal: set[str] = set()  # looked for in the logs; never written to the report
        self._ids = itertools.count(1)
        self._first_request = 0
        self.started = time.perf_counter()
        self.started_at = self.now

    @property
    def now(self) -> datetime:
        return self.stage.clock.now()

    @property
    def has_sandbox(self) -> bool:
        return self.stage.has_sandbox

    async def begin(self) -> None:
        self.stage.restart_clock()
        if self.stage.has_sandbox:
            await self.stage.clear_faults()
        self._first_request = len(await self.stage.inlet_requests())
        self.started_at = self.now

    async def inlet_calls(self) -> list[dict[str, Any]]:
        """The Inlet requests made since this scenario began."""
        return (await self.stage.inlet_requests())[self._first_request :]

    async def calls_to(self, path: str, booking_id: str | None = None) -> list[dict[str, Any]]:
        """The calls to `path` since this scenario began; with `booking_id`, only the calls
        carrying that bookingId (GrantAccess and UpdateAccess)."""
        return [
            r
            for r in await self.inlet_calls()
            if r["path"] == path and (booking_id is None or sent_ids([r])[0] == (booking_id,))
        ]

    def booking_id(self, suffix: str) -> str:
        return f"{self.prefix}-{suffix}"

    def stay(
        self,
        stay_id: str,
        *,
        room: str | None,
        arrival: datetime,
        hours: float = 48,
        status: str = "confirmed",
        guests: list[dict[str, str]] | None = None,
    ) -> dict[str, Any]:
        return {
            "stay_id": stay_id,
            "resource_id": room,
            "arrival": arrival.isoformat(),
            "departure": (arrival + timedelta(hours=hours)).isoformat(),
            "status": status,
            "guests": [OLA] if guests is None else guests,
        }

    async def send(
        self, booking_id: str, stays: list[dict[str, Any]], *, expect: int = 202, **booking: Any
    ) -> dict[str, Any]:
        """Post the booking's whole state as of now (a later event of a booking wins over an
        earlier one with the same time: events are ordered by time, then by arrival)."""
        self.booking_ids.add(booking_id)
        self.bookings.add((SOURCE, booking_id))
        body = {
            "event_id": f"{booking_id}-e{next(self._ids)}",
            "source": SOURCE,
            "occurred_at": self.now.isoformat(),
            "booking": {
                "booking_id": booking_id,
                "property_id": PROPERTY,
                "stays": stays,
                **booking,
            },
        }
        self.personal |= personal_values(body)
        response = await self.stage.post(body)
        answer = await response.json()
        self.events.append(
            {"request": redact(body, self.masker), "status": response.status, "answer": answer}
        )
        self.check(
            f"{booking_id}: ingest answers {expect}",
            response.status == expect,
            f"HTTP {response.status}",
        )
        await self.stage.settle()
        return dict(answer)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(name=name, status="pass" if ok else "fail", detail=detail))
        return ok

    def not_run(self, name: str, reason: str) -> None:
        self.checks.append(Check(name=name, status="not_run", detail=reason))

    async def on_sandbox(self, name: str, probe: Callable[[], Awaitable[bool]]) -> None:
        """A check only the sandbox can answer; against Inlet's test environment: not run."""
        if not self.has_sandbox:
            self.not_run(name, NEEDS_SANDBOX)
            return
        self.check(name, await probe())

    async def check_opens(
        self, name: str, code: str | None, lock: str, at: datetime, *, opens: bool
    ) -> None:
        """Whether `code` opens `lock` at `at` is as expected (a sandbox-only check)."""
        if not self.has_sandbox:
            self.not_run(name, NEEDS_SANDBOX)
            return
        actual = code is not None and await self.stage.opens(code, lock, at)
        self.check(name, actual == opens, f"opens={actual}")

    async def grant_of(
        self, booking_id: str, stay_id: str, *, source: str = SOURCE
    ) -> dict[str, Any] | None:
        """The active grant Inlet holds for a stay: from the sandbox, or against another Inlet
        from what the service stored of Inlet's answers (in the sandbox's field names)."""
        key = f"{source}:{booking_id}:{stay_id}"
        if self.has_sandbox:
            for grant in await self.stage.grants():
                if grant["externalId"] == key and grant["state"] == "active":
                    return dict(grant)
            return None
        for stored in await self.stored(booking_id, source=source):
            if stored["grant_key"] == key and stored["state"] == "active":
                return {
                    "externalId": key,
                    "state": "active",
                    "ReferenceId": stored["reference_id"],
                    "code": stored["code"],
                    "codeFormatted": stored["code_formatted"],
                    "link": stored["link"],
                    "locks": stored["access_points"],
                    "start": stored["valid_from"],
                    "end": stored["valid_to"],
                }
        return None

    async def last_sent(self, booking_id: str, stay_id: str) -> dict[str, Any]:
        """The body of the last GrantAccess or UpdateAccess sent for a stay (empty if none)."""
        key = f"{SOURCE}:{booking_id}:{stay_id}"
        sent = [
            c["body"]
            for c in await self.inlet_calls()
            if c["path"] in ("/GrantAccess", "/UpdateAccess")
            and isinstance(c["body"], dict)
            and c["body"].get("externalId") == key
        ]
        return dict(sent[-1]) if sent else {}

    async def stored(self, booking_id: str, *, source: str = SOURCE) -> list[dict[str, Any]]:
        """The grants the service stored for a booking (from the operator timeline)."""
        timeline = await self.stage.timeline(source, booking_id)
        return list(timeline["grants"])

    async def opens(self, code: str | None, lock: str, at: datetime) -> bool:
        return code is not None and await self.stage.opens(code, lock, at)

    async def check_event_times(self) -> None:
        """One clock: no stored event was received (`received_at`, stamped by the database)
        before it occurred (`occurred_at`, stamped by this run's clock)."""
        if not self.bookings:
            return
        events = 0
        ahead: list[timedelta] = []
        for source, booking_id in sorted(self.bookings):
            response = await self.stage.service.get(
                f"/v1/bookings/{source}/{booking_id}", headers=self.stage.admin_headers
            )
            if response.status == 404:  # refused: nothing stored
                continue
            for event in (await response.json())["events"]:
                events += 1
                received = datetime.fromisoformat(event["received_at"])
                occurred = datetime.fromisoformat(event["event"]["occurred_at"])
                if received < occurred:
                    ahead.append(occurred - received)
        detail = f"{events} event{'s' if events != 1 else ''} stored"
        if ahead:
            detail += (
                f"; {len(ahead)} received before they occurred, by up to"
                f" {max(ahead).total_seconds():.3f} s: the database's clock (received_at) is"
                " behind this run's clock (occurred_at)"
            )
        self.check("events: received_at never before occurred_at", not ahead, detail)
