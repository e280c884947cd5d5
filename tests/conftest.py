"""Shared fixtures: a real PostgreSQL (DATABASE_URL or embedded), a migrated template database
built once per session, and a fresh database cloned from it for each test."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from hypothesis import HealthCheck, settings

from inlet_bridge.store.db import Database, EmbeddedPostgres

TEMPLATE = "inlet_bridge_template"

# Property-based tests (hypothesis): "ci", the default, tries a fixed number of examples in a
# fixed order (derandomized, so every run tries the same ones and a failure replays as it is);
# its budget is that number, not wall time, which depends on the machine. "deep" searches
# wider, with a fresh seed each run and a blob to reproduce what it finds (HYPOTHESIS_PROFILE=deep
# .venv/bin/pytest tests/unit/test_convergence_properties.py tests/unit/test_fold_properties.py).
settings.register_profile(
    "ci",
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("deep", max_examples=3000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _with_database(dsn: str, name: str) -> str:
    """The same server, another database (works for host/port and for socket DSNs)."""
    base, sep, query = dsn.partition("?")
    head, _, _ = base.rpartition("/")
    return f"{head}/{name}{sep}{query}"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The DSN of a server we may create databases on."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    # A folder of its own, not under pytest's numbered temporary folders: pytest deletes the
    # oldest of those when other sessions start, which would pull the data folder from under a
    # running server whenever several test runs share the machine.
    folder = Path(tempfile.mkdtemp(prefix="inlet-bridge-pg-"))
    embedded = EmbeddedPostgres(folder)
    try:
        yield embedded.start()
    finally:
        embedded.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_template(pg_server: str) -> str:
    """A database with every migration applied, cloned by each test."""

    async def build() -> None:
        admin = await asyncpg.connect(pg_server)
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
            await admin.execute(f"CREATE DATABASE {TEMPLATE}")
        finally:
            await admin.close()
        db = await Database.connect(_with_database(pg_server, TEMPLATE), min_size=1, max_size=1)
        try:
            await db.migrate()
        finally:
            await db.close()

    asyncio.run(build())
    return TEMPLATE


@contextlib.asynccontextmanager
async def scratch_database(pg_server: str, template: str | None = None) -> AsyncIterator[str]:
    """A database of its own for one test, cloned from `template` or empty; dropped after."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    clone = f" TEMPLATE {template}" if template else ""
    admin = await asyncpg.connect(pg_server)
    try:
        await admin.execute(f"CREATE DATABASE {name}{clone}")
    finally:
        await admin.close()
    try:
        yield _with_database(pg_server, name)
    finally:
        admin = await asyncpg.connect(pg_server)
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await admin.close()


@pytest.fixture
async def database_url(pg_server: str, pg_template: str) -> AsyncIterator[str]:
    async with scratch_database(pg_server, pg_template) as url:
        yield url


@pytest.fixture
async def empty_database(pg_server: str) -> AsyncIterator[str]:
    """A database with no schema at all (not cloned from the migrated template)."""
    async with scratch_database(pg_server) as url:
        yield url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await Database.connect(database_url, min_size=1, max_size=5)
    yield database
    await database.close()
