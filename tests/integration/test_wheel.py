"""`pip install .` gives a working service: the built wheel carries the SQL, the migrations and
the console's templates, and `migrate` from an install of it (not this checkout) builds the
schema."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import asyncpg
import pytest

from inlet_bridge.store.migrations import discover

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_the_wheel_installs_a_service_that_migrates(tmp_path: Path, empty_database: str) -> None:
    dist = tmp_path / "dist"
    subprocess.run(  # noqa: S603 - our own interpreter and paths
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(ROOT)],
        check=True,
        timeout=300,
    )
    (wheel,) = dist.glob("inlet_bridge-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "inlet_bridge/sql/queries.sql" in names
    assert {
        f"inlet_bridge/sql/migrations/{m.version:04d}_{m.name}.sql" for m in discover()
    } <= names
    assert "inlet_bridge/console/templates/base.html" in names
    assert not [n for n in names if n.startswith("tests/")]
    site = tmp_path / "site"
    subprocess.run(  # noqa: S603 - our own interpreter and paths
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    # Run from elsewhere, the installed copy first on the path: not this checkout's code.
    env = {**os.environ, "PYTHONPATH": str(site), "DATABASE_URL": empty_database}
    where = subprocess.run(
        [sys.executable, "-c", "import inlet_bridge; print(inlet_bridge.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip().startswith(str(site)), where.stdout
    migrated = subprocess.run(
        [sys.executable, "-m", "inlet_bridge", "migrate"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrated.returncode == 0, migrated.stderr
    versions, tables = asyncio.run(schema_of(empty_database))
    assert sorted(versions) == [m.version for m in discover()]
    assert {"events", "bookings", "grants", "inlet_calls", "audit_log"} <= tables


async def schema_of(dsn: str) -> tuple[list[int], set[str]]:
    conn = await asyncpg.connect(dsn)
    try:
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")]
        tables = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables")}
    finally:
        await conn.close()
    return versions, tables
