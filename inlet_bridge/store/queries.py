"""Which SQL does the service run? Named queries from `sql/queries.sql`, loaded once.

The SQL (the queries and the numbered migrations) is package data of `service`, so an installed
wheel carries it.

A query names its parameters (`:source`, `:booking_id`); the loader turns them into
PostgreSQL's `$1`, `$2` and remembers their order, so a call site binds by name and a query can
use one value twice without passing it twice. A short query may still number its parameters
(`$1`), up to `MAX_NUMBERED_PARAMS` of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"

# More positional parameters than this are hard to read at the call site: name them.
MAX_NUMBERED_PARAMS = 4

_HEADER = re.compile(r"^-- name: (?P<name>[a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
# A string literal, a comment, a cast (`::jsonb`), or a named parameter (`:name`).
_TOKEN = re.compile(r"'(?:[^']|'')*'|--[^\n]*|::|(?<![\w:]):(?P<param>[a-z_][a-z0-9_]*)")
_NUMBERED = re.compile(r"\$(\d+)")


class Query(msgspec.Struct, frozen=True, kw_only=True):
    """One statement: its SQL with numbered parameters, and the names they were written with
    (empty for a query written with numbered parameters)."""

    name: str
    description: str
    sql: str
    params: tuple[str, ...] = ()

    def bind(self, values: Mapping[str, Any]) -> list[Any]:
        """The arguments in `$n` order; every named parameter must be given, and nothing else."""
        missing = [p for p in self.params if p not in values]
        extra = [k for k in values if k not in self.params]
        if missing or extra:
            raise TypeError(
                f"query {self.name}: missing parameters {missing}, unknown parameters {extra}"
            )
        return [values[p] for p in self.params]


class QueryError(Exception):
    """queries.sql is malformed."""


def _named(name: str, sql: str) -> tuple[str, tuple[str, ...]]:
    """`sql` with `:name` parameters numbered, and the names in number order."""
    order: list[str] = []

    def number(match: re.Match[str]) -> str:
        param = match["param"]
        if param is None:
            return match[0]
        if param not in order:
            order.append(param)
        return f"${order.index(param) + 1}"

    numbered = _TOKEN.sub(number, sql)
    if order and _NUMBERED.search(sql):
        raise QueryError(f"query {name}: use named (:name) or numbered ($1) parameters, not both")
    if not order:
        count = len(set(_NUMBERED.findall(sql)))
        if count > MAX_NUMBERED_PARAMS:
            raise QueryError(
                f"query {name}: {count} numbered parameters; name them (:name) beyond"
                f" {MAX_NUMBERED_PARAMS}"
            )
    return numbered, tuple(order)


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
        numbered, params = _named(match["name"], sql)
        queries[match["name"]] = Query(
            name=match["name"], description=description, sql=numbered, params=params
        )
    return queries


def load_queries(sql_dir: Path = SQL_DIR) -> dict[str, Query]:
    return parse_queries((sql_dir / "queries.sql").read_text())
