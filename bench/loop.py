"""How fast does the whole loop turn bookings into Inlet calls, against what this machine allows?

Run as `.venv/bin/python bench/loop.py` (options: `--help`). One run, for each Inlet latency
asked for (`--latencies`, 0 and 50 ms):

- starts the Inlet sandbox and `inlet-bridge serve` (its real workers, JSON logs at `LOG_LEVEL`,
  INFO unless set, into a file) as their own processes on loopback, with a fresh database;
- posts a wave of `--stays` new bookings (one stay each, access starting within the hour, in
  batches of 500) and times it until every grant is recorded: GrantAccess/s; then moves every stay
  to another room (UpdateAccess/s), then cancels every one (RevokeAccess/s). The rate is the
  stays over the time from the first post to the last recorded success; "calling/s" is the
  stays over the time from the first call leaving to the last answer (the call phase, which
  Little's law bounds by concurrency / latency; the wave adds ingesting and the first plans).
  At a latency above 0 it also prints how full the call slots were (the wave's attempts' durations
  over concurrency x time: Little's law with the latency the calls took) and a call's mean
  duration beside the bare round trip's.
  CPU of the service process, of PostgreSQL (every backend) and of the Inlet imitation over
  each wave is divided by the calls;
- posts single new bookings at `--rate` events/s for `--seconds` and reads, for each, the time
  from its 202 to its GrantAccess leaving (the attempt's start): p50 and p99;
- checks every stay converged exactly once at the sandbox: one GrantAccess, one UpdateAccess and
  one RevokeAccess per stay, no repeated call (`/_sandbox/repeats`), every grant revoked.

Limits measured in the same run, each printed beside the figure it bounds: durable commits/s
(one connection, one-row INSERT and COMMIT), SKIP LOCKED claims/s (four connections leasing one
row per statement), the bare aiohttp rate (a handler that answers at once, 64 connections), and
for each latency above 0 the bare round trips: CALL_CONCURRENCY requests kept in flight by an
aiohttp client on the service's event loop (EVENT_LOOP) to a handler that waits the latency on
the standard loop, as the sandbox does; no database, no work. That is what concurrency / latency
comes to on this machine before the service does anything.
PostgreSQL is DATABASE_URL if set, else an embedded server (pgserver) in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench.limits import Limits, measure_limits
from bench.support import (
    DEMO_PROPERTIES,
    cpu_seconds,
    fresh_database,
    machine_facts,
    postgres_server,
    wait_http,
)

SOURCE = "demo-pms"
TOKEN = "demo-pms-token"
BATCH = 500
TARGETS = {"grant": 1000.0, "revoke": 1000.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def properties_for(inlet_port: int, folder: Path) -> Path:
    text = DEMO_PROPERTIES.read_text()
    text = text.replace(
        'base_url = "http://127.0.0.1:8081"', f'base_url = "http://127.0.0.1:{inlet_port}"'
    )
    text = text.replace(
        "rate_limit = { per_second = 50, burst = 100 }",
        "rate_limit = { per_second = 100000, burst = 100000 }",
    )
    # A wave of thousands of stays in one hotel: its shared door takes them all.
    text = text.replace("capacity = 1000", "capacity = 1000000")
    path = folder / "properties.toml"
    path.write_text(text)
    return path


@dataclass
class Wave:
    operation: str
    stays: int
    seconds: float
    serve_cpu: float
    postgres_cpu: float
    inlet_cpu: float  # the Inlet imitation's process
    commits: int  # transactions committed in the database (all of it, the bench's own too)
    calling: float  # seconds from the first call leaving to the last answer
    attempts: int = 0  # the wave's call attempts (one per stay unless one was retried)
    attempt_seconds: float = 0.0  # their durations added up: how long slots held a call

    @property
    def rate(self) -> float:
        return self.stays / self.seconds if self.seconds > 0 else 0.0

    @property
    def calling_rate(self) -> float:
        return self.stays / self.calling if self.calling > 0 else 0.0

    @property
    def mean_attempt(self) -> float:
        """Seconds from a call leaving to its answer being in, on average (Inlet's latency as
        this service sees it: the imitation's wait, the HTTP round trip, both loops)."""
        return self.attempt_seconds / self.attempts if self.attempts else 0.0

    def occupancy(self, concurrency: int, *, calling: bool = False) -> float:
        """The share of the call slots holding a call, over the wave or while calling: the
        calls/s against concurrency / the latency the calls actually took (Little's law)."""
        span = self.calling if calling else self.seconds
        return self.attempt_seconds / (concurrency * span) if span > 0 else 0.0


@dataclass
class Run:
    latency_ms: float
    concurrency: int
    waves: list[Wave] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    exactly_once: bool = False
    problems: list[str] = field(default_factory=list)


def stay_body(booking: str, arrival: datetime, *, resource: str, status: str) -> dict[str, Any]:
    return {
        "stay_id": "S1",
        "resource_id": resource,
        "arrival": arrival.isoformat(),
        "departure": (arrival + timedelta(days=2)).isoformat(),
        "status": status,
        "guests": [{"name": "Ola Nordmann", "email": f"{booking.lower()}@example.no"}],
    }


def event_body(
    booking: str, arrival: datetime, *, resource: str = "101", status: str = "confirmed"
) -> dict[str, Any]:
    return {
        "event_id": f"{booking}-{uuid.uuid4().hex[:12]}",
        "source": SOURCE,
        "occurred_at": datetime.now(UTC).isoformat(),
        "booking": {
            "booking_id": booking,
            "property_id": "oslo-1",
            "stays": [stay_body(booking, arrival, resource=resource, status=status)],
        },
    }


class Service:
    """The sandbox and the service, as processes, on a fresh database."""

    def __init__(self, server_dsn: str, folder: Path, concurrency: int) -> None:
        self.server_dsn = server_dsn
        self.folder = folder
        self.concurrency = concurrency
        self.inlet_port = free_port()
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.inlet = f"http://127.0.0.1:{self.inlet_port}"
        self.processes: list[subprocess.Popen[bytes]] = []
        self.dsn = ""

    @asynccontextmanager
    async def running(
        self, latency_ms: float, *, dsn: str | None = None, **extra: str
    ) -> AsyncIterator[Service]:
        """Both processes up (on `dsn`, or a fresh database); `extra`: more settings."""
        if dsn is None:
            self.dsn, drop = await fresh_database(self.server_dsn, "inlet_bench_loop")
        else:
            self.dsn = dsn

            async def drop() -> None:
                return None

        bin_dir = Path(sys.executable).parent
        log = open(self.folder / f"serve-{latency_ms:g}.log", "wb")  # noqa: SIM115, ASYNC230 - set-up
        env = {
            **os.environ,
            "DATABASE_URL": self.dsn,
            "PROPERTIES_FILE": str(properties_for(self.inlet_port, self.folder)),
            "DEMO_PMS_TOKEN": TOKEN,
            "DEMO_PMS_WEBHOOK_SECRET": "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHM=",
            "INLET_API_KEY_OSLO_1": "inlet-key-oslo-1",
            "ADMIN_TOKEN": "bench-admin-token",
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "CALL_CONCURRENCY": str(self.concurrency),
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
            **extra,
        }
        try:
            sandbox = subprocess.Popen(  # noqa: ASYNC220 - set-up, before the clock runs
                [str(bin_dir / "inlet-bridge"), "sandbox", "--port", str(self.inlet_port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.processes.append(sandbox)
            await wait_http(f"{self.inlet}/_sandbox/faults")
            serve = subprocess.Popen(  # noqa: ASYNC220
                [str(bin_dir / "inlet-bridge"), "serve"], env=env, stdout=log, stderr=log
            )
            self.processes.append(serve)
            await wait_http(f"{self.base}/healthz")
            if latency_ms > 0:
                async with aiohttp.ClientSession() as http:
                    fault = {"kind": "latency", "seconds": latency_ms / 1000}
                    async with http.post(f"{self.inlet}/_sandbox/faults", json=fault) as r:
                        assert r.status in (200, 201), await r.text()
            yield self
        finally:
            for process in reversed(self.processes):
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
            self.processes.clear()
            log.close()
            await drop()

    @property
    def serve_pid(self) -> int:
        return self.processes[-1].pid

    @property
    def inlet_pid(self) -> int:
        return self.processes[0].pid


async def post_batch(http: aiohttp.ClientSession, base: str, events: list[dict[str, Any]]) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with http.post(f"{base}/v1/events:batch", json={"events": events}, headers=headers) as r:
        if r.status != 202:
            raise RuntimeError(f"batch answered {r.status}: {await r.text()}")


async def wave(
    service: Service,
    pool: asyncpg.Pool,
    operation: str,
    bookings: list[str],
    arrival: datetime,
    postmaster: int | None,
    limit_seconds: float,
) -> Wave:
    resource, status = {
        "grant": ("101", "confirmed"),
        "update": ("102", "confirmed"),
        "revoke": ("102", "cancelled"),
    }[operation]
    commits_sql = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
    commits_before = await pool.fetchval(commits_sql)
    cpu_before = cpu_seconds(service.serve_pid, postmaster)
    inlet_before = cpu_seconds(service.inlet_pid, None)[0]
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    async with aiohttp.ClientSession() as http:
        batches = [bookings[i : i + BATCH] for i in range(0, len(bookings), BATCH)]
        await asyncio.gather(
            *(
                post_batch(
                    http,
                    service.base,
                    [event_body(b, arrival, resource=resource, status=status) for b in batch],
                )
                for batch in batches
            )
        )
    done_sql = (
        "SELECT count(*) FROM inlet_calls WHERE operation = $1 AND state = 'succeeded'"
        " AND created_at >= $2"
    )
    # Polled every 50 ms, so through the partial indexes only: counting the calls reads the
    # whole table (7-30 ms a poll late in a run), which took a tenth of a core from the
    # database being measured. The count runs once nothing is left to do.
    busy_sql = (
        "SELECT EXISTS (SELECT 1 FROM inlet_calls WHERE state = 'pending')"
        " OR EXISTS (SELECT 1 FROM bookings WHERE marked_seq > seen_seq)"
    )
    while True:
        if not await pool.fetchval(busy_sql):
            done = await pool.fetchval(done_sql, operation, started)
            if done >= len(bookings):
                break
        if time.perf_counter() - t0 > limit_seconds:
            states = await pool.fetch(
                "SELECT operation, state, last_outcome, last_http_status, count(*) AS n,"
                " min(last_message) AS message FROM inlet_calls GROUP BY 1, 2, 3, 4"
            )
            for r in states:
                print(f"  calls: {dict(r)}", file=sys.stderr)
            done = await pool.fetchval(done_sql, operation, started)
            raise RuntimeError(
                f"{operation}: only {done} of {len(bookings)} calls succeeded in {limit_seconds:g} s"
            )
        await asyncio.sleep(0.05)
    last = await pool.fetchval(
        "SELECT max(finished_at) FROM inlet_calls WHERE operation = $1 AND created_at >= $2",
        operation,
        started,
    )
    attempts = await pool.fetchrow(
        "SELECT min(a.started_at) AS first, count(*) AS n,"
        " coalesce(sum(extract(epoch FROM a.finished_at - a.started_at)), 0)::float8 AS held"
        " FROM call_attempts a JOIN inlet_calls c ON c.id = a.call_id"
        " WHERE c.operation = $1 AND c.created_at >= $2",
        operation,
        started,
    )
    assert attempts is not None  # an aggregate always returns its row
    cpu_after = cpu_seconds(service.serve_pid, postmaster)
    await asyncio.sleep(0.6)  # the statistics collector's delay (PGSTAT_MIN_INTERVAL 0.5 s)
    commits = await pool.fetchval(commits_sql) - commits_before
    return Wave(
        operation=operation,
        stays=len(bookings),
        seconds=(last - started).total_seconds(),
        serve_cpu=cpu_after[0] - cpu_before[0],
        postgres_cpu=cpu_after[1] - cpu_before[1],
        inlet_cpu=cpu_seconds(service.inlet_pid, None)[0] - inlet_before,
        calling=(last - attempts["first"]).total_seconds(),
        commits=commits,
        attempts=attempts["n"],
        attempt_seconds=attempts["held"],
    )


async def steady(
    service: Service, pool: asyncpg.Pool, rate: float, seconds: float, arrival: datetime
) -> list[float]:
    """Single bookings at `rate` per second: seconds from each 202 to its GrantAccess leaving."""
    answered: dict[str, float] = {}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as http:

        async def one(booking: str) -> None:
            async with http.post(
                f"{service.base}/v1/events", json=event_body(booking, arrival), headers=headers
            ) as r:
                await r.read()
                if r.status == 202:
                    answered[booking] = time.time()

        tasks = []
        start = time.perf_counter()
        for n in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(f"L-{n}")))
        await asyncio.gather(*tasks)
    deadline = time.perf_counter() + 60
    rows: list[asyncpg.Record] = []
    while time.perf_counter() < deadline:
        rows = await pool.fetch(
            "SELECT c.booking_id, min(a.started_at) AS sent FROM inlet_calls c"
            " JOIN call_attempts a ON a.call_id = c.id"
            " WHERE c.booking_id LIKE 'L-%' AND c.operation = 'grant' GROUP BY c.booking_id"
        )
        if len(rows) >= len(answered):
            break
        await asyncio.sleep(0.2)
    return [
        r["sent"].timestamp() - answered[r["booking_id"]]
        for r in rows
        if r["booking_id"] in answered
    ]


async def check_exactly_once(service: Service, stays: int) -> list[str]:
    """Every wave stay: one GrantAccess, one UpdateAccess, one RevokeAccess, no repeat, revoked."""
    problems = []
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{service.inlet}/_sandbox/repeats") as r:
            repeats = await r.json()
        async with http.get(f"{service.inlet}/_sandbox/requests") as r:
            requests = await r.json()
        async with http.get(f"{service.inlet}/_sandbox/grants") as r:
            grants = await r.json()
    if repeats:
        problems.append(f"{len(repeats)} repeated calls at the sandbox")
    wave = f"{SOURCE}:B-"
    granted: dict[str, int] = {}
    counts = {"/UpdateAccess": 0, "/RevokeAccess": 0}
    for request in requests:
        if request["path"] == "/GrantAccess":
            key = (request.get("body") or {}).get("externalId", "")
            if key.startswith(wave):
                granted[key] = granted.get(key, 0) + 1
        elif request["path"] in counts:
            counts[request["path"]] += 1  # only the wave's stays are updated and revoked
    if len(granted) != stays or any(n != 1 for n in granted.values()):
        problems.append(f"GrantAccess: {sum(granted.values())} calls for {len(granted)} stays")
    for path, n in counts.items():
        if n != stays:
            problems.append(f"{path}: {n} calls for {stays} stays")
    held = [g for g in grants if str(g.get("externalId", "")).startswith(wave)]
    alive = [g for g in held if g.get("state") != "revoked"]
    if len(held) != stays or alive:
        problems.append(f"the sandbox holds {len(held)} wave grants, {len(alive)} not revoked")
    return problems


async def run_one(
    args: argparse.Namespace,
    server_dsn: str,
    folder: Path,
    latency_ms: float,
    postmaster: int | None,
) -> Run:
    run = Run(latency_ms=latency_ms, concurrency=args.concurrency)
    service = Service(server_dsn, folder, args.concurrency)
    async with service.running(latency_ms):
        pool = await asyncpg.create_pool(service.dsn, min_size=1, max_size=2)
        try:
            arrival = datetime.now(UTC) + timedelta(hours=1)
            bookings = [f"B-{n}" for n in range(args.stays)]
            timeout = max(120.0, args.stays / 20)
            for operation in ("grant", "update", "revoke"):
                result = await wave(
                    service, pool, operation, bookings, arrival, postmaster, timeout
                )
                run.waves.append(result)
                print(f"  {operation}: {result.rate:.0f}/s", file=sys.stderr)
            run.latencies = await steady(service, pool, args.rate, args.seconds, arrival)
            run.problems = await check_exactly_once(service, args.stays)
            run.exactly_once = not run.problems
        finally:
            await pool.close()
    return run


def report(run: Run, limits: Limits) -> None:
    print(f"\nInlet latency {run.latency_ms:g} ms, CALL_CONCURRENCY {run.concurrency}")
    print(
        f"{'wave':<8} {'stays':>6} {'seconds':>8} {'calls/s':>8} {'target':>7} {'serve ms/call':>14} {'pg ms/call':>11} {'vs commits/s':>13}"
        f" {'calling s':>10} {'calling/s':>10} {'inlet ms/call':>14} {'commits/call':>13}"
    )
    for w in run.waves:
        target = TARGETS.get(w.operation) if run.latency_ms == 0 else None
        print(
            f"{w.operation:<8} {w.stays:>6} {w.seconds:>8.2f} {w.rate:>8.0f} "
            f"{(f'{target:.0f}' if target else '-'):>7} {1000 * w.serve_cpu / w.stays:>14.2f} "
            f"{1000 * w.postgres_cpu / w.stays:>11.2f} {w.rate / limits.commits:>13.2f}"
            f" {w.calling:>10.2f} {w.calling_rate:>10.0f} {1000 * w.inlet_cpu / w.stays:>14.2f}"
            f" {w.commits / w.stays:>13.2f}"
        )
    if run.latency_ms > 0:
        bound = run.concurrency / (run.latency_ms / 1000)
        for w in run.waves:
            print(
                f"  {w.operation}: {w.rate / bound:.2f} of concurrency / latency ({bound:.0f}/s)"
                f" over the wave, {w.calling_rate / bound:.2f} while calling"
            )
        bare = limits.round_trips.get(run.latency_ms)
        for w in run.waves:
            # Little's law with the latency the calls took rather than the imitation's wait:
            # whether the service kept its slots full, apart from what each round trip cost.
            against = (
                f" (the bare round trip's {1000 * run.concurrency / bare:.1f} ms)" if bare else ""
            )
            print(
                f"  {w.operation}: slots holding a call {w.occupancy(run.concurrency):.2f} of the"
                f" wave, {w.occupancy(run.concurrency, calling=True):.2f} while calling; a call"
                f" took {1000 * w.mean_attempt:.1f} ms on average{against}"
            )
        if bare:
            # What the HTTP round trip alone allows here: a client and a waiting handler, no work.
            print(
                f"  bare aiohttp round trips at this concurrency and latency: {bare:.0f}/s"
                f" ({bare / bound:.2f} of concurrency / latency); while calling the waves reach"
                f" {min(w.calling_rate for w in run.waves) / bare:.2f}"
                f"-{max(w.calling_rate for w in run.waves) / bare:.2f} of it"
            )
    if run.latencies:
        ordered = sorted(run.latencies)
        p50 = statistics.median(ordered)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        print(
            f"202 -> GrantAccess sent: p50 {1000 * p50:.1f} ms, p99 {1000 * p99:.1f} ms ({len(ordered)} bookings)"
        )
    print(
        "every stay converged exactly once at the sandbox: "
        + ("yes" if run.exactly_once else "NO: " + "; ".join(run.problems))
    )


async def main_async(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="inlet-bench-loop-") as tmp:
        folder = Path(tmp)
        async with postgres_server(folder) as (server_dsn, postmaster):
            for key, value in machine_facts().items():
                print(f"{key + ':':<22} {value}")
            limits = await measure_limits(
                server_dsn,
                seconds=args.limit_seconds,
                latencies_ms=tuple(args.latencies),
                concurrency=args.concurrency,
            )
            print(limits.describe())
            ok = True
            for latency in args.latencies:
                print(f"running the loop at {latency:g} ms", file=sys.stderr)
                run = await run_one(args, server_dsn, folder, latency, postmaster)
                report(run, limits)
                ok = ok and run.exactly_once
            if args.keep_logs:
                args.keep_logs.mkdir(parents=True, exist_ok=True)
                for log in folder.glob("serve-*.log"):  # noqa: ASYNC240 - after the runs
                    (args.keep_logs / log.name).write_bytes(log.read_bytes())
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stays", type=int, default=5000, help="stays in a wave (5000)")
    parser.add_argument(
        "--latencies",
        type=float,
        nargs="+",
        default=[0.0, 50.0],
        help="Inlet latencies in ms (0 50)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=0, help="CALL_CONCURRENCY (0: the default)"
    )
    parser.add_argument("--rate", type=float, default=50.0, help="events/s of the latency run (50)")
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="length of the latency run (10)"
    )
    parser.add_argument("--limit-seconds", type=float, default=2.0, help="length of each limit (2)")
    parser.add_argument("--keep-logs", type=Path, default=None, help="copy the service logs here")
    args = parser.parse_args(argv)
    if args.concurrency <= 0:
        from inlet_bridge.settings import Settings

        args.concurrency = Settings.from_env({}).call_concurrency
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
