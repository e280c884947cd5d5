"""How fast does `POST /v1/events` take events, against what aiohttp alone does on this machine?

Run as `.venv/bin/python bench/ingest.py` (options: `--help`). One run measures, one after the
other and with the same load generator and settings:

- `ceiling`: a bare aiohttp handler that decodes the body into `BookingEvent` with msgspec and
  answers 202: what the HTTP layer and this load generator allow on this machine;
- `plain`: a handler that decodes the body and does one INSERT per request, in its own
  transaction (ingest without group commit);
- `ingest`: the real service (`create_app`, workers off, JSON logs at `LOG_LEVEL`, INFO unless
  set, as `inlet-bridge serve` writes them; here into a file).

Each server runs in its own process on a free loopback port; the load generator (this process)
keeps `--concurrency` connections busy with distinct valid events for `--warmup` seconds, then
counts the 202 answers completed in the next `--seconds` seconds. PostgreSQL is `DATABASE_URL`
if set, else an embedded server (pgserver) in a temporary folder; each server gets a fresh
migrated database, dropped at the end. `--analyze` analyzes the events table just before the
window (steady state rather than a fresh database); `--profile DIR` writes cProfile stats of
each server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import hashlib
import itertools
import multiprocessing
import os
import platform
import resource
import signal
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import asyncpg
import msgspec
from aiohttp import web

if TYPE_CHECKING:
    from inlet_bridge.settings import EventLoop

ROOT = Path(__file__).resolve().parent.parent
PROPERTIES = ROOT / "inlet_bridge" / "demo" / "properties.toml"
SOURCE = "demo-pms"
TOKEN = "demo-pms-token"
TARGET_RATIO = 0.6
NOISE_CORES = 0.15  # CPU used during a window by processes outside the benchmark
KINDS = ("ceiling", "plain", "ingest", "realistic")
LABELS = {
    "ceiling": "ceiling (decode only)",
    "plain": "plain insert",
    "ingest": "ingest",
    "realistic": "ingest, realistic",
}
# With realistic data (several events per booking, one guest) ingest must reach this share of
# the ceiling.
REALISTIC_TARGET = 0.5
SERVICE_KINDS = ("ingest", "realistic")

PLAIN_INSERT = """
INSERT INTO events (source, event_id, booking_id, property_id, occurred_at, body_sha256, event)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
ON CONFLICT (source, event_id) DO NOTHING
RETURNING position, received_at
"""


# ------------------------------------------------------------------ the servers (child processes)


def unlimited_properties() -> Path:
    """The demo hotel with the demo source's rate limit lifted: a benchmark is a flood."""
    path = Path(tempfile.gettempdir()) / f"inlet-bridge-bench-{os.getpid()}.toml"
    text = PROPERTIES.read_text().replace(
        "rate_limit = { per_second = 50, burst = 100 }",
        "rate_limit = { per_second = 100000, burst = 100000 }",
    )
    path.write_text(text)
    return path


def service_environ(dsn: str) -> dict[str, str]:
    """The service's settings, as tests/support.py builds them (demo hotel, bearer token)."""
    return {
        "DATABASE_URL": dsn,
        "PROPERTIES_FILE": str(unlimited_properties()),
        "DEMO_PMS_TOKEN": TOKEN,
        "DEMO_PMS_WEBHOOK_SECRET": "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHM=",
        "INLET_API_KEY_OSLO_1": "inlet-key-oslo-1",
        "ADMIN_TOKEN": "bench-admin-token",
        "MIGRATE_ON_START": "false",
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        "EVENT_LOOP": os.environ.get("EVENT_LOOP", ""),
    }


def event_loop() -> EventLoop:
    """The event loop `inlet-bridge serve` runs on here (EVENT_LOOP, else its default)."""
    from inlet_bridge.settings import Settings

    return Settings.from_env({"EVENT_LOOP": os.environ.get("EVENT_LOOP", "")}).event_loop


def new_service_loop() -> asyncio.AbstractEventLoop:
    """A new loop of the kind `inlet-bridge serve` runs on here: a benchmark's servers and
    clients run on it so that what they bound is measured on the service's loop."""
    from inlet_bridge.startup import new_event_loop

    return new_event_loop(event_loop())


def _ceiling_app() -> web.Application:
    from inlet_bridge.domain.booking import BookingEvent

    decoder = msgspec.json.Decoder(BookingEvent)

    async def post_event(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            event = decoder.decode(body)
        except msgspec.ValidationError:
            return web.Response(status=422, body=b'{"error":"invalid"}')
        answer = msgspec.json.encode({"event_id": event.event_id})
        return web.Response(status=202, body=answer, content_type="application/json")

    app = web.Application()
    app.router.add_get("/healthz", _healthz)
    app.router.add_post("/v1/events", post_event)
    return app


POOL: web.AppKey[asyncpg.Pool] = web.AppKey("pool", asyncpg.Pool)


def _plain_app(dsn: str) -> web.Application:
    from inlet_bridge.domain.booking import BookingEvent

    decoder = msgspec.json.Decoder(BookingEvent)

    async def pool_ctx(app: web.Application) -> AsyncIterator[None]:
        # the service's pool size: max(10, CALL_CONCURRENCY + 4)
        app[POOL] = await asyncpg.create_pool(dsn, min_size=2, max_size=12)
        yield
        await app[POOL].close()

    async def post_event(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            event = decoder.decode(body)
        except msgspec.ValidationError:
            return web.Response(status=422, body=b'{"error":"invalid"}')
        encoded = msgspec.json.encode(event)
        async with request.app[POOL].acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                PLAIN_INSERT,
                event.source,
                event.event_id,
                event.booking.booking_id,
                event.booking.property_id,
                event.occurred_at,
                hashlib.sha256(encoded).digest(),
                encoded.decode(),
            )
        answer = msgspec.json.encode(
            {
                "event_id": event.event_id,
                "position": row["position"] if row else None,
                "received_at": row["received_at"] if row else None,
            }
        )
        return web.Response(status=202, body=answer, content_type="application/json")

    app = web.Application()
    app.cleanup_ctx.append(pool_ctx)
    app.router.add_get("/healthz", _healthz)
    app.router.add_post("/v1/events", post_event)
    return app


def _ingest_app(dsn: str) -> web.Application:
    from inlet_bridge.app import create_app
    from inlet_bridge.logs import Masker, configure_logging
    from inlet_bridge.settings import Settings

    settings = Settings.from_env(service_environ(dsn))
    # as `inlet-bridge serve` does (stdout: a file here)
    configure_logging(settings.log_level, Masker(settings.log_mask_key))
    return create_app(settings, run_workers=False)


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _serve(kind: str, dsn: str, pipe: Connection) -> None:
    app = {"ceiling": _ceiling_app, "plain": lambda: _plain_app(dsn)}.get(
        kind, lambda: _ingest_app(dsn)
    )()
    # as web.run_app in `inlet-bridge serve`: no access log
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        pipe.send(("ready", runner.addresses[0][1]))
        await stop.wait()
    finally:
        await runner.cleanup()


def server_main(kind: str, dsn: str, pipe: Connection, log_path: str, profile: str | None) -> None:
    """A server process: answers on a free loopback port until SIGTERM."""
    with open(log_path, "w", buffering=1) as log_file:
        sys.stdout = log_file
        sys.stderr = log_file
        profiler = cProfile.Profile() if profile else None
        try:
            if profiler is not None:
                profiler.enable()
            # Every server, the ceiling's too, on the loop the service runs on: the ratio
            # compares the service's work with the bare HTTP layer's on the same loop.
            with asyncio.Runner(loop_factory=new_service_loop) as runner:
                runner.run(_serve(kind, dsn, pipe))
        except BaseException:
            with contextlib.suppress(Exception):
                pipe.send(("error", traceback.format_exc()))
            raise
        finally:
            if profiler is not None and profile:
                profiler.disable()
                profiler.dump_stats(profile)


# ------------------------------------------------------------------ CPU accounting (/proc)

_TICK = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds used) of a process, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


def _descendants_cpu(root: int) -> dict[int, float]:
    """CPU seconds of `root` and every process below it."""
    parents: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat is not None:
                parents[int(entry.name)] = stat
    found: dict[int, float] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in parents and pid not in found:
            found[pid] = parents[pid][1]
            todo.extend(p for p, (ppid, _) in parents.items() if ppid == pid)
    return found


def _run_delay(pid: int) -> float:
    """Seconds the threads of a process spent runnable but waiting for a CPU (schedstat)."""
    total = 0
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


def _machine_cpu() -> tuple[float, float, float]:
    """(busy, steal, total) jiffies of the whole machine."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    total = user + nice + system + idle + iowait + irq + softirq + steal
    return user + nice + system + irq + softirq, steal, total


@dataclass
class CpuSample:
    at: float
    server: dict[int, float]
    server_wait: float
    postgres: dict[int, float]
    generator: float
    machine: tuple[float, float, float]

    @classmethod
    def take(cls, server_pid: int, postmaster: int | None) -> CpuSample:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return cls(
            at=time.perf_counter(),
            server=_descendants_cpu(server_pid),
            server_wait=_run_delay(server_pid),
            postgres=_descendants_cpu(postmaster) if postmaster else {},
            generator=usage.ru_utime + usage.ru_stime,
            machine=_machine_cpu(),
        )


def _spent(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


@dataclass
class CpuUse:
    """Cores busy during the window, per party."""

    server: float
    server_wait: float
    postgres: float | None
    generator: float
    machine: float
    steal: float

    @property
    def others(self) -> float:
        """Cores used by everything outside the benchmark (and the kernel's own work)."""
        return self.machine - self.server - (self.postgres or 0.0) - self.generator

    @classmethod
    def between(cls, a: CpuSample, b: CpuSample, has_postgres: bool) -> CpuUse:
        wall = b.at - a.at
        cores = os.cpu_count() or 1
        busy = b.machine[0] - a.machine[0]
        steal = b.machine[1] - a.machine[1]
        total = (b.machine[2] - a.machine[2]) or 1
        return cls(
            server=_spent(a.server, b.server) / wall,
            server_wait=(b.server_wait - a.server_wait) / wall,
            postgres=_spent(a.postgres, b.postgres) / wall if has_postgres else None,
            generator=(b.generator - a.generator) / wall,
            machine=busy / total * cores,
            steal=steal / total * cores,
        )


# ------------------------------------------------------------------ the load generator


class EventBodies:
    """Distinct valid events: one template; per request a fresh event id and booking id, and
    a guest of its own (email and phone differ too, so a cache of normalized contacts in the
    service would not make validation look free)."""

    def __init__(self, tag: str) -> None:
        arrival = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
        body = {
            "event_id": "E-\x00",
            "source": SOURCE,
            "occurred_at": arrival.replace(hour=9).isoformat(),
            "booking": {
                "booking_id": "R-\x00",
                "property_id": "oslo-1",
                "stays": [
                    {
                        "stay_id": "S1",
                        "resource_id": "101",
                        "arrival": arrival.isoformat(),
                        "departure": (arrival + timedelta(days=2)).isoformat(),
                        "status": "confirmed",
                        "guests": [
                            {
                                "name": "Ola Nordmann",
                                "email": "ola.\x00@example.no",
                                "phone": "+479\x00",  # Norwegian mobile: 9 and 7 digits
                            }
                        ],
                    }
                ],
            },
        }
        self._parts = msgspec.json.encode(body).split(b"\\u0000")
        assert len(self._parts) == 5, self._parts
        self._tag = tag.encode()

    def __call__(self, n: int) -> bytes:
        key = b"%s-%d" % (self._tag, n)
        phone = b"%07d" % (n % 10_000_000)
        first, event_id, booking_id, email, phone_at = self._parts
        return b"".join((first, key, event_id, key, booking_id, b"%d" % n, email, phone, phone_at))


class RealisticBodies:
    """Events as a PMS sends them: five per booking (created, then changed: the room, the
    times, the guest's details as entered again), one guest per booking, so what a service may
    cache per booking or guest counts as it would in production."""

    EVENTS_PER_BOOKING = 5

    def __init__(self, tag: str) -> None:
        self._tag = tag
        self._arrival = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)

    def __call__(self, n: int) -> bytes:
        booking, change = divmod(n, self.EVENTS_PER_BOOKING)
        arrival = self._arrival + timedelta(hours=change % 2)
        body = {
            "event_id": f"E-{self._tag}-{n}",
            "source": SOURCE,
            "occurred_at": (self._arrival.replace(hour=9) + timedelta(minutes=change)).isoformat(),
            "booking": {
                "booking_id": f"R-{self._tag}-{booking}",
                "property_id": "oslo-1",
                "stays": [
                    {
                        "stay_id": "S1",
                        "resource_id": "101" if change < 3 else "102",
                        "arrival": arrival.isoformat(),
                        "departure": (arrival + timedelta(days=2)).isoformat(),
                        "status": "confirmed",
                        "guests": [
                            {
                                "name": "Ola Nordmann",
                                "email": f"guest.{booking}@example.no",
                                "phone": f"+479{booking % 10_000_000:07d}",
                            }
                        ],
                    }
                ],
            },
        }
        return msgspec.json.encode(body)


@dataclass
class Load:
    events: int
    seconds: float
    latencies: list[float]
    statuses: Counter[str]
    cpu: CpuUse | None = None
    group_commit: tuple[float, float] | None = None  # (events, commits) in the window
    log_lines: int | None = None
    # the events table: sequential scans, rows they read, rows inserted, autovacuum analyzed it
    table_scans: tuple[int, int, int, bool] | None = None

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _group_commit(metrics_text: str) -> tuple[float, float]:
    """(sum, count) of the inlet_bridge_group_commit_events histogram in a /metrics answer."""
    total = count = 0.0
    for line in metrics_text.splitlines():
        if line.startswith("inlet_bridge_group_commit_events_sum"):
            total = float(line.split()[-1])
        elif line.startswith("inlet_bridge_group_commit_events_count"):
            count = float(line.split()[-1])
    return total, count


@dataclass
class Plan:
    concurrency: int
    warmup: float
    seconds: float
    max_events: int | None
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])


async def generate(
    base: str,
    plan: Plan,
    kind: str,
    sample: Callable[[], CpuSample],
    has_postgres: bool,
    before_window: Callable[[], Awaitable[None]] | None = None,
) -> Load:
    """Keep `concurrency` requests in flight; count the 202s completed inside the window."""
    bodies: Callable[[int], bytes] = (
        RealisticBodies(f"{plan.tag}-{kind}")
        if kind == "realistic"
        else EventBodies(f"{plan.tag}-{kind}")
    )
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    url = f"{base}/v1/events"
    numbers = itertools.count()
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    begin = time.perf_counter()
    window_start = begin + plan.warmup
    window_end = window_start + plan.seconds
    stopped_at: list[float] = []
    capped = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=plan.concurrency, limit_per_host=plan.concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            while not stopped_at and time.perf_counter() < window_end:
                body = bodies(next(numbers))
                started = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        status = str(response.status)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    status = type(exc).__name__
                done = time.perf_counter()
                if not window_start <= done <= window_end or stopped_at:
                    continue
                statuses[status] += 1
                if status == "202":
                    latencies.append(done - started)
                    if plan.max_events and len(latencies) >= plan.max_events:
                        stopped_at.append(done)
                        capped.set()

        async def metrics() -> tuple[float, float]:
            if kind not in SERVICE_KINDS:
                return 0.0, 0.0
            # its own connection: the load's connections are all busy
            async with (
                aiohttp.ClientSession(timeout=timeout) as scraper,
                scraper.get(f"{base}/metrics") as response,
            ):
                return _group_commit(await response.text())

        async def watch() -> tuple[CpuSample, tuple[float, float], CpuSample]:
            if before_window is not None:
                await asyncio.sleep(max(0.0, window_start - 0.5 - time.perf_counter()))
                await before_window()
            await asyncio.sleep(max(0.0, window_start - time.perf_counter()))
            first, before = sample(), await metrics()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(capped.wait(), max(0.0, window_end - time.perf_counter()))
            return first, before, sample()

        watcher = asyncio.create_task(watch())
        await asyncio.gather(*(worker() for _ in range(plan.concurrency)))
        first, before, last = await watcher
        after = await metrics()  # after the drain: the in-flight tail is in both counts
    end = stopped_at[0] if stopped_at else window_end
    load = Load(
        events=len(latencies),
        seconds=end - window_start,
        latencies=latencies,
        statuses=statuses,
        cpu=CpuUse.between(first, last, has_postgres),
    )
    if kind in SERVICE_KINDS:
        load.group_commit = (after[0] - before[0], after[1] - before[1])
    return load


# ------------------------------------------------------------------ one measurement


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def _with_database(dsn: str, name: str) -> str:
    """The same server, another database (host/port and socket DSNs alike)."""
    base, sep, query = dsn.partition("?")
    head, _, _ = base.rpartition("/")
    return f"{head}/{name}{sep}{query}"


class Bench:
    def __init__(
        self, server_dsn: str, folder: Path, profile: Path | None, *, analyze: bool = False
    ) -> None:
        self.server_dsn = server_dsn
        self.analyze = analyze
        self.folder = folder
        self.profile = profile
        self.databases: list[str] = []
        self.postmaster: int | None = None
        self.facts: dict[str, str] = {}

    async def inspect_postgres(self) -> None:
        conn = await asyncpg.connect(self.server_dsn)
        try:
            for name in ("server_version", "fsync", "synchronous_commit", "wal_sync_method"):
                self.facts[name] = str(await conn.fetchval(f"SHOW {name}"))
            with contextlib.suppress(asyncpg.PostgresError, OSError, ValueError):
                data_dir = await conn.fetchval("SHOW data_directory")
                pid = int((Path(data_dir) / "postmaster.pid").read_text().split()[0])
                if _proc_stat(pid) is not None:
                    self.postmaster = pid
        finally:
            await conn.close()

    async def fresh_database(self, kind: str) -> str:
        from inlet_bridge.store.db import Database

        name = f"inlet_bench_{uuid.uuid4().hex[:10]}_{kind}"
        conn = await asyncpg.connect(self.server_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self.databases.append(name)
        dsn = _with_database(self.server_dsn, name)
        db = await Database.connect(dsn, min_size=1, max_size=1)
        try:
            await db.migrate()
        finally:
            await db.close()
        return dsn

    async def drop_databases(self) -> None:
        conn = await asyncpg.connect(self.server_dsn)
        try:
            for name in self.databases:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
        self.databases.clear()

    async def measure(self, kind: str, plan: Plan, round_no: int) -> Load:
        dsn = await self.fresh_database(kind) if kind != "ceiling" else ""
        log_path = self.folder / f"{kind}-{round_no}.log"
        profile = str(self.profile / f"{kind}-{round_no}.pstats") if self.profile else None
        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe()
        process = ctx.Process(
            target=server_main,
            args=(kind, dsn, theirs, str(log_path), profile),
            name=f"bench-{kind}",
        )
        process.start()
        try:
            port = await self._wait_ready(process, ours, log_path)
            base = f"http://127.0.0.1:{port}"
            pid = process.pid
            assert pid is not None

            def sample() -> CpuSample:
                return CpuSample.take(pid, self.postmaster)

            async def analyze() -> None:
                conn = await asyncpg.connect(dsn)
                try:
                    await conn.execute("ANALYZE events")
                finally:
                    await conn.close()

            load = await generate(
                base,
                plan,
                kind,
                sample,
                self.postmaster is not None,
                analyze if self.analyze and kind != "ceiling" else None,
            )
        finally:
            await self._stop(process)
        if kind == "ingest":
            load.log_lines = _count_lines(log_path)
            load.table_scans = await self._table_scans(dsn)
        return load

    @staticmethod
    async def _table_scans(dsn: str) -> tuple[int, int, int, bool] | None:
        """How the events table was read: its sequential scans (the server has stopped)."""
        conn = await asyncpg.connect(dsn)
        try:
            row = await conn.fetchrow(
                "SELECT seq_scan, seq_tup_read, n_tup_ins, last_autoanalyze IS NOT NULL AS analyzed"
                " FROM pg_stat_user_tables"
                " WHERE relname = 'events'"
            )
        finally:
            await conn.close()
        if row is None:
            return None
        return row["seq_scan"], row["seq_tup_read"], row["n_tup_ins"], row["analyzed"]

    @staticmethod
    async def _wait_ready(process: Any, pipe: Connection, log_path: Path) -> int:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if pipe.poll():
                message, value = pipe.recv()
                if message == "ready":
                    return int(value)
                raise RuntimeError(f"server failed to start:\n{value}")
            if not process.is_alive():
                raise RuntimeError(f"server exited ({process.exitcode}); see {log_path}")
            await asyncio.sleep(0.05)
        raise RuntimeError("server did not start within 120 s")

    @staticmethod
    async def _stop(process: Any) -> None:
        if process.is_alive():
            process.terminate()  # SIGTERM: the server closes its runner (commits what is queued)
        await asyncio.to_thread(process.join, 30)
        if process.is_alive():
            process.kill()
        process.join(5)


# ------------------------------------------------------------------ reporting


def machine_facts() -> dict[str, str]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    return {
        "cpus": str(os.cpu_count()),
        "cpu model": model,
        "memory": memory,
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "asyncpg": asyncpg.__version__,
        "event loop (serve)": event_loop(),
        "load average": " ".join(f"{v:.2f}" for v in os.getloadavg()),
    }


def _row(kind: str, load: Load) -> str:
    failures = sum(n for s, n in load.statuses.items() if s != "202")
    line = (
        f"{LABELS[kind]:<22}{load.rate:>9.0f}{load.percentile(50) * 1000:>8.1f}"
        f"{load.percentile(99) * 1000:>8.1f}{load.events:>8d}{failures:>6d}"
    )
    cpu = load.cpu
    if cpu is None:
        return line
    per_event = cpu.server / load.rate * 1e6 if load.rate else float("nan")
    pg = f"{cpu.postgres:>6.2f}" if cpu.postgres is not None else f"{'-':>6}"
    return (
        f"{line}{per_event:>8.0f}  |{cpu.server:>7.2f}{cpu.server_wait:>6.2f}{pg}"
        f"{cpu.generator:>6.2f}{cpu.machine:>8.2f}{cpu.steal:>6.2f}"
    )


HEADER = (
    f"{'':<22}{'events/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'202s':>8}{'other':>6}{'srv us':>8}"
    f"  |{'server':>7}{'runq':>6}{'pg':>6}{'load':>6}{'machine':>8}{'steal':>6}"
)
LEGEND = (
    "srv us: server CPU per event (microseconds); right of |: cores used during the window by\n"
    "the server process, its time waiting for a CPU (runq), PostgreSQL, this load generator,\n"
    "the whole machine (anything else running included), and time stolen by the hypervisor"
)


def _ratio(results: dict[str, Load], kind: str) -> float | None:
    ceiling = results.get("ceiling")
    if kind not in results or ceiling is None or not ceiling.rate:
        return None
    return results[kind].rate / ceiling.rate


def _cpu_ratio(results: dict[str, Load]) -> float | None:
    ceiling, ingest = results.get("ceiling"), results.get("ingest")
    if not (ceiling and ingest and ceiling.cpu and ingest.cpu and ceiling.rate and ingest.rate):
        return None
    return (ceiling.cpu.server / ceiling.rate) / (ingest.cpu.server / ingest.rate)


def report(results: dict[str, Load], round_no: int) -> None:
    print(f"\nround {round_no}")
    print(HEADER)
    for kind in KINDS:
        if kind in results:
            print(_row(kind, results[kind]))
    for kind, load in results.items():
        other = {s: n for s, n in load.statuses.items() if s != "202"}
        if other:
            print(f"  {kind}: answers other than 202: {other}")
    plain = _ratio(results, "plain")
    if plain is not None:
        print(f"plain / ceiling:  {plain:.2f}")
    ratio = _ratio(results, "ingest")
    if ratio is not None:
        verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
        print(f"ingest / ceiling: {ratio:.2f} (target {TARGET_RATIO:.2f}: {verdict})")
    realistic = _ratio(results, "realistic")
    if realistic is not None:
        verdict = "met" if realistic >= REALISTIC_TARGET else "NOT met"
        print(
            f"ingest, realistic / ceiling: {realistic:.2f}"
            f" (target {REALISTIC_TARGET:.2f}: {verdict})"
        )
    cost = _cpu_ratio(results)
    if cost is not None:
        print(f"server CPU per event, ceiling / ingest: {cost:.2f} (insensitive to CPU share)")
    noisy = [
        f"{load.cpu.others:.2f} ({kind})"
        for kind, load in results.items()
        if load.cpu is not None and load.cpu.others > NOISE_CORES
    ]
    if noisy:
        print(
            f"note: other processes used {', '.join(noisy)} cores during the windows;"
            " compare runs by server CPU per event rather than events/s"
        )
    ingest = results.get("ingest")
    if ingest is not None:
        _report_ingest(ingest)


def _report_ingest(ingest: Load) -> None:
    """What the ingest run says about its own work: group commits, scans, log lines."""
    if ingest.group_commit and ingest.group_commit[1]:
        events, commits = ingest.group_commit
        print(f"events per group commit: {events / commits:.1f} ({commits:.0f} commits)")
    if ingest.table_scans is not None:
        scans, rows, inserted, analyzed = ingest.table_scans
        print(
            f"events table: {inserted} rows inserted, {scans} sequential scans reading {rows} rows"
            f" (autovacuum analyzed it: {'yes' if analyzed else 'no'})"
        )
    if ingest.log_lines is not None:
        print(f"service log lines written: {ingest.log_lines}")


def summary(rounds: list[dict[str, Load]]) -> None:
    if len(rounds) < 2:
        return
    print(f"\nmedian of {len(rounds)} rounds")
    for kind in KINDS:
        rates = [r[kind].rate for r in rounds if kind in r]
        if rates:
            listed = ", ".join(f"{x:.0f}" for x in rates)
            print(f"  {LABELS[kind]:<22}{statistics.median(rates):>9.0f} events/s  ({listed})")
    for kind in ("plain", "ingest", "realistic"):
        ratios = [x for r in rounds if (x := _ratio(r, kind)) is not None]
        if ratios:
            listed = ", ".join(f"{x:.2f}" for x in ratios)
            print(f"  {kind} / ceiling: {statistics.median(ratios):.2f}  ({listed})")


async def run(args: argparse.Namespace, bench: Bench) -> list[dict[str, Load]]:
    await bench.inspect_postgres()
    facts = machine_facts() | {f"postgres {k}": v for k, v in bench.facts.items()}
    for key, value in facts.items():
        print(f"{key + ':':<30} {value}")
    print(
        f"load: {args.concurrency} connections, warm-up {args.warmup:g} s, "
        f"window {args.seconds:g} s"
        + (f", at most {args.events} events" if args.events else "")
        + (", events table analyzed before the window" if args.analyze else "")
    )
    kinds = [
        k
        for k in KINDS
        if not (k == "plain" and args.no_plain) and not (k == "realistic" and not args.realistic)
    ]
    rounds = []
    try:
        for round_no in range(1, args.rounds + 1):
            results: dict[str, Load] = {}
            # alternate the order, so a drift in the machine's load does not favour one kind
            for kind in kinds if round_no % 2 else reversed(kinds):
                plan = Plan(args.concurrency, args.warmup, args.seconds, args.events)
                results[kind] = await bench.measure(kind, plan, round_no)
                print(f"measured {kind}: {results[kind].rate:.0f} events/s", file=sys.stderr)
            report(results, round_no)
            rounds.append(results)
        summary(rounds)
        print("\n" + LEGEND)
    finally:
        try:
            await bench.drop_databases()
        except (OSError, asyncpg.PostgresError) as exc:
            print(f"could not drop the benchmark databases: {exc!r}", file=sys.stderr)
    return rounds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window (10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up before it (2)")
    parser.add_argument("--concurrency", type=int, default=64, help="connections (64)")
    parser.add_argument(
        "--events",
        type=int,
        default=None,
        help="end a measurement early once this many events were answered 202 in the window",
    )
    parser.add_argument("--rounds", type=int, default=1, help="repeat all measurements (1)")
    parser.add_argument("--no-plain", action="store_true", help="skip the plain-insert baseline")
    parser.add_argument(
        "--realistic",
        action="store_true",
        help="also measure ingest with realistic data: 5 events per booking, one guest each",
    )
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="ANALYZE the events table 0.5 s before the window, as autovacuum would in a"
        " database older than a minute (steady state instead of a fresh database)",
    )
    parser.add_argument(
        "--profile", type=Path, default=None, help="write each server's cProfile stats here"
    )
    args = parser.parse_args(argv)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="inlet-bench-") as tmp:
        folder = Path(tmp)
        embedded = None
        dsn = os.environ.get("DATABASE_URL")
        if not dsn:
            from inlet_bridge.store.db import EmbeddedPostgres

            embedded = EmbeddedPostgres(folder / "postgres")
            dsn = embedded.start()
        try:
            asyncio.run(run(args, Bench(dsn, folder, args.profile, analyze=args.analyze)))
        finally:
            if embedded is not None:
                embedded.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
