"""What do the loop and growth benchmarks share? PostgreSQL, fresh databases, CPU and waiting."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import asyncpg

from bench.ingest import (
    _descendants_cpu,
    _proc_stat,
    _with_database,
    machine_facts,
    new_service_loop,
)

ROOT = Path(__file__).resolve().parent.parent
DEMO_PROPERTIES = ROOT / "inlet_bridge" / "demo" / "properties.toml"

__all__ = [
    "DEMO_PROPERTIES",
    "ROOT",
    "cpu_seconds",
    "fresh_database",
    "machine_facts",
    "new_service_loop",
    "postgres_server",
    "rss_mib",
    "wait_http",
]


@contextlib.asynccontextmanager
async def postgres_server(folder: Path) -> AsyncIterator[tuple[str, int | None]]:
    """(server DSN, postmaster pid if on this machine): DATABASE_URL, or an embedded server."""
    embedded = None
    dsn = os.environ.get("DATABASE_URL")
    if not dsn:
        from inlet_bridge.store.db import EmbeddedPostgres

        embedded = EmbeddedPostgres(folder / "postgres")
        dsn = await asyncio.get_running_loop().run_in_executor(None, embedded.start)
    try:
        postmaster = None
        conn = await asyncpg.connect(dsn)
        try:
            with contextlib.suppress(asyncpg.PostgresError, OSError, ValueError):
                data_dir = await conn.fetchval("SHOW data_directory")
                pid = int((Path(data_dir) / "postmaster.pid").read_text().split()[0])
                if _proc_stat(pid) is not None:
                    postmaster = pid
        finally:
            await conn.close()
        yield dsn, postmaster
    finally:
        if embedded is not None:
            embedded.stop()


async def fresh_database(server_dsn: str, prefix: str) -> tuple[str, Callable[[], Awaitable[None]]]:
    """A new migrated database on the server, and how to drop it."""
    from inlet_bridge.store.db import Database

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    dsn = _with_database(server_dsn, name)
    db = await Database.connect(dsn, min_size=1, max_size=1)
    try:
        await db.migrate()
    finally:
        await db.close()

    async def drop() -> None:
        conn = await asyncpg.connect(server_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    return dsn, drop


def cpu_seconds(pid: int, postmaster: int | None) -> tuple[float, float]:
    """CPU seconds used so far by a process (and its children), and by PostgreSQL."""
    own = sum(_descendants_cpu(pid).values())
    postgres = sum(_descendants_cpu(postmaster).values()) if postmaster else 0.0
    return own, postgres


def rss_mib(pid: int) -> float:
    """Resident memory of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def wait_http(url: str, seconds: float = 60.0) -> None:
    """Until `url` answers 200."""
    deadline = asyncio.get_running_loop().time() + seconds
    async with aiohttp.ClientSession() as http:
        while True:
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"{url} did not answer within {seconds:g} s")
            await asyncio.sleep(0.1)
