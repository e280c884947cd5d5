"""What does this machine allow, measured in the same run? The limits a benchmark's figures are
divided by: durable commits/s, SKIP LOCKED claims/s, and the bare aiohttp request rate."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from dataclasses import dataclass

import aiohttp
import asyncpg
from aiohttp import web

from bench.support import fresh_database


@dataclass
class Limits:
    commits: float  # one connection, one-row INSERT + COMMIT, fsync on
    claims: float  # four connections, one row leased per statement (FOR UPDATE SKIP LOCKED)
    http: float  # a handler that answers at once, 64 connections

    def describe(self) -> str:
        return (
            f"limits on this machine now: {self.commits:.0f} durable commits/s,"
            f" {self.claims:.0f} SKIP LOCKED claims/s, {self.http:.0f} bare aiohttp requests/s"
        )


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


def _bare_server(port_out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    async def ok(_: web.Request) -> web.Response:
        return web.Response(status=202, body=b'{"ok":true}', content_type="application/json")

    async def serve() -> None:
        app = web.Application()
        app.router.add_post("/", ok)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port_out.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(serve())


async def _http(seconds: float) -> float:
    queue: multiprocessing.Queue[int] = multiprocessing.Queue()
    process = multiprocessing.Process(target=_bare_server, args=(queue,), daemon=True)
    process.start()
    try:
        port = await asyncio.get_running_loop().run_in_executor(None, queue.get, True, 30)
        url = f"http://127.0.0.1:{port}/"
        connector = aiohttp.TCPConnector(limit=64)
        end = time.perf_counter() + seconds
        count = 0
        async with aiohttp.ClientSession(connector=connector) as http:

            async def worker() -> None:
                nonlocal count
                while time.perf_counter() < end:
                    async with http.post(url, data=b'{"event_id":"x"}') as response:
                        await response.read()
                    count += 1

            await asyncio.gather(*(worker() for _ in range(64)))
        return count / seconds
    finally:
        process.terminate()
        process.join(5)


async def measure_limits(server_dsn: str, seconds: float = 2.0) -> Limits:
    dsn, drop = await fresh_database(server_dsn, "inlet_bench_limits")
    try:
        commits = await _commits(dsn, seconds)
        claims = await _claims(dsn, seconds)
    finally:
        await drop()
    return Limits(commits=commits, claims=claims, http=await _http(seconds))
