"""Every named query is valid SQL against the migrated schema: PostgreSQL prepares each one, and
its parameter count matches the names it was written with."""

from __future__ import annotations

import asyncpg

from inlet_bridge.store.queries import load_queries


async def test_every_named_query_prepares_against_the_migrated_schema(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        prepared = 0
        for query in load_queries().values():
            if query.name in ("create_schema_migrations",):
                continue  # DDL cannot be prepared with parameters; it runs in every test
            statement = await conn.prepare(query.sql)
            if query.params:
                assert len(statement.get_parameters()) == len(query.params), query.name
            prepared += 1
    finally:
        await conn.close()
    assert prepared == len(load_queries()) - 1
