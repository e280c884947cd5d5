"""Named queries: `:name` parameters numbered once each, casts and strings left alone, and every
query with more than a few parameters written with names."""

from __future__ import annotations

import re

import pytest

from inlet_bridge.store.db import SESSION_STATE
from inlet_bridge.store.queries import MAX_NUMBERED_PARAMS, QueryError, load_queries, parse_queries


def one(sql: str) -> tuple[str, tuple[str, ...]]:
    query = parse_queries(f"-- name: q\n-- A query.\n{sql}")["q"]
    return query.sql, query.params


def test_named_parameters_are_numbered_in_order_of_first_use() -> None:
    sql, params = one(
        "UPDATE t SET a = :a, b = :b::jsonb WHERE id = :id AND b <> :b"
        " AND note = 'x:y :not_a_param' -- :neither\n AND c::text = :c"
    )
    assert params == ("a", "b", "id", "c")
    assert sql == (
        "UPDATE t SET a = $1, b = $2::jsonb WHERE id = $3 AND b <> $2"
        " AND note = 'x:y :not_a_param' -- :neither\n AND c::text = $4"
    )


def test_binding_by_name_checks_every_parameter() -> None:
    query = parse_queries("-- name: q\n-- A query.\nSELECT :a, :b")["q"]
    assert query.bind({"b": 2, "a": 1}) == [1, 2]
    with pytest.raises(TypeError, match=r"missing parameters \['b'\], unknown parameters \['c'\]"):
        query.bind({"a": 1, "c": 3})


def test_a_query_may_not_mix_named_and_numbered_parameters() -> None:
    with pytest.raises(QueryError, match="not both"):
        one("SELECT :a, $2")


def test_more_than_a_few_numbered_parameters_must_be_named() -> None:
    numbered = ", ".join(f"${n}" for n in range(1, MAX_NUMBERED_PARAMS + 2))
    with pytest.raises(QueryError, match="name them"):
        one(f"SELECT {numbered}")
    assert one("SELECT $1, $2, $3, $4")[1] == ()


def test_the_service_queries_follow_the_rules() -> None:
    queries = load_queries()
    assert len(queries) > 50
    for query in queries.values():
        numbered = set(re.findall(r"\$(\d+)", query.sql))
        assert len(query.params) == len(numbered) or not query.params, query.name
        if not query.params:
            assert len(numbered) <= MAX_NUMBERED_PARAMS, query.name


# Named queries that keep state in the session, allowed only on connections that are reset on
# release (the pollers' advisory lock is taken on a connection of its own, never in
# Database.transaction(), whose connections go back without a reset).
SESSION_STATE_ALLOWED = {"try_leader_lock", "release_leader_lock", "holds_leader_lock"}


def test_no_query_leaves_state_in_the_session() -> None:
    """A connection used by Database.transaction() is given back without RESET ALL: none of
    the queries may leave a setting, a listener, a cursor or a session lock behind."""
    offending = [
        name
        for name, query in load_queries().items()
        if name not in SESSION_STATE_ALLOWED and SESSION_STATE.search(query.sql)
    ]
    assert offending == []


def test_the_state_check_finds_session_state() -> None:
    for sql in (
        "SET search_path = x",
        "LISTEN channel",
        "SELECT pg_advisory_lock(1)",
        "SELECT set_config('a.b', 'c', false)",
    ):
        assert SESSION_STATE.search(sql), sql
    for sql in ("SET LOCAL statement_timeout = 1", "SELECT pg_advisory_xact_lock(1)"):
        assert not SESSION_STATE.search(sql), sql
