"""Which SQL does the service run? Named queries from `sql/queries.sql`, loaded once."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

SQL_DIR = Path(__file__).resolve().parent.parent.parent / "sql"

_HEADER = re.compile(r"^-- name: (?P<name>[a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


class Query(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    description: str
    sql: str


class QueryError(Exception):
    """queries.sql is malformed."""


def parse_queries(text: str) -> dict[str, Query]:
    """Split the file at `-- name: x` headers; the next comment line is the description."""
    queries: dict[str, Query] = {}
    matches = list(_HEADER.finditer(text))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        body = text[match.end() : end].strip("\n")
        lines = body.splitlines()
        if not lines or not lines[0].startswith("-- "):
            raise QueryError(f"query {match['name']}: a one-line description must follow the name")
        description = lines[0][3:].strip()
        sql = "\n".join(lines[1:]).strip().rstrip(";")
        if not sql:
            raise QueryError(f"query {match['name']}: no SQL")
        if match["name"] in queries:
            raise QueryError(f"query {match['name']}: defined twice")
        queries[match["name"]] = Query(name=match["name"], description=description, sql=sql)
    return queries


def load_queries(sql_dir: Path = SQL_DIR) -> dict[str, Query]:
    return parse_queries((sql_dir / "queries.sql").read_text())
