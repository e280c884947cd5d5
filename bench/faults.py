"""Does access stay true under faults? The fault campaign: real processes, real faults, figures.

Run as `.venv/bin/python -m bench.faults` (`make faults`), or `--short` for the form CI runs
(`make faults-short`); `--help` for the options. Each scenario gets a fresh database and its
own processes: PostgreSQL (pgserver's server, or DATABASE_URL), `inlet-bridge sandbox` behind
a TCP gate (bench/fault_world.py) and one or two `inlet-bridge serve` replicas. A PMS client
(bench/fault_pms.py) posts booking stories (created, room and date changes, new emails,
cancellations, reinstatements) through `POST /v1/events`, retrying each event until it is
answered 202, while the scenario's fault strikes:

- baseline: no fault, one replica (the control).
- kill-mid-burst: two replicas; one is killed (SIGKILL) with events being posted to it (in
  the burst: a third of the bookings are created together at 40 % of the send period), and
  started again on its port 2 s later.
- kill-mid-call: one replica, Inlet answering every call after 1.5 s; the replica is killed
  with calls in flight (Inlet acts on them anyway), and started again.
- postgres-restart: two replicas; PostgreSQL is stopped (immediate: a crash) under load and
  started again after the outage.
- inlet-refused: Inlet refuses connections (the gate stops listening and cuts open
  connections) for the outage, then takes them again; Inlet's memory survives.
- lost-answers: while events are sent, Inlet acts at once but answers 1 s after the client's
  timeout for half of the RevokeAccess calls and a quarter of the rest of the calls that
  remain: the service hears a timeout and retries.
- two-replicas: two replicas, each event posted to either, changes coming fast: both
  reconcile the same bookings at once.

Once the scenario's events are sent and its fault is over, the campaign waits (real clock, up
to a timeout) until the system has converged: Inlet's grants are what the stored events want,
the database agrees with Inlet, no call is pending and no booking waits for a look. Then it
judges (bench/fault_judge.py, where every figure is defined) and prints one table row per
scenario: events sent, answered 202, lost (202 but not stored), given up by the PMS; stays
wanted and active at Inlet, missing, stale (wrong locks or times), duplicate grants,
cancelled stays with access, stays where the database and Inlet disagree; double calls (the
same change sent to Inlet again although the earlier identical call got a final answer,
success or a permanent refusal, and that answer was recorded: repeats after a temporary or
lost answer or a killed caller are legitimate, counted as repeats); the time to converge.

The exit status is 0 only if, in every scenario, lost, missing, stale, duplicate, cancelled
with access, db≠inlet and double calls are all 0 and the system converged in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg

from bench.fault_judge import (
    Attempt,
    CallFigures,
    DbGrant,
    StayFigures,
    count_by_kind,
    judge_calls,
    judge_stays,
    lost_events,
)
from bench.fault_pms import Ledger, Pms, expected_stays, make_stories
from bench.fault_world import Postgres, Tuning, World
from tests.support import SOURCE

POLL_SECONDS = 1.0
SETTLED_WRONG_SECONDS = 20.0  # quiet but wrong for this long: it will not converge by itself
TRAILING_SECONDS = 2.0  # after converging, what else arrives (a late double call) is counted


@dataclass(frozen=True)
class Size:
    bookings: int
    max_changes: int
    send_seconds: float
    outage_seconds: float
    converge_seconds: float


FULL = Size(bookings=150, max_changes=5, send_seconds=20, outage_seconds=10, converge_seconds=180)
SHORT = Size(bookings=36, max_changes=3, send_seconds=8, outage_seconds=5, converge_seconds=120)


BURST_AT = 0.4  # of the send period: when a third of the bookings are created together


@dataclass
class Run:
    """What a fault needs: the world, the sizes, the server, the PMS, and where to say what
    it did."""

    world: World
    size: Size
    postgres: Postgres
    pms: Pms
    started: float
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.notes.append(f"{time.monotonic() - self.started:5.1f} s: {text}")


Fault = Callable[[Run], Awaitable[None]]


@dataclass(frozen=True)
class Scenario:
    name: str
    replicas: int
    fault: Fault | None = None
    setup: Fault | None = None
    pause: tuple[float, float] = (0.2, 1.5)  # seconds between a booking's changes
    needs_our_postgres: bool = False
    tuning: Tuning = field(default_factory=Tuning)


async def _wait(
    check: Callable[[], Awaitable[bool]], seconds: float, *, interval: float = 0.1
) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(interval)
    return False


async def kill_mid_burst(run: Run) -> None:
    await asyncio.sleep(run.size.send_seconds * BURST_AT)
    victim = run.world.replicas[0]

    async def posting() -> bool:
        return run.pms.in_flight[victim.url] >= 2

    await _wait(posting, 5, interval=0.001)
    posts = run.pms.in_flight[victim.url]
    await run.world.kill(victim)
    run.note(f"SIGKILL {victim.name} with {posts} posts in flight to it")
    await asyncio.sleep(2)
    again = await run.world.restart(victim)
    run.note(f"{again.name} ready on the same port")


async def slow_inlet(run: Run) -> None:
    await run.world.arm_fault(kind="latency", seconds=1.5, rate=1.0)


async def kill_mid_call(run: Run) -> None:
    world = run.world
    await asyncio.sleep(run.size.send_seconds * BURST_AT)

    async def busy() -> bool:
        return await world.in_flight_at_inlet() >= 3

    await _wait(busy, 10)
    in_flight = await world.in_flight_at_inlet()
    victim = world.replicas[0]
    await world.kill(victim)
    run.note(f"SIGKILL {victim.name} with {in_flight} Inlet calls in flight")
    await world.clear_faults()
    await asyncio.sleep(2)
    again = await world.restart(victim)
    run.note(f"{again.name} ready on the same port")


async def postgres_restart(run: Run) -> None:
    await asyncio.sleep(run.size.send_seconds * BURST_AT)
    await run.postgres.stop_server()
    run.note("PostgreSQL stopped (immediate)")
    await asyncio.sleep(run.size.outage_seconds)
    await run.postgres.start_server()
    run.note("PostgreSQL started again")


async def inlet_refused(run: Run) -> None:
    gate = run.world.gate
    assert gate is not None
    await asyncio.sleep(run.size.send_seconds * 0.3)
    await gate.refuse()
    run.note("Inlet refuses connections")
    await asyncio.sleep(run.size.outage_seconds)
    await gate.admit()
    run.note("Inlet takes connections again")


async def answers_lost(run: Run) -> None:
    seconds = run.world.tuning.inlet_timeout_seconds + 1
    # Revocations first (the sandbox takes the first armed fault that applies): a lost
    # revocation followed by a reinstatement is where a guest can be left without access.
    await run.world.arm_fault(kind="lost_answer", seconds=seconds, rate=0.5, operations=["revoke"])
    await run.world.arm_fault(kind="lost_answer", seconds=seconds, rate=0.25)


async def stop_losing_answers(run: Run) -> None:
    await asyncio.sleep(run.size.send_seconds)
    await run.world.clear_faults()
    run.note("answers arrive in time again")


SCENARIOS = (
    Scenario("baseline", replicas=1),
    Scenario("kill-mid-burst", replicas=2, fault=kill_mid_burst),
    Scenario("kill-mid-call", replicas=1, setup=slow_inlet, fault=kill_mid_call),
    Scenario("postgres-restart", replicas=2, fault=postgres_restart, needs_our_postgres=True),
    Scenario("inlet-refused", replicas=1, fault=inlet_refused),
    # Retries 12 s apart (5 minutes in production): the booking can change, and be looked at,
    # while a call whose answer was lost waits for its retry. A 1 s timeout and 16 calls at a
    # time, so calls waiting for lost answers do not hold up the rest (and most changes are
    # sent, not merged in the queue).
    Scenario(
        "lost-answers",
        replicas=1,
        setup=answers_lost,
        fault=stop_losing_answers,
        tuning=Tuning(inlet_timeout_seconds=1.0, retry_interval_minutes=0.2, call_concurrency=16),
    ),
    Scenario("two-replicas", replicas=2, pause=(0.05, 0.4)),
)


# ------------------------------------------------------------------------ observing, judging


@dataclass
class Observation:
    stays: StayFigures
    quiet: bool
    busy: dict[str, int]


@dataclass
class Result:
    scenario: str
    sent: int = 0
    acknowledged: int = 0
    lost: list[str] = field(default_factory=list)
    gave_up: int = 0
    stays: StayFigures = field(default_factory=StayFigures)
    calls: CallFigures = field(default_factory=CallFigures)
    converge_seconds: float | None = None
    escalations: int = 0
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None

    @property
    def failures(self) -> dict[str, int]:
        """The figures that must be 0, and whether it converged; only those not met."""
        figures = {
            "lost": len(self.lost),
            "missing": len(self.stays.missing),
            "stale": len(self.stays.stale),
            "duplicate": len(self.stays.duplicate),
            "cancelled with access": len(self.stays.cancelled_with_access),
            "db≠inlet": len(self.stays.db_mismatch),
            "double calls": len(self.calls.double),
            "not converged": int(self.converge_seconds is None),
        }
        return {k: v for k, v in figures.items() if v and self.skipped is None}


async def _key_map(conn: asyncpg.Connection) -> Callable[[str], str]:
    """externalId -> grant key: the same string, or (once grants have generations) what the
    database says each externalId it sent belongs to."""
    known = {r["grant_key"] for r in await conn.fetch("SELECT DISTINCT grant_key FROM grants")}
    pairs: dict[str, str] = {}
    tables = await conn.fetch(
        "SELECT table_name FROM information_schema.columns"
        " WHERE column_name = 'external_id' AND table_name IN ('grants', 'inlet_calls')"
    )
    for row in tables:
        for r in await conn.fetch(
            f"SELECT DISTINCT external_id, grant_key FROM {row['table_name']}"
            " WHERE external_id IS NOT NULL"
        ):
            pairs[r["external_id"]] = r["grant_key"]

    def key_of(external_id: str) -> str:
        if external_id in pairs:
            return pairs[external_id]
        base = external_id.rsplit("#", 1)[0]
        return external_id if external_id in known or base not in known else base

    return key_of


async def observe(world: World, ledger: Ledger) -> Observation:
    assert world.properties is not None
    inlet_grants = await world.sandbox_get("/_sandbox/grants")
    conn = await asyncpg.connect(world.database_url)
    try:
        stored = {
            r["event_id"]: r["occurred_at"]
            for r in await conn.fetch(
                "SELECT event_id, occurred_at FROM events WHERE source = $1", SOURCE
            )
        }
        db_grants = {
            r["grant_key"]: DbGrant(
                key=r["grant_key"],
                state=r["state"],
                reference_id=r["reference_id"],
                code=r["code"],
                locks=frozenset(r["access_points"]),
                start=r["valid_from"],
                end=r["valid_to"],
            )
            for r in await conn.fetch(
                "SELECT grant_key, state, reference_id, code, access_points, valid_from,"
                " valid_to FROM grants"
            )
        }
        busy_row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM inlet_calls WHERE state = 'pending') AS pending_calls,"
            " (SELECT count(*) FROM bookings WHERE marked_seq > seen_seq) AS marked_bookings,"
            " (SELECT count(*) FROM bookings WHERE due_at <= now()) AS due_bookings"
        )
        key_of = await _key_map(conn)
    finally:
        await conn.close()
    assert busy_row is not None
    busy = {k: int(v) for k, v in busy_row.items() if v}
    expected = expected_stays(ledger, stored, world.properties)
    stays = judge_stays(expected, inlet_grants, db_grants, key_of)
    return Observation(stays=stays, quiet=not busy, busy=busy)


async def wait_converged(world: World, ledger: Ledger, limit: float) -> float | None:
    """Seconds until converged (right at Inlet, database agreeing, nothing left to do), or
    None after `limit` seconds, or once it has been quiet but wrong for SETTLED_WRONG_SECONDS."""
    started = time.monotonic()
    wrong_since: float | None = None
    while time.monotonic() - started < limit:
        try:
            seen = await observe(world, ledger)
        except (OSError, asyncpg.PostgresError, aiohttp.ClientError):
            seen = None  # the database or the sandbox is not back yet
        now = time.monotonic()
        if seen is not None and seen.quiet:
            if seen.stays.converged:
                return now - started
            wrong_since = wrong_since or now
            if now - wrong_since >= SETTLED_WRONG_SECONDS:
                return None
        else:
            wrong_since = None
        await asyncio.sleep(POLL_SECONDS)
    return None


async def judge(world: World, ledger: Ledger, result: Result) -> None:
    seen = await observe(world, ledger)
    result.stays = seen.stays
    if seen.busy:
        result.notes.append(f"still busy: {seen.busy}")
    requests = await world.sandbox_get("/_sandbox/requests")
    inlet_grants = await world.sandbox_get("/_sandbox/grants")
    conn = await asyncpg.connect(world.database_url)
    try:
        stored = [
            r["event_id"]
            for r in await conn.fetch("SELECT event_id FROM events WHERE source = $1", SOURCE)
        ]
        attempts = [
            Attempt(
                key=r["grant_key"],
                started_at=r["started_at"],
                finished_at=r["finished_at"],
                outcome=r["outcome"],
            )
            for r in await conn.fetch(
                "SELECT c.grant_key, a.started_at, a.finished_at, a.outcome"
                " FROM call_attempts a JOIN inlet_calls c ON c.id = a.call_id"
            )
        ]
        result.escalations = int(
            await conn.fetchval("SELECT count(*) FROM escalations WHERE resolved_at IS NULL")
        )
        key_of = await _key_map(conn)
        evidence = {
            table: [dict(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY 1, 2")]
            for table in ("inlet_calls", "call_attempts", "grants", "escalations")
        }
    finally:
        await conn.close()
    # For a look afterwards (kept with the process logs): Inlet's view and the database's.
    evidence.update(inlet_requests=requests, inlet_grants=inlet_grants)
    (world.folder / "evidence.json").write_text(
        json.dumps(evidence, indent=1, default=str), encoding="utf-8"
    )
    outcomes = Counter(a.outcome for a in attempts)
    result.notes.append(f"call attempts recorded: {dict(sorted(outcomes.items()))}")
    result.lost = lost_events(ledger.acknowledged, stored)
    result.calls = judge_calls(requests, attempts, inlet_grants, key_of)
    faults = Counter(str(r["fault"]) for r in requests if r.get("fault"))
    if faults:
        result.notes.append(f"Inlet answers under an injected fault: {dict(faults)}")
    unanswered = sum(r["status"] is None for r in requests)
    if unanswered:
        result.notes.append(f"Inlet requests never answered: {unanswered}")


# ------------------------------------------------------------------------ running a scenario


async def run_scenario(
    scenario: Scenario,
    size: Size,
    postgres: Postgres,
    http: aiohttp.ClientSession,
    folder: Path,
    seed: int,
    after_revoke: str,
) -> Result:
    result = Result(scenario.name)
    if scenario.needs_our_postgres and not postgres.controllable:
        result.skipped = "DATABASE_URL is set: the server is not ours to stop"
        return result
    async with postgres.database() as url, AsyncExitStack() as stack:
        where = folder / scenario.name
        where.mkdir(parents=True, exist_ok=True)
        world = World(stack, http, where, url, scenario.tuning, after_revoke)
        await world.start(scenario.replicas)
        rng = random.Random(f"{seed}:{scenario.name}")
        stories = make_stories(
            rng,
            prefix=scenario.name[:1].upper() + scenario.name.split("-")[-1][:1].upper(),
            count=size.bookings,
            max_changes=size.max_changes,
            send_seconds=size.send_seconds,
            pause=scenario.pause,
            now=datetime.now(UTC),
            burst_at=size.send_seconds * BURST_AT,
        )
        ledger = Ledger()
        pms = Pms(http, lambda: [p.url for p in world.alive()], ledger)
        run = Run(world=world, size=size, postgres=postgres, pms=pms, started=time.monotonic())
        if scenario.setup is not None:
            await scenario.setup(run)
        await asyncio.gather(
            *(pms.play(story, run.started) for story in stories),
            scenario.fault(run) if scenario.fault is not None else asyncio.sleep(0),
        )
        run.note(f"last event answered; {ledger.attempts} posts, errors {dict(ledger.errors)}")
        result.converge_seconds = await wait_converged(world, ledger, size.converge_seconds)
        await asyncio.sleep(TRAILING_SECONDS)
        await judge(world, ledger, result)
        result.sent = len(ledger.bodies)
        result.acknowledged = len(ledger.acknowledged)
        result.gave_up = len(ledger.gave_up)
        result.notes[:0] = run.notes
    return result


# ------------------------------------------------------------------------------- the table

HEADER = (
    "| scenario | events sent | 202 | lost | gave up | stays wanted | active | missing | stale"
    " | duplicate grants | cancelled w/ access | db≠inlet | double calls | repeats"
    " | converged in |"
)


def row(r: Result) -> str:
    if r.skipped is not None:
        return f"| {r.scenario} | skipped: {r.skipped} |" + " |" * 13
    s, c = r.stays, r.calls
    converged = f"{r.converge_seconds:.1f} s" if r.converge_seconds is not None else "no"
    cells = [
        r.scenario,
        r.sent,
        r.acknowledged,
        len(r.lost),
        r.gave_up,
        s.wanted,
        s.active,
        len(s.missing),
        len(s.stale),
        len(s.duplicate),
        len(s.cancelled_with_access),
        len(s.db_mismatch),
        len(c.double),
        c.repeats,
        converged,
    ]
    return "| " + " | ".join(str(x) for x in cells) + " |"


def details(r: Result, limit: int = 6) -> list[str]:
    lines = [f"- {r.scenario}:"]
    lines += [f"    {n}" for n in r.notes]
    for label, keys in (
        ("lost", r.lost),
        ("missing", r.stays.missing),
        ("stale", r.stays.stale),
        ("duplicate", r.stays.duplicate),
        ("cancelled with access", r.stays.cancelled_with_access),
        ("db≠inlet", r.stays.db_mismatch),
    ):
        if keys:
            more = f" (+{len(keys) - limit})" if len(keys) > limit else ""
            lines.append(f"    {label}: {', '.join(keys[:limit])}{more}")
    if r.calls.double:
        kinds = dict(count_by_kind(r.calls.double))
        lines.append(f"    double calls {kinds}:")
        lines += [f"      {d}" for d in r.calls.double[:limit]]
    if r.escalations:
        lines.append(f"    open escalations: {r.escalations}")
    return lines


def print_table(results: list[Result], out: Callable[[str], None] = print) -> None:
    out(HEADER)
    out("|" + "---|" * (HEADER.count("|") - 1))
    for r in results:
        out(row(r))
    out("")
    for r in results:
        for line in details(r):
            out(line)


# ------------------------------------------------------------------------------------ main


async def campaign(args: argparse.Namespace) -> list[Result]:
    size = SHORT if args.short else FULL
    chosen = [s for s in SCENARIOS if not args.scenario or s.name in args.scenario]
    postgres = Postgres(os.environ.get("DATABASE_URL"))
    await postgres.start()
    results = []
    try:
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=30)
        ) as http:
            for scenario in chosen:
                log(f"{scenario.name}: running")
                result = await run_scenario(
                    scenario, size, postgres, http, args.logs, args.seed, args.after_revoke
                )
                log(row(result))
                results.append(result)
    finally:
        await postgres.close()
    return results


def log(text: str) -> None:
    print(f"[faults] {text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.faults", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--short", action="store_true", help="the small form CI runs")
    parser.add_argument(
        "--scenario",
        action="append",
        choices=[s.name for s in SCENARIOS],
        help="run only this scenario (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=12, help="seed of the booking stories")
    parser.add_argument(
        "--after-revoke",
        choices=["new", "revoked"],
        default="new",
        help="the sandbox's reading of a GrantAccess repeating a revoked grant's externalId:"
        " a new grant, or the revoked one handed back (default: %(default)s)",
    )
    parser.add_argument("--logs", type=Path, help="keep the processes' logs in this folder")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)
    keep = args.logs is not None
    if args.logs is None:
        args.logs = Path(tempfile.mkdtemp(prefix="inlet-faults-"))
    started = time.monotonic()
    results = asyncio.run(campaign(args))
    size = "short" if args.short else "full"
    print(
        f"\nFault campaign ({size}, seed {args.seed}, after a revocation Inlet answers a repeated"
        f" externalId with: {args.after_revoke}), {time.monotonic() - started:.0f} s\n"
    )
    print_table(results)
    failed = {r.scenario: r.failures for r in results if r.failures}
    if args.json is not None:
        args.json.write_text(
            json.dumps([asdict(r) for r in results], indent=2, default=str), encoding="utf-8"
        )
    if failed:
        print(f"\nFAILED: {failed}")
        print(f"process logs kept in {args.logs}")
    else:
        print("\nevery figure that must be 0 is 0")
        if not keep:
            with contextlib.suppress(OSError):
                shutil.rmtree(args.logs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
