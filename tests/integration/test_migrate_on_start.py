"""With MIGRATE_ON_START=false, `serve` leaves the schema alone: the replica is not ready
(/readyz 503, naming the pending migrations) until `inlet-bridge migrate` has run."""

from __future__ import annotations

import asyncio
import os
import sys

import asyncpg
from aiohttp.test_utils import TestClient, TestServer

from inlet_bridge.app import create_app
from inlet_bridge.store.migrations import discover

from ..support import environ, settings_for


async def tables(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    return {r["tablename"] for r in rows}


async def migrate(dsn: str) -> tuple[int, str]:
    """`inlet-bridge migrate`, as a deploy's migration job runs it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "inlet_bridge",
        "migrate",
        env={"PATH": os.environ.get("PATH", ""), **environ(dsn)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    return await process.wait(), output.decode()


async def test_serve_does_not_migrate_and_is_ready_only_after_migrate(empty_database: str) -> None:
    versions = [m.version for m in discover()]
    app = create_app(settings_for(empty_database, MIGRATE_ON_START="false"), run_workers=False)
    async with TestClient(TestServer(app)) as client:
        assert await tables(empty_database) == set()
        response = await client.get("/readyz")
        assert response.status == 503
        assert await response.json() == {
            "status": "unavailable",
            "database": "ok",
            "pending_migrations": versions,
        }
        assert (await client.get("/healthz")).status == 200  # alive, just not ready

        returncode, output = await migrate(empty_database)
        assert returncode == 0, output

        ready = await client.get("/readyz")
        assert ready.status == 200
        assert await ready.json() == {"status": "ok", "database": "ok"}
        assert {"events", "bookings", "schema_migrations"} <= await tables(empty_database)


async def test_serve_migrates_on_start_by_default(empty_database: str) -> None:
    app = create_app(settings_for(empty_database, MIGRATE_ON_START="true"), run_workers=False)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/readyz")
        assert response.status == 200
        assert "events" in await tables(empty_database)
