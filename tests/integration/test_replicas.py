"""Running in production: real `inlet-bridge serve` replicas, one database, the Inlet sandbox.

1. Two replicas share the work: every booking is granted exactly once, the stored references
   match Inlet's, the database gauges agree across replicas and the counters add up.
2. SIGTERM while calls are in flight loses nothing: the process exits in time, every call is
   done or given back, and a new replica finishes the rest without granting anything twice.
3. The logs of an end-to-end run are JSON lines that carry the booking keys but no personal
   data, codes or links in clear text (tests 1 and 2 check their own logs the same way).
4. An Inlet message that repeats the guest's name is not logged in clear text.

These tests use the real clock: bookings arrive in two hours, inside the send window.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.process_support import (
    Process,
    running,
    sandbox_process,
    serve_process,
    wait_until,
    write_properties,
)
from tests.support import BEARER, SOURCE, event, stay

pytestmark = pytest.mark.slow

SHUTDOWN_TIMEOUT = 5.0
SHUTDOWN_MARGIN = 3.0
FIRST_NAMES = (
    "Ingeborg",
    "Halvard",
    "Solveig",
    "Torbjorn",
    "Ragnhild",
    "Eilif",
    "Gudrun",
    "Sverre",
)
LAST_NAMES = ("Fjellstad", "Kvamsoy", "Brekkhus", "Lyngvik", "Haugmoen")
ROOMS = ("101", "102", "201", "202")


@dataclass(frozen=True)
class Guest:
    """One booking with one stay and one guest, and the personal data it carries."""

    booking_id: str
    room: str
    name: str
    email: str
    phone: str  # E.164, as stored
    phone_sent: str  # as the PMS sent it

    @property
    def grant_key(self) -> str:
        return f"{SOURCE}:{self.booking_id}:S1"

    @property
    def national_phone(self) -> str:
        return self.phone.removeprefix("+47")

    def personal_values(self) -> list[str]:
        surname = self.name.split()[-1]
        return [self.name, surname, self.email, self.phone, self.national_phone, self.phone_sent]


def make_guests(prefix: str, count: int, *, numeric_ids: bool = False) -> list[Guest]:
    """`count` bookings; with numeric_ids their ids are eight digits, as many PMS number them.
    Otherwise ids end in three digits, so none can pass for a door code (4 to 6 digits)."""
    guests = []
    for i in range(count):
        first = FIRST_NAMES[i % len(FIRST_NAMES)]
        last = LAST_NAMES[(i // len(FIRST_NAMES)) % len(LAST_NAMES)]
        digits = f"9{1234500 + i:07d}"
        guests.append(
            Guest(
                booking_id=f"{88000100 + i}" if numeric_ids else f"{prefix}-{i:03d}",
                room=ROOMS[i % len(ROOMS)],
                name=f"{first} {last}",
                email=f"{first.lower()}.{last.lower()}{i}@example.no",
                phone=f"+47{digits}",
                # some in E.164, some as people type them
                phone_sent=(
                    f"+47{digits}" if i % 2 else f"+47 {digits[:3]} {digits[3:5]} {digits[5:]}"
                ),
            )
        )
    return guests


def booking_event(
    guest: Guest, arrival: datetime, *, event_id: str | None = None, status: str = "confirmed"
) -> dict[str, Any]:
    contact = {"name": guest.name, "email": guest.email, "phone": guest.phone_sent}
    return event(
        event_id or f"ev-{guest.booking_id}",
        booking_id=guest.booking_id,
        occurred_at=datetime.now(UTC),
        stays=[
            stay(
                "S1",
                resource_id=guest.room,
                arrival=arrival,
                nights=1,
                status=status,
                guests=[contact],
            )
        ],
    )


def arrival_soon() -> datetime:
    """Inside the send window (24 h), so access is sent at once."""
    return (datetime.now(UTC) + timedelta(hours=2)).replace(second=0, microsecond=0)


# ------------------------------------------------------------------------------- helpers


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


@pytest.fixture
async def pg(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def start_sandbox(
    stack: AsyncExitStack, http: aiohttp.ClientSession, folder: Path
) -> Process:
    sandbox = await stack.enter_async_context(running(sandbox_process(folder)))
    await sandbox.wait_ready(http, "/_sandbox/grants")
    return sandbox


async def start_serve(
    stack: AsyncExitStack,
    http: aiohttp.ClientSession,
    folder: Path,
    database_url: str,
    *,
    instance_id: str,
    properties: Path,
) -> Process:
    process = serve_process(
        folder,
        database_url,
        instance_id=instance_id,
        properties=properties,
        SHUTDOWN_TIMEOUT_SECONDS=str(SHUTDOWN_TIMEOUT),
    )
    await stack.enter_async_context(running(process))
    await process.wait_ready(http, "/readyz")
    return process


@asynccontextmanager
async def stalled_request(replica: Process) -> AsyncIterator[None]:
    """A POST whose body never finishes arriving, held open while the context lasts."""
    _, writer = await asyncio.open_connection("127.0.0.1", replica.port)
    writer.write(
        b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Authorization: {BEARER['Authorization']}\r\nContent-Length: 1000\r\n\r\n".encode()
        + b'{"event_id": '
    )
    await writer.drain()
    try:
        yield
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def post_event(http: aiohttp.ClientSession, replica: Process, body: dict[str, Any]) -> None:
    async with http.post(f"{replica.url}/v1/events", json=body, headers=BEARER) as response:
        assert response.status == 202, await response.text()


async def post_all(
    http: aiohttp.ClientSession, replicas: Sequence[Process], bodies: Sequence[dict[str, Any]]
) -> None:
    """Post concurrently, alternating between the replicas."""
    await asyncio.gather(
        *(post_event(http, replicas[i % len(replicas)], body) for i, body in enumerate(bodies))
    )


async def get_json(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def sandbox_grants(http: aiohttp.ClientSession, sandbox: Process) -> list[dict[str, Any]]:
    return list(await get_json(http, f"{sandbox.url}/_sandbox/grants"))


async def grant_requests(http: aiohttp.ClientSession, sandbox: Process) -> list[dict[str, Any]]:
    """Every POST /GrantAccess the sandbox received, with its answer (None while in flight)."""
    requests = await get_json(http, f"{sandbox.url}/_sandbox/requests")
    return [r for r in requests if r["path"] == "/GrantAccess"]


async def sandbox_call(
    http: aiohttp.ClientSession, sandbox: Process, method: str, path: str, **kwargs: Any
) -> None:
    async with http.request(method, f"{sandbox.url}{path}", **kwargs) as response:
        assert response.status in (200, 201), await response.text()


def active_by_external_id(grants: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {g["externalId"]: g for g in grants if g["state"] == "active"}


async def scrape(http: aiohttp.ClientSession, replica: Process) -> dict[tuple[str, str], float]:
    """The samples of /metrics, keyed by name and sorted labels."""
    async with http.get(f"{replica.url}/metrics") as response:
        assert response.status == 200
        text = await response.text()
    samples: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[(sample.name, labels)] = sample.value
    return samples


async def calls_done(pg: asyncpg.Connection, expected: int) -> bool:
    row = await pg.fetchrow(
        "SELECT count(*) FILTER (WHERE state = 'succeeded') AS succeeded,"
        " count(*) FILTER (WHERE state <> 'succeeded') AS other FROM inlet_calls"
    )
    assert row is not None
    return bool(row["succeeded"] == expected and row["other"] == 0)


async def assert_granted_once(
    http: aiohttp.ClientSession,
    sandbox: Process,
    pg: asyncpg.Connection,
    guests: Sequence[Guest],
    *,
    repeats_allowed: bool,
) -> None:
    """Each grant key has one grant at Inlet, the one the database stores."""
    keys = {g.grant_key for g in guests}
    grants = await sandbox_grants(http, sandbox)
    per_key = Counter(g["externalId"] for g in grants)
    assert set(per_key) == keys
    assert all(n == 1 for n in per_key.values()), per_key
    requests = await grant_requests(http, sandbox)
    sent = Counter(r["body"]["externalId"] for r in requests)
    references: dict[str, set[str]] = {}
    for r in requests:
        if r["status"] == 200 and r["response"].get("success"):
            references.setdefault(r["body"]["externalId"], set()).add(r["response"]["ReferenceId"])
    assert set(references) == keys
    assert all(len(refs) == 1 for refs in references.values()), references
    if not repeats_allowed:
        assert all(n == 1 for n in sent.values()), {k: n for k, n in sent.items() if n != 1}
    rows = await pg.fetch(
        "SELECT grant_key, state, reference_id, code, code_formatted, link FROM grants"
    )
    stored = {r["grant_key"]: r for r in rows}
    assert set(stored) == keys
    inlet = active_by_external_id(grants)
    for key in keys:
        row, grant = stored[key], inlet[key]
        assert row["state"] == "active"
        assert row["reference_id"] == grant["ReferenceId"] == references[key].pop()
        assert (row["code"], row["code_formatted"], row["link"]) == (
            grant["code"],
            grant["codeFormatted"],
            grant["link"],
        )


# ---------------------------------------------------------------------------- log checks

_MASKED = re.compile(r"<masked:[0-9a-f]+>")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")


def _scalars(value: Any) -> Iterable[Any]:
    """Every scalar in a decoded JSON value."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _scalars(item)
    elif isinstance(value, list):
        for item in value:
            yield from _scalars(item)
    elif value is not None:
        yield value


def _code_in(value: Any, code: re.Pattern[str]) -> bool:
    """Whether a logged value shows a door code: as a number, or as a word in text (masked
    tags and timestamps, whose digits may look like a code by chance, left out)."""
    if isinstance(value, bool | float):
        return False
    if isinstance(value, int):
        return code.fullmatch(str(value)) is not None
    return code.search(_TIMESTAMP.sub(" ", _MASKED.sub(" ", str(value)))) is not None


def assert_logs_clean(
    processes: Sequence[Process],
    guests: Sequence[Guest],
    grants: Sequence[dict[str, Any]],
    *,
    refused: Sequence[Guest] = (),
) -> None:
    """No personal data, code or link in clear text; JSON lines; every booking's id present
    (a refused event is logged without its content, so only its personal data is looked for)."""
    texts = [g for guest in [*guests, *refused] for g in guest.personal_values()]
    texts += [g["link"] for g in grants] + [
        g["codeFormatted"] for g in grants if g["codeFormatted"]
    ]
    codes = [
        re.compile(rf"(?<![0-9A-Za-z]){re.escape(g['code'])}(?![0-9A-Za-z])")
        for g in grants
        if g["code"]
    ]
    booking_ids = {g.booking_id for g in guests}
    logged_bookings: set[str] = set()
    for process in processes:
        stderr = process.stderr_path.read_text(encoding="utf-8", errors="replace")
        raw = process.stdout_path.read_text(encoding="utf-8", errors="replace") + stderr
        leaked = sorted({t for t in texts if t in raw})
        assert not leaked, f"{process.name} logged personal data in clear text: {leaked}"
        records = process.log_records()
        assert records, f"{process.name} wrote no log lines"
        for record in records:
            assert record.get("action") or record.get("msg"), record
            if "booking_id" in record:
                logged_bookings.add(str(record["booking_id"]))
            for key, value in record.items():
                if key == "ts":
                    continue
                found = [c.pattern for c in codes for v in _scalars(value) if _code_in(v, c)]
                assert not found, f"{process.name} logged a door code {found}: {record}"
    # troubleshooting works: every booking can be found in the logs by its id
    assert booking_ids <= logged_bookings, sorted(booking_ids - logged_bookings)


# ------------------------------------------------------------------------------- tests


async def test_two_replicas_grant_each_booking_once(
    tmp_path: Path, database_url: str, http: aiohttp.ClientSession, pg: asyncpg.Connection
) -> None:
    """40 bookings posted alternately to two replicas: each granted once, references stored as
    Inlet holds them, database gauges equal everywhere, per-replica counters adding up."""
    guests = make_guests("R", 40)
    arrival = arrival_soon()
    async with AsyncExitStack() as stack:
        sandbox = await start_sandbox(stack, http, tmp_path)
        properties = write_properties(tmp_path, sandbox.port)
        replicas = [
            await start_serve(
                stack, http, tmp_path, database_url, instance_id=name, properties=properties
            )
            for name in ("replica-a", "replica-b")
        ]

        await post_all(http, replicas, [booking_event(g, arrival) for g in guests])

        async def all_active() -> bool:
            return len(active_by_external_id(await sandbox_grants(http, sandbox))) >= len(guests)

        await wait_until(all_active, "40 active grants at the sandbox")
        await wait_until(lambda: calls_done(pg, len(guests)), "every call recorded as succeeded")
        await assert_granted_once(http, sandbox, pg, guests, repeats_allowed=False)
        # No double call: no GrantAccess met a grant already made, no revoke a revoked one.
        async with http.get(f"{sandbox.url}/_sandbox/repeats") as response:
            assert await response.json() == []

        # Three more bookings whose grants Inlet refuses for now (503): their calls wait for
        # the retry in 5 minutes, so the database holds still while both replicas are scraped.
        waiting = make_guests("W", 3)
        fault = {"kind": "status", "status": 503, "count": len(waiting)}
        await sandbox_call(http, sandbox, "POST", "/_sandbox/faults", json=fault)
        await post_all(http, replicas, [booking_event(g, arrival) for g in waiting])

        async def retries_scheduled() -> bool:
            n = await pg.fetchval(
                "SELECT count(*) FROM inlet_calls WHERE state = 'pending'"
                " AND last_outcome = 'temporary' AND lease_owner IS NULL"
            )
            return bool(n == len(waiting))

        await wait_until(retries_scheduled, "3 calls waiting for their retry")

        metrics = [await scrape(http, replica) for replica in replicas]
        counts = await pg.fetchrow(
            "SELECT (SELECT count(*) FROM grants WHERE state = 'active') AS active,"
            " (SELECT count(*) FROM grants WHERE state = 'revoked') AS revoked"
        )
        assert counts is not None
        assert counts["active"] == len(guests)
        pending: dict[str, int] = {
            r["operation"]: r["n"]
            for r in await pg.fetch(
                "SELECT operation, count(*) AS n FROM inlet_calls WHERE state = 'pending'"
                " GROUP BY operation"
            )
        }
        assert pending == {"grant": len(waiting)}
        from_database = {
            ("inlet_bridge_grants", 'state="active"'): counts["active"],
            ("inlet_bridge_grants", 'state="revoked"'): counts["revoked"],
        }
        for operation in ("grant", "update", "revoke"):
            key = ("inlet_bridge_calls_pending", f'operation="{operation}"')
            from_database[key] = pending.get(operation, 0)
        for replica, samples in zip(replicas, metrics, strict=True):
            exported = {key: samples.get(key) for key in from_database}
            assert exported == from_database, replica.name

        def made(outcome: str) -> list[float]:
            key = ("inlet_bridge_inlet_calls_total", f'operation="grant",outcome="{outcome}"')
            return [samples.get(key, 0.0) for samples in metrics]

        assert sum(made("success")) == len(guests), made("success")
        assert sum(made("temporary")) == len(waiting), made("temporary")

        grants = await sandbox_grants(http, sandbox)
        for replica in replicas:
            assert await replica.stop() == 0, replica.output()
        assert_logs_clean(replicas, [*guests, *waiting], grants)


@pytest.mark.parametrize(
    "latency",
    [
        pytest.param(1.5, id="calls-finish-within-grace"),
        pytest.param(SHUTDOWN_TIMEOUT + 3, id="calls-outlast-grace"),
    ],
)
async def test_sigterm_during_calls_loses_nothing(
    tmp_path: Path,
    database_url: str,
    http: aiohttp.ClientSession,
    pg: asyncpg.Connection,
    latency: float,
) -> None:
    """SIGTERM while Inlet answers slowly and a client is still sending a request: the replica
    stops taking calls, exits in time, and leaves every call done or unleased; a new replica
    grants the rest, each booking once."""
    guests = make_guests("T", 20)
    arrival = arrival_soon()
    async with AsyncExitStack() as stack:
        sandbox = await start_sandbox(stack, http, tmp_path)
        properties = write_properties(tmp_path, sandbox.port)
        first = await start_serve(
            stack, http, tmp_path, database_url, instance_id="replica-a", properties=properties
        )
        await sandbox_call(
            http,
            sandbox,
            "POST",
            "/_sandbox/faults",
            json={"kind": "latency", "seconds": latency, "rate": 1.0},
        )
        # One batch: the reconciler plans all of them at once and the worker takes a burst.
        batch = {"events": [booking_event(g, arrival) for g in guests]}
        async with http.post(
            f"{first.url}/v1/events:batch", json=batch, headers=BEARER
        ) as response:
            assert response.status == 202, await response.text()

        async def burst() -> bool:
            requests = await grant_requests(http, sandbox)
            return sum(r["status"] is None for r in requests) >= 4

        await wait_until(burst, "a burst of GrantAccess calls in flight")
        leased = {
            r["id"]
            for r in await pg.fetch("SELECT id FROM inlet_calls WHERE lease_owner IS NOT NULL")
        }
        assert leased
        # A client still sending its request: the server waits for it up to the shutdown
        # timeout, which must neither keep the workers taking calls nor add to the grace.
        await stack.enter_async_context(stalled_request(first))
        sigterm_at = datetime.now(UTC)
        started = time.monotonic()
        first.signal(signal.SIGTERM)
        code = await first.wait_exit(SHUTDOWN_TIMEOUT + SHUTDOWN_MARGIN)
        elapsed = time.monotonic() - started
        assert code == 0, f"exit {code} after {elapsed:.1f} s\n{first.output()}"

        # Nothing lost: every event stored, every call finished or back in the queue unleased.
        assert await pg.fetchval("SELECT count(*) FROM events") == len(guests)
        calls = {
            r["id"]: r for r in await pg.fetch("SELECT id, state, lease_owner FROM inlet_calls")
        }
        held = [
            dict(c)
            for c in calls.values()
            if not (
                c["state"] == "succeeded" or (c["state"] == "pending" and c["lease_owner"] is None)
            )
        ]
        assert not held, held
        # The calls in flight at SIGTERM finished within the grace period, or were given back.
        expected = "succeeded" if latency < SHUTDOWN_TIMEOUT else "pending"
        assert {calls[i]["state"] for i in leased} == {expected}
        # ... and no call reached Inlet after SIGTERM (a second for the signal to arrive).
        late = [
            r
            for r in await grant_requests(http, sandbox)
            if datetime.fromisoformat(r["at"]) > sigterm_at + timedelta(seconds=1)
        ]
        assert not late, [(r["at"], r["body"]["externalId"]) for r in late]
        done_before = sum(c["state"] == "succeeded" for c in calls.values())

        await sandbox_call(http, sandbox, "DELETE", "/_sandbox/faults")
        second = await start_serve(
            stack, http, tmp_path, database_url, instance_id="replica-b", properties=properties
        )

        async def all_active() -> bool:
            return len(active_by_external_id(await sandbox_grants(http, sandbox))) >= len(guests)

        await wait_until(all_active, "20 active grants at the sandbox")
        await wait_until(lambda: calls_done(pg, len(guests)), "every call recorded as succeeded")
        await assert_granted_once(http, sandbox, pg, guests, repeats_allowed=True)
        print(f"shutdown took {elapsed:.1f} s; {done_before} of {len(guests)} done before it")

        grants = await sandbox_grants(http, sandbox)
        assert await second.stop() == 0, second.output()
        assert_logs_clean([first, second], guests, grants)


async def test_logs_of_an_end_to_end_run_hold_no_personal_data(
    tmp_path: Path, database_url: str, http: aiohttp.ClientSession, pg: asyncpg.Connection
) -> None:
    """Grants, a contact change (update), a cancellation (revoke), a repeated delivery, a
    phone dropped for want of a country code and a refused event, with booking ids of eight
    digits: the logs let a partner follow every booking by its id and show none of the guests'
    data, codes or links."""
    guests = make_guests("L", 6, numeric_ids=True)
    # Granted without its phone, which has no country code: logged by path, never by value.
    guests.append(replace(guests[5], booking_id="88000998", phone_sent="98765433"))
    moved = replace(
        guests[1],
        email="new.address@example.no",
        phone="+4741234599",
        phone_sent="+47 412 34 599",
    )
    refused = Guest(
        booking_id="88000999",
        room="101",
        name="Vebjorn Refsdalen",
        email="vebjorn@@example",
        phone="+4791234598",
        phone_sent="+47 123",
    )
    arrival = arrival_soon()
    async with AsyncExitStack() as stack:
        sandbox = await start_sandbox(stack, http, tmp_path)
        properties = write_properties(tmp_path, sandbox.port)
        replica = await start_serve(
            stack, http, tmp_path, database_url, instance_id="replica-a", properties=properties
        )
        bodies = [booking_event(g, arrival) for g in guests]
        await post_all(http, [replica], bodies)
        await post_event(http, replica, bodies[0])  # a repeated delivery
        # Refused for its dates; its invalid email and phone are only warned about (by path).
        refused_body = booking_event(refused, arrival)
        refused_stay = refused_body["booking"]["stays"][0]
        refused_stay["departure"] = refused_stay["arrival"]
        async with http.post(
            f"{replica.url}/v1/events", json=refused_body, headers=BEARER
        ) as response:
            assert response.status == 422, await response.text()

        async def granted() -> bool:
            return len(active_by_external_id(await sandbox_grants(http, sandbox))) == len(guests)

        await wait_until(granted, "6 active grants at the sandbox")
        await post_event(http, replica, booking_event(moved, arrival, event_id="ev-moved"))
        cancelled = booking_event(guests[2], arrival, event_id="ev-cancel", status="cancelled")
        await post_event(http, replica, cancelled)

        async def changed() -> bool:
            grants = {g["externalId"]: g for g in await sandbox_grants(http, sandbox)}
            return bool(
                grants[moved.grant_key]["email"] == moved.email
                and grants[guests[2].grant_key]["state"] == "revoked"
            )

        await wait_until(changed, "the update and the revocation at the sandbox")
        await wait_until(lambda: calls_done(pg, len(guests) + 2), "8 calls recorded")
        grants = await sandbox_grants(http, sandbox)
        assert await replica.stop() == 0, replica.output()

    assert_logs_clean([replica], [*guests, moved], grants, refused=[refused])
    records = replica.log_records()
    actions = Counter(r.get("action") for r in records)
    for action in ("ingest.duplicate", "ingest.refused", "inlet.call", "call.succeeded"):
        assert actions[action], (action, actions)
    (dropped,) = [r for r in records if r.get("action") == "ingest.contact_dropped"]
    assert (dropped["booking_id"], dropped["paths"]) == (
        "88000998",
        ["booking.stays[0].guests[0].phone"],
    )
    # the whole story of the changed booking, by its id
    story = {r.get("action") for r in records if r.get("booking_id") == moved.booking_id}
    assert {"ingest.accepted", "reconcile.planned", "call.succeeded"} <= story, story
    by_key = [r for r in records if r.get("grant_key") == moved.grant_key]
    assert {r.get("operation") for r in by_key} >= {"grant", "update"}, by_key
    # times stay readable (a date is not a phone number)
    looks = [r["next_look_at"] for r in records if r.get("next_look_at")]
    assert looks
    assert all(datetime.fromisoformat(t) > datetime.now(UTC) for t in looks), looks


async def test_inlet_messages_echoing_personal_data_are_not_logged(
    tmp_path: Path, database_url: str, http: aiohttp.ClientSession, pg: asyncpg.Connection
) -> None:
    """Inlet refuses a grant with a message that repeats the guest's name, email and phone."""
    guest = make_guests("E", 1)[0]
    async with AsyncExitStack() as stack:
        sandbox = await start_sandbox(stack, http, tmp_path)
        properties = write_properties(tmp_path, sandbox.port)
        replica = await start_serve(
            stack, http, tmp_path, database_url, instance_id="replica-a", properties=properties
        )
        echo = f"Cannot message {guest.name} at {guest.email} or {guest.phone_sent}"
        fault = {"kind": "success_false", "message": echo, "retryable": False, "count": 1}
        await sandbox_call(http, sandbox, "POST", "/_sandbox/faults", json=fault)
        await post_event(http, replica, booking_event(guest, arrival_soon()))

        async def escalated() -> bool:
            return bool(await pg.fetchval("SELECT state FROM inlet_calls") == "failed")

        await wait_until(escalated, "the refused grant to be escalated")
        assert await replica.stop() == 0, replica.output()

    actions = {r.get("action") for r in replica.log_records()}
    assert "call.escalated" in actions, actions
    assert_logs_clean([replica], [guest], [])
