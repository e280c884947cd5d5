"""Does `/healthz` keep answering while the service validates the largest batches?

Run as `.venv/bin/python bench/healthz.py` (options: `--help`). The real service (`create_app`,
workers off, JSON logs into a file) runs in a child process on a free loopback port, on a fresh
migrated database (`DATABASE_URL`, else an embedded PostgreSQL in a temporary folder). This
process posts `--rounds` rounds of four concurrent maximum batches (500 events, about 860 KiB,
about 9,500 distinct contacts each: as large as `MAX_BODY_BYTES` allows) while it asks
`/healthz` every 5 ms on a connection of its own, and prints the probes' latency (p50, p99,
max) during the batches, and the batches' own time.

It measures twice, in the same process, one after the other: `inline`, the batches validated
on the event loop (as before; `OFF_LOOP_BYTES` set out of reach), and `off-loop`, as the
service runs (bodies over 64 KiB validated on a worker thread). The target: p99 under 100 ms
off-loop (Kubernetes' probes time out at 3 s; a stalled loop also stalls every other request).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import msgspec
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import TOKEN, service_environ

TARGET_P99_MS = 100.0
BATCH_EVENTS = 500
GUESTS_PER_EVENT = 19  # 500 x 19 = 9,500 distinct contacts in a batch
PROBE_EVERY = 0.005
MODES = ("inline", "off-loop")


def batch(round_no: int, worker: int) -> bytes:
    """A maximum batch: distinct events and contacts, every one of them valid."""
    arrival = datetime(2026, 12, 1, 15, tzinfo=UTC)
    tag = f"{round_no}-{worker}-{uuid.uuid4().hex[:6]}"
    events = []
    for i in range(BATCH_EVENTS):
        guests = [
            {
                "name": f"Guest {i} {g}",
                "email": f"guest.{tag}.{i}.{g}@example.no",
                "phone": f"+47{40000000 + (i * GUESTS_PER_EVENT + g) % 59999999:08d}",
            }
            for g in range(GUESTS_PER_EVENT)
        ]
        events.append(
            {
                "event_id": f"evt-{tag}-{i}",
                "source": "demo-pms",
                "occurred_at": "2026-11-22T10:00:00Z",
                "booking": {
                    "booking_id": f"B-{tag}-{i}",
                    "property_id": "oslo-1",
                    "stays": [
                        {
                            "stay_id": "S1",
                            "resource_id": "101",
                            "arrival": arrival.isoformat(),
                            "departure": (arrival + timedelta(days=2)).isoformat(),
                            "guests": guests,
                        }
                    ],
                },
            }
        )
    return msgspec.json.encode({"events": events})


# ------------------------------------------------------------------ the service (a child process)


async def _serve(dsn: str, mode: str, pipe: Connection) -> None:
    from inlet_bridge.api import ingest
    from inlet_bridge.app import create_app
    from inlet_bridge.logs import Masker, configure_logging
    from inlet_bridge.settings import Settings

    if mode == "inline":
        ingest.OFF_LOOP_BYTES = 1 << 40  # the baseline: every body validated on the loop
    if os.environ.get("BENCH_SLOW_CALLBACKS"):  # name what holds the loop longer than 20 ms
        loop = asyncio.get_running_loop()
        loop.set_debug(True)
        loop.slow_callback_duration = 0.02
    settings = Settings.from_env(service_environ(dsn))
    configure_logging(settings.log_level, Masker(settings.log_mask_key))
    runner = web.AppRunner(create_app(settings, run_workers=False), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    pipe.send(runner.addresses[0][1])
    stop = asyncio.Event()
    asyncio.get_running_loop().add_reader(pipe.fileno(), stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def server_main(dsn: str, mode: str, pipe: Connection, log_path: str) -> None:
    with open(log_path, "w", buffering=1) as log_file:
        sys.stdout = log_file
        sys.stderr = log_file
        asyncio.run(_serve(dsn, mode, pipe))


# ------------------------------------------------------------------ the load and the probes


@dataclass
class Result:
    mode: str
    probes: list[float] = field(default_factory=list)  # seconds, during the batches
    batches: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def ms(self, q: float) -> float:
        ordered = sorted(self.probes)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(url: str, mode: str, rounds: int) -> Result:
    result = Result(mode)
    bodies = [[batch(r, w) for w in range(4)] for r in range(rounds)]
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as posts,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as probes,
    ):
        async with probes.get(f"{url}/healthz") as warm:
            await warm.read()
        for round_bodies in bodies:
            done = asyncio.Event()

            async def probe(done: asyncio.Event = done) -> None:
                while not done.is_set():
                    started = time.perf_counter()
                    async with probes.get(f"{url}/healthz") as response:
                        await response.read()
                    result.probes.append(time.perf_counter() - started)
                    await asyncio.sleep(PROBE_EVERY)

            async def post(body: bytes) -> None:
                started = time.perf_counter()
                async with posts.post(f"{url}/v1/events:batch", data=body, headers=headers) as r:
                    await r.read()
                    result.statuses.append(r.status)
                result.batches.append(time.perf_counter() - started)

            prober = asyncio.create_task(probe())
            await asyncio.gather(*(post(b) for b in round_bodies))
            done.set()
            await prober
    return result


async def fresh_database(server_dsn: str) -> str:
    name = f"bench_healthz_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    base, sep, query = server_dsn.partition("?")
    dsn = f"{base.rpartition('/')[0]}/{name}{sep}{query}"
    from inlet_bridge.store.db import Database

    db = await Database.connect(dsn, min_size=1, max_size=1)
    try:
        await db.migrate()
    finally:
        await db.close()
    return dsn


def run_mode(server_dsn: str, mode: str, rounds: int, folder: Path) -> Result:
    dsn = asyncio.run(fresh_database(server_dsn))
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=server_main, args=(dsn, mode, child, str(folder / f"{mode}.log"))
    )
    process.start()
    try:
        if not parent.poll(60):
            raise RuntimeError(f"the service did not start; see {folder / f'{mode}.log'}")
        port = parent.recv()
        return asyncio.run(measure(f"http://127.0.0.1:{port}", mode, rounds))
    finally:
        parent.send("stop")
        process.join(30)
        if process.is_alive():
            process.kill()


def report(results: dict[str, Result], body_kib: float) -> bool:
    print(
        f"\n/healthz while 4 batches of {BATCH_EVENTS} events ({body_kib:.0f} KiB,"
        f" {BATCH_EVENTS * GUESTS_PER_EVENT} contacts each) are posted at once"
    )
    print(
        f"{'mode':10} {'probes':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'batch s (mean)':>15}"
    )
    for mode, r in results.items():
        print(
            f"{mode:10} {len(r.probes):7} {r.ms(0.5):8.1f} {r.ms(0.99):8.1f}"
            f" {1000 * max(r.probes):8.1f} {statistics.mean(r.batches):15.2f}"
        )
    inline, off = results["inline"], results["off-loop"]
    print(f"p99 off-loop / inline: {off.ms(0.99) / inline.ms(0.99):.3f}")
    statuses = {s for r in results.values() for s in r.statuses}
    ok = off.ms(0.99) < TARGET_P99_MS and statuses == {202}
    verdict = "met" if ok else "NOT met"
    print(f"target p99 < {TARGET_P99_MS:.0f} ms off-loop, every batch 202 ({statuses}): {verdict}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of four concurrent batches")
    args = parser.parse_args(argv)
    body_kib = len(batch(0, 0)) / 1024
    with tempfile.TemporaryDirectory(prefix="bench-healthz-") as tmp:
        folder = Path(tmp)
        embedded: Any = None
        server_dsn = os.environ.get("DATABASE_URL")
        if not server_dsn:
            from inlet_bridge.store.db import EmbeddedPostgres

            embedded = EmbeddedPostgres(folder / "pg")
            server_dsn = embedded.start()
        try:
            results = {m: run_mode(server_dsn, m, args.rounds, folder) for m in MODES}
        finally:
            if embedded is not None:
                with contextlib.suppress(Exception):
                    embedded.stop()
    return 0 if report(results, body_kib) else 1


if __name__ == "__main__":
    sys.exit(main())
