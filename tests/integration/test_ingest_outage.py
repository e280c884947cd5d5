"""Ingest while PostgreSQL is unreachable: fail fast with 503 and Retry-After, store nothing that
was answered 503 (no commit after the client gave up), and take events again once it is back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from inlet_bridge.app import create_app
from inlet_bridge.clock import ManualClock

from ..support import BEARER, START, event, settings_for


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[TestClient]:
    settings = settings_for(
        database_url, INGEST_WAIT_SECONDS="1", INGEST_UNAVAILABLE_AFTER_SECONDS="0.3"
    )
    app = create_app(settings, clock=ManualClock(START), run_workers=False)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def set_reachable(pg_server: str, database_url: str, reachable: bool) -> None:
    """Let the service's database take connections, or refuse them and cut the open ones."""
    name = database_url.partition("?")[0].rsplit("/", 1)[1]
    admin = await asyncpg.connect(pg_server)
    try:
        await admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS {str(reachable).lower()}")
        if not reachable:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
    finally:
        await admin.close()


async def test_ingest_answers_503_while_the_database_is_down_and_never_stores_late(
    client: TestClient, pg_server: str, database_url: str
) -> None:
    assert (await client.post("/v1/events", json=event("e1"), headers=BEARER)).status == 202
    await set_reachable(pg_server, database_url, False)

    refused = []
    for event_id in ("e2", "e3"):
        response = await client.post(
            "/v1/events", json=event(event_id, booking_id=f"R-{event_id}"), headers=BEARER
        )
        refused.append((response.status, response.headers.get("Retry-After")))
        assert (await response.json())["error"] == "unavailable"
    assert [status for status, _ in refused] == [503, 503]
    assert all(retry_after and int(retry_after) > 0 for _, retry_after in refused)

    # Failing for longer than INGEST_UNAVAILABLE_AFTER_SECONDS: refused at once, before any work.
    await asyncio.sleep(0.4)
    response = await client.post("/v1/events", json=event("e4", booking_id="R-4"), headers=BEARER)
    assert response.status == 503
    assert "database unavailable" in (await response.json())["message"]

    await set_reachable(pg_server, database_url, True)
    for _ in range(100):  # the writers reconnect within a second or two
        response = await client.post(
            "/v1/events", json=event("e5", booking_id="R-5"), headers=BEARER
        )
        if response.status == 202:
            break
        assert response.status == 503
        await asyncio.sleep(0.1)
    assert response.status == 202

    admin = await asyncpg.connect(database_url)
    try:
        stored = [r["event_id"] for r in await admin.fetch("SELECT event_id FROM events")]
    finally:
        await admin.close()
    assert sorted(stored) == ["e1", "e5"]
