"""What does this machine allow, measured in the same run? The limits a benchmark's figures are
divided by: durable commits/s, SKIP LOCKED claims/s, the bare aiohttp request rate, and (for an
Inlet that answers after a delay) the calls/s of bare aiohttp requests at that delay."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import asyncpg
from aiohttp import web

from bench.support import fresh_database, new_service_loop


@dataclass
class Limits:
    commits: float  # one connection, one-row INSERT + COMMIT, fsync on
    claims: float  # four connections, one row leased per statement (FOR UPDATE SKIP LOCKED)
    http: float  # a handler that answers at once, 64 connections
    # latency in ms -> requests/s of a client keeping `concurrency` requests in flight (on the
    # service's event loop) to a handler that waits that long (on the Inlet sandbox's loop)
    round_trips: dict[float, float] = field(default_factory=dict)
    concurrency: int = 0

    def describe(self) -> str:
        text = (
            f"limits on this machine now: {self.commits:.0f} durable commits/s,"
            f" {self.claims:.0f} SKIP LOCKED claims/s, {self.http:.0f} bare aiohttp requests/s"
        )
        for latency, rate in sorted(self.round_trips.items()):
            text += (
                f"\n  bare aiohttp, {self.concurrency} requests in flight to a handler that waits"
                f" {latency:g} ms: {rate:.0f}/s ({rate / _bound(self.concurrency, latency):.2f}"
                " of concurrency / latency)"
            )
        return text


def _bound(concurrency: int, latency_ms: float) -> float:
    return concurrency / (latency_ms / 1000)


async def _commits(dsn: str, seconds: float) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE bench_commits (id bigserial PRIMARY KEY, at float8)")
        n, end = 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            await conn.execute("INSERT INTO bench_commits (at) VALUES ($1)", time.time())
            n += 1
        return n / seconds
    finally:
        await conn.close()


async def _claims(dsn: str, seconds: float) -> float:
    setup = await asyncpg.connect(dsn)
    try:
        await setup.execute(
            "CREATE TABLE bench_queue (id bigserial PRIMARY KEY, due float8 NOT NULL,"
            " owner text, until float8)"
        )
        await setup.execute("CREATE INDEX ON bench_queue (due) WHERE owner IS NULL")
        await setup.execute(
            "INSERT INTO bench_queue (due) SELECT g FROM generate_series(1, 200000) AS g"
        )
        await setup.execute("ANALYZE bench_queue")
    finally:
        await setup.close()
    claim = (
        "WITH picked AS (SELECT id FROM bench_queue WHERE owner IS NULL ORDER BY due LIMIT 1"
        " FOR UPDATE SKIP LOCKED) UPDATE bench_queue q SET owner = $1, until = $2"
        " FROM picked WHERE q.id = picked.id RETURNING q.id"
    )
    end = time.perf_counter() + seconds

    async def worker(name: str) -> int:
        conn = await asyncpg.connect(dsn)
        n = 0
        try:
            while time.perf_counter() < end:
                await conn.fetchval(claim, name, time.time() + 30)
                n += 1
        finally:
            await conn.close()
        return n

    counts = await asyncio.gather(*(worker(f"w{i}") for i in range(4)))
    return sum(counts) / seconds


def _bare_server(port_out: multiprocessing.Queue, latency: float = 0.0) -> None:  # type: ignore[type-arg]
    """A handler that answers at once, or after `latency` seconds (reading the body first, as
    the sandbox does), on the standard loop."""

    async def answer(request: web.Request) -> web.Response:
        if latency > 0:
            await request.read()
            await asyncio.sleep(latency)
        return web.Response(status=202, body=b'{"ok":true}', content_type="application/json")

    async def serve() -> None:
        app = web.Application()
        app.router.add_post("/", answer)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port_out.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(serve())


@contextlib.asynccontextmanager
async def _bare_server_running(latency: float = 0.0) -> AsyncIterator[str]:
    """The bare server in a process of its own; yields its URL."""
    ports: multiprocessing.Queue[int] = multiprocessing.Queue()
    process = multiprocessing.Process(target=_bare_server, args=(ports, latency), daemon=True)
    process.start()
    try:
        port = await asyncio.get_running_loop().run_in_executor(None, ports.get, True, 30)
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        process.join(5)


async def _in_flight(
    url: str, concurrency: int, seconds: float, body: bytes, *, warm_up: bool
) -> float:
    """Requests/s with `concurrency` POSTs of `body` kept in flight to `url` for `seconds`;
    `warm_up` opens the connections before the window."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    count = 0
    async with aiohttp.ClientSession(connector=connector) as http:
        for _ in range(2 if warm_up else 0):
            await asyncio.gather(*(http.post(url, data=b"{}") for _ in range(concurrency)))
        end = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal count
            while time.perf_counter() < end:
                async with http.post(url, data=body) as response:
                    await response.read()
                count += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / seconds


async def _http(seconds: float) -> float:
    async with _bare_server_running() as url:
        return await _in_flight(url, 64, seconds, b'{"event_id":"x"}', warm_up=False)


def _round_trip_client(
    url: str,
    concurrency: int,
    seconds: float,
    out: multiprocessing.Queue,  # type: ignore[type-arg]
) -> None:
    """`concurrency` requests kept in flight for `seconds`, on the loop `serve` runs on."""
    with asyncio.Runner(loop_factory=new_service_loop) as runner:
        body = b'{"ReferenceId":"x"}'
        out.put(runner.run(_in_flight(url, concurrency, seconds, body, warm_up=True)))


async def _round_trips(latency_ms: float, concurrency: int, seconds: float) -> float:
    async with _bare_server_running(latency_ms / 1000) as url:
        rates: multiprocessing.Queue[float] = multiprocessing.Queue()
        client = multiprocessing.Process(
            target=_round_trip_client, args=(url, concurrency, seconds, rates), daemon=True
        )
        client.start()
        try:
            loop = asyncio.get_running_loop()
            rate: float = await loop.run_in_executor(None, rates.get, True, seconds + 60)
        finally:
            client.join(5)
        return rate


async def measure_limits(
    server_dsn: str,
    seconds: float = 2.0,
    *,
    latencies_ms: tuple[float, ...] = (),
    concurrency: int = 0,
) -> Limits:
    """The limits; with `latencies_ms` (above 0) and `concurrency`, the round trips too."""
    dsn, drop = await fresh_database(server_dsn, "inlet_bench_limits")
    try:
        commits = await _commits(dsn, seconds)
        claims = await _claims(dsn, seconds)
    finally:
        await drop()
    round_trips = {
        latency: await _round_trips(latency, concurrency, max(seconds, 3.0))
        for latency in latencies_ms
        if latency > 0 and concurrency > 0
    }
    return Limits(
        commits=commits,
        claims=claims,
        http=await _http(seconds),
        round_trips=round_trips,
        concurrency=concurrency,
    )
