"""Do the service's costs stay flat as bookings and history grow? Sweeps, fresh work during a
sweep, reconciles over a long history, database size and memory.

Run as `.venv/bin/python bench/growth.py` (options: `--help`; `--short` for a quick run). For each
size in `--sizes` (10,000 and 100,000 active bookings):

- loads that many bookings fast: their events in one INSERT ... SELECT, then planned by the real
  reconciler, then their GrantAccess calls recorded as answered in two statements (so every
  booking holds an active grant, converged, as after a day of real traffic);
- a whole sweep in this process (`Reconciler.sweep()`, the service's workers and batches):
  seconds per booking, and the operations it found (0: nothing else had been missed);
- the sweep inside `inlet-bridge serve` (against the sandbox; every booking marked for the sweep
  at once, the worst case for fresh work) while new bookings are posted at
  `--rate` events/s: the time from each 202 to its GrantAccess leaving (p50, p99), the sweep's
  seconds per booking there, and the service's peak RSS;
- the database size per booking.

Then, on the largest size, the reconcile time per booking (1,000 bookings marked and planned,
median of 7) as other bookings' call history grows from 2,000 to 500,000 attempts
(`--history-levels`).
Limits measured in the same run: durable commits/s and SKIP LOCKED claims/s (bench/limits.py).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg

from bench.limits import measure_limits
from bench.loop import TOKEN, Service, event_body
from bench.support import fresh_database, machine_facts, postgres_server, rss_mib
from inlet_bridge.metrics import Metrics
from inlet_bridge.settings import Settings
from inlet_bridge.store.db import Database
from inlet_bridge.store.reconcile import ReconcileStore
from inlet_bridge.workers.reconciler import SWEEP_CHUNK, Reconciler

SOURCE = "demo-pms"
SWEEP_TARGET_MS = 0.2
P99_TARGET_S = 1.0
RSS_TARGET_MIB = 200.0

LOAD_EVENTS = """
INSERT INTO events (source, event_id, booking_id, property_id, occurred_at, body_sha256, event,
                    received_at)
SELECT 'demo-pms', 'G-' || n, 'G-' || n, 'oslo-1', $1::timestamptz, sha256(('G-' || n)::bytea),
       jsonb_build_object(
           'event_id', 'G-' || n, 'source', 'demo-pms', 'occurred_at', $6::text,
           'booking', jsonb_build_object(
               'booking_id', 'G-' || n, 'property_id', 'oslo-1',
               'stays', jsonb_build_array(jsonb_build_object(
                   'stay_id', 'S1', 'resource_id', '101', 'status', 'confirmed',
                   'arrival', $2::text, 'departure', $3::text,
                   'guests', jsonb_build_array(jsonb_build_object(
                       'name', 'Ola Nordmann', 'email', 'g' || n || '@example.no')))))),
       $1::timestamptz
FROM generate_series($4::int, $5::int - 1) AS n
"""
LOAD_BOOKINGS = """
INSERT INTO bookings (source, booking_id, property_id, marked_at)
SELECT 'demo-pms', 'G-' || n, 'oslo-1', $1 FROM generate_series($2::int, $3::int - 1) AS n
"""
ANSWER_CALLS = """
WITH answered AS (
    UPDATE inlet_calls SET state = 'succeeded', attempts = 1, first_attempt_at = $1,
           finished_at = $1, last_outcome = 'success', last_http_status = 200
    WHERE state = 'pending' AND booking_id LIKE 'G-%'
    RETURNING id, grant_key, source, booking_id, property_id, request, fingerprint
), attempts AS (
    INSERT INTO call_attempts (call_id, attempt, started_at, finished_at, outcome, http_status)
    SELECT id, 1, $1, $1, 'success', 200 FROM answered
)
INSERT INTO grants (grant_key, source, booking_id, stay_id, property_id, state, reference_id, code,
                    access_points, valid_from, valid_to, fingerprint, created_at, updated_at,
                    resource_id, applied, generation, external_id)
SELECT grant_key, source, booking_id, 'S1', property_id, 'active', 'ref-' || id, '1234',
       ARRAY(SELECT jsonb_array_elements_text(request -> 'access_points')),
       (request ->> 'valid_from')::timestamptz, (request ->> 'valid_to')::timestamptz,
       fingerprint, $1, $1, '101', request, 1, grant_key
FROM answered
"""
HISTORY = """
WITH calls AS (
    INSERT INTO inlet_calls (grant_key, source, booking_id, property_id, operation, request,
                             state, priority, attempts, next_attempt_at, created_at, finished_at,
                             last_outcome, last_http_status)
    SELECT 'old:H-' || n || ':S1', 'old', 'H-' || n, 'oslo-1', 'grant', '{}', 'failed', 2, 10,
           $1, $1, $1, 'temporary', 503
    FROM generate_series($2::int, $3::int - 1) AS n
    RETURNING id
)
INSERT INTO call_attempts (call_id, attempt, started_at, finished_at, outcome, http_status)
SELECT id, a, $1, $1, 'temporary', 503 FROM calls, generate_series(1, 10) AS a
"""


@dataclass
class Size:
    bookings: int
    load_seconds: float = 0.0
    sweep_seconds: float = 0.0
    sweep_found: int = 0
    served_sweep_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    rss_mib: float = 0.0
    db_bytes: int = 0


def reconciler(db: Database, settings: Settings, owner: str) -> Reconciler:
    return Reconciler(
        store=ReconcileStore(db),
        hotels=settings.require_hotels(),
        metrics=Metrics(),
        clock=_Clock(),
        owner=owner,
        batch=settings.reconcile_batch,
        lease_seconds=settings.reconcile_lease_seconds,
        concurrency=settings.reconcile_concurrency,
    )


class _Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


async def load(db: Database, settings: Settings, start: int, end: int) -> None:
    """Bookings G-start..G-end-1, each with an active grant, converged."""
    now = datetime.now(UTC)
    arrival = now + timedelta(hours=1)
    for first in range(start, end, 20_000):
        last = min(end, first + 20_000)
        await db.pool.execute(
            LOAD_EVENTS,
            now,
            arrival.isoformat(),
            (arrival + timedelta(days=2)).isoformat(),
            first,
            last,
            now.isoformat(),
        )
        await db.pool.execute(LOAD_BOOKINGS, now, first, last)
    await reconciler(db, settings, "loader").run_once()
    await db.pool.execute(ANSWER_CALLS, now)
    await db.pool.execute("ANALYZE")


async def served_sweep(
    server_dsn: str, dsn: str, folder: Path, size: Size, rate: float, postmaster: int | None
) -> None:
    """The sweep in the real service while fresh bookings arrive."""
    service = Service(server_dsn, folder, Settings.from_env({}).call_concurrency)
    conn = await asyncpg.connect(dsn)
    try:
        started = await conn.fetchval("SELECT now()")
    finally:
        await conn.close()
    # The service's own sweep marks one chunk at start and the next an hour later; the bench
    # marks every booking at once (the worst case for fresh work: the whole table waiting).
    async with service.running(0.0, dsn=dsn, SWEEP_INTERVAL_SECONDS="3600000") as running:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        try:
            await start_up_chunk_planned(pool, started, min(SWEEP_CHUNK, size.bookings))
            t0 = time.perf_counter()
            await pool.execute("UPDATE bookings SET swept_at = now() WHERE booking_id LIKE 'G-%'")
            answered: dict[str, float] = {}
            headers = {"Authorization": f"Bearer {TOKEN}"}
            arrival = datetime.now(UTC) + timedelta(hours=1)
            sweeping = True
            peak = 0.0

            async def watch() -> None:
                nonlocal sweeping, peak
                while sweeping:
                    peak = max(peak, rss_mib(running.serve_pid))
                    waiting = await pool.fetchval(
                        "SELECT count(*) FROM bookings WHERE swept_at IS NOT NULL"
                    )
                    if waiting == 0:
                        sweeping = False
                    await asyncio.sleep(0.1)

            watcher = asyncio.create_task(watch())
            async with aiohttp.ClientSession() as http:

                async def one(booking: str) -> None:
                    body = event_body(booking, arrival)
                    async with http.post(
                        f"{running.base}/v1/events", json=body, headers=headers
                    ) as r:
                        await r.read()
                        if r.status == 202:
                            answered[booking] = time.time()

                tasks = []
                n = 0
                start = time.perf_counter()
                while sweeping:
                    await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
                    tasks.append(asyncio.create_task(one(f"F-{size.bookings}-{n}")))
                    n += 1
                await asyncio.gather(*tasks)
            await watcher
            size.served_sweep_seconds = time.perf_counter() - t0
            size.rss_mib = peak
            deadline = time.perf_counter() + 60
            rows: list[asyncpg.Record] = []
            while time.perf_counter() < deadline:
                rows = await pool.fetch(
                    "SELECT c.booking_id, min(a.started_at) AS sent FROM inlet_calls c"
                    " JOIN call_attempts a ON a.call_id = c.id"
                    " WHERE c.booking_id LIKE 'F-%' AND c.operation = 'grant' GROUP BY c.booking_id"
                )
                if len(rows) >= len(answered):
                    break
                await asyncio.sleep(0.2)
            size.latencies = [
                r["sent"].timestamp() - answered[r["booking_id"]]
                for r in rows
                if r["booking_id"] in answered
            ]
        finally:
            await pool.close()


async def start_up_chunk_planned(pool: asyncpg.Pool, since: datetime, chunk: int) -> None:
    """Wait until the chunk the service's sweep marks as it starts is planned: marked again by
    the benchmark before that, those bookings would be planned twice within the timed sweep."""
    deadline = time.perf_counter() + 120
    while time.perf_counter() < deadline:
        row = await pool.fetchrow(
            "SELECT count(*) FILTER (WHERE reconciled_at >= $1) AS planned,"
            " count(*) FILTER (WHERE swept_at IS NOT NULL) AS waiting FROM bookings",
            since,
        )
        assert row is not None
        if row["planned"] >= chunk and row["waiting"] == 0:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("the service's start-up sweep chunk was not planned within 120 s")


async def history_growth(
    db: Database, settings: Settings, levels: list[int]
) -> list[tuple[int, float]]:
    """Reconcile seconds per booking (1,000 marked bookings) as other bookings' history grows."""
    results = []
    inserted_calls = 0
    await _plan_marked(db, settings)  # untimed: the first plans after a load warm the caches
    for level in levels:
        calls = level // 10
        if calls > inserted_calls:
            await db.pool.execute(HISTORY, datetime.now(UTC), inserted_calls, calls)
            inserted_calls = calls
            await db.pool.execute("ANALYZE inlet_calls")
            await db.pool.execute("ANALYZE call_attempts")
        # a plan of 1,000 bookings takes a fraction of a second: the median of 7
        timings = [await _plan_marked(db, settings) for _ in range(7)]
        results.append((level, statistics.median(timings)))
    return results


async def _plan_marked(db: Database, settings: Settings) -> float:
    """Mark 1,000 loaded bookings and plan them; seconds per booking."""
    await db.pool.execute(
        "UPDATE bookings SET marked_seq = marked_seq + 1 WHERE booking_id IN"
        " (SELECT booking_id FROM bookings WHERE booking_id LIKE 'G-%' LIMIT 1000)"
    )
    t0 = time.perf_counter()
    count = await reconciler(db, settings, "history").run_once()
    return (time.perf_counter() - t0) / max(1, count)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return (
        ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]
        if ordered
        else float("nan")
    )


async def main_async(args: argparse.Namespace) -> int:
    from bench.loop import properties_for

    with tempfile.TemporaryDirectory(prefix="inlet-bench-growth-") as tmp:
        folder = Path(tmp)
        async with postgres_server(folder) as (server_dsn, postmaster):
            for key, value in machine_facts().items():
                print(f"{key + ':':<22} {value}")
            limits = await measure_limits(server_dsn, seconds=2.0)
            print(limits.describe())
            dsn, drop = await fresh_database(server_dsn, "inlet_bench_growth")
            settings = Settings.from_env(
                {
                    "PROPERTIES_FILE": str(properties_for(1, folder)),
                    "INLET_API_KEY_OSLO_1": "inlet-key-oslo-1",
                    "DEMO_PMS_TOKEN": TOKEN,
                    "DEMO_PMS_WEBHOOK_SECRET": "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHM=",
                }
            )
            db = await Database.connect(
                dsn, min_size=2, max_size=settings.reconcile_concurrency + 2
            )
            sizes: list[Size] = []
            try:
                loaded = 0
                for bookings in args.sizes:
                    size = Size(bookings=bookings)
                    t0 = time.perf_counter()
                    await load(db, settings, loaded, bookings)
                    loaded = bookings
                    size.load_seconds = time.perf_counter() - t0
                    print(
                        f"loaded {bookings} bookings in {size.load_seconds:.1f} s", file=sys.stderr
                    )
                    t0 = time.perf_counter()
                    size.sweep_found = await reconciler(db, settings, "sweeper").sweep()
                    size.sweep_seconds = time.perf_counter() - t0
                    await served_sweep(server_dsn, dsn, folder, size, args.rate, postmaster)
                    size.db_bytes = await db.pool.fetchval(
                        "SELECT pg_database_size(current_database())"
                    )
                    sizes.append(size)
                    report_size(size, limits.claims)
                history = await history_growth(db, settings, args.history_levels)
                report_history(history)
            finally:
                await db.close()
                await drop()
    return 0


def report_size(size: Size, claims: float) -> None:
    per = size.sweep_seconds / size.bookings
    served = size.served_sweep_seconds / size.bookings
    print(f"\n{size.bookings} active bookings (loaded in {size.load_seconds:.1f} s)")
    print(
        f"  sweep in this process: {size.sweep_seconds:.1f} s, {1000 * per:.3f} ms per booking"
        f" (target {SWEEP_TARGET_MS} ms: {'met' if 1000 * per <= SWEEP_TARGET_MS else 'NOT met'});"
        f" {per * claims:.2f} x the time of one SKIP LOCKED claim; operations found: {size.sweep_found}"
    )
    print(
        f"  sweep in the service: {size.served_sweep_seconds:.1f} s, {1000 * served:.3f} ms per booking"
    )
    if size.latencies:
        p50, p99 = percentile(size.latencies, 50), percentile(size.latencies, 99)
        print(
            f"  202 -> GrantAccess sent during the sweep: p50 {1000 * p50:.0f} ms, p99 {1000 * p99:.0f} ms"
            f" ({len(size.latencies)} bookings; target p99 {P99_TARGET_S:g} s:"
            f" {'met' if p99 <= P99_TARGET_S else 'NOT met'})"
        )
    print(
        f"  service RSS at peak: {size.rss_mib:.0f} MiB (target {RSS_TARGET_MIB:.0f}:"
        f" {'met' if size.rss_mib <= RSS_TARGET_MIB else 'NOT met'})"
    )
    print(
        f"  database: {size.db_bytes / 2**20:.0f} MiB, {size.db_bytes / size.bookings / 1024:.2f} KiB per booking"
    )


def report_history(history: list[tuple[int, float]]) -> None:
    print("\nreconcile time per booking as other bookings' call history grows")
    base = history[0][1]
    for attempts, seconds in history:
        print(
            f"  {attempts:>8} attempts: {1000 * seconds:.3f} ms ({seconds / base:.2f} x the first)"
        )
    growth = history[-1][1] / base
    spread = max(s for _, s in history) / min(s for _, s in history)
    verdict = "met" if growth <= 1.2 and spread <= 1.2 else "NOT met"
    print(f"  largest history / smallest: {growth:.2f}; largest / smallest time: {spread:.2f}")
    print(f"  (target: flat within 1.20: {verdict})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[10_000, 100_000], help="active bookings"
    )
    parser.add_argument(
        "--history-levels",
        type=int,
        nargs="+",
        default=[2_000, 50_000, 500_000],
        help="attempts in history",
    )
    parser.add_argument(
        "--rate", type=float, default=50.0, help="fresh events/s during the sweep (50)"
    )
    parser.add_argument("--short", action="store_true", help="2,000 bookings, history up to 50,000")
    args = parser.parse_args(argv)
    if args.short:
        args.sizes, args.history_levels = [2_000], [2_000, 50_000]
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
