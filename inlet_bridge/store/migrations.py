"""Which schema changes has this database had? Numbered SQL files, applied once and in order.

Each migration runs in its own transaction under an advisory lock, so two replicas starting
together never apply one twice. Migrations are forward-only and written to be safe while the
previous release is still running (add, never rename or drop in the same release).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from inlet_bridge.store.queries import SQL_DIR, Query

if TYPE_CHECKING:
    from inlet_bridge.store.db import Connection

log = logging.getLogger(__name__)

_FILE = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x1B1D6E  # advisory lock id for migrations


class Migration(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    name: str
    sql: str


def discover(directory: Path = SQL_DIR / "migrations") -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(directory.iterdir()):
        match = _FILE.match(path.name)
        if match is None:
            if path.suffix == ".sql":
                raise ValueError(f"migration file {path.name} is not named NNNN_name.sql")
            continue
        found.append(
            Migration(version=int(match["version"]), name=match["name"], sql=path.read_text())
        )
    versions = [m.version for m in found]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migrations must be numbered 1..n without gaps, found {versions}")
    return found


async def applied_versions(conn: Connection, queries: dict[str, Query]) -> set[int]:
    if not await conn.fetchval(queries["schema_migrations_exists"].sql):
        return set()
    rows = await conn.fetch(queries["list_migrations"].sql)
    return {row["version"] for row in rows}


async def pending(
    conn: Connection, queries: dict[str, Query], migrations: list[Migration] | None = None
) -> list[int]:
    """Versions not yet applied (empty: the schema is current)."""
    wanted = migrations if migrations is not None else discover()
    done = await applied_versions(conn, queries)
    return [m.version for m in wanted if m.version not in done]


async def migrate(
    conn: Connection, queries: dict[str, Query], migrations: list[Migration] | None = None
) -> list[int]:
    """Apply every pending migration; return the versions applied now."""
    wanted = migrations if migrations is not None else discover()
    applied: list[int] = []
    for migration in wanted:
        async with conn.transaction():
            await conn.execute(queries["lock_migrations"].sql, _LOCK_KEY)
            await conn.execute(queries["create_schema_migrations"].sql)
            if await conn.fetchval(queries["migration_applied"].sql, migration.version):
                continue
            await conn.execute(migration.sql)
            await conn.execute(queries["record_migration"].sql, migration.version, migration.name)
            applied.append(migration.version)
            log.info(
                "migration applied",
                extra={"action": "migration.applied", "version": migration.version},
            )
    return applied
