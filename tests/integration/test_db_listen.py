"""The LISTEN that wakes reconcilers on other replicas survives its connection: terminated, it
is opened again on a new backend, the listener looks once, and later NOTIFYs arrive again."""

from __future__ import annotations

import asyncio
import logging

import pytest

from inlet_bridge.store.db import Database

CHANNEL = "inlet_bridge_test_wake"
WAIT_SECONDS = 10.0


class Wakes:
    """Counts the callbacks and lets the test wait for the next one."""

    def __init__(self) -> None:
        self.count = 0
        self._event = asyncio.Event()

    def __call__(self) -> None:
        self.count += 1
        self._event.set()

    async def next(self) -> None:
        await asyncio.wait_for(self._event.wait(), WAIT_SECONDS)
        self._event.clear()


async def listening_backends(db: Database) -> list[int]:
    rows = await db.pool.fetch(
        "SELECT pid FROM pg_stat_activity"
        " WHERE datname = current_database() AND query = $1 AND pid <> pg_backend_pid()",
        f'LISTEN "{CHANNEL}"',
    )
    return [r["pid"] for r in rows]


async def test_listen_is_opened_again_after_its_backend_is_terminated(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    wakes = Wakes()
    caplog.set_level(logging.INFO, logger="inlet_bridge.store.db")
    async with db.listening(CHANNEL, wakes, retry_seconds=0.05):
        await db.pool.execute(f"NOTIFY {CHANNEL}")
        await wakes.next()
        [first] = await listening_backends(db)

        assert await db.pool.fetchval("SELECT pg_terminate_backend($1)", first)
        await wakes.next()  # the look after listening again: what was sent meanwhile is lost
        [second] = await listening_backends(db)
        assert second != first

        await db.pool.execute(f"NOTIFY {CHANNEL}")
        await wakes.next()
        assert wakes.count == 3
    actions = [getattr(r, "action", None) for r in caplog.records]
    assert "db.listen_lost" in actions
    assert "db.listen_restored" in actions
    assert await listening_backends(db) == []  # closing the context stops listening


async def test_listen_is_opened_again_after_repeated_failures(db: Database) -> None:
    """Terminated again right after it came back, it keeps coming back."""
    wakes = Wakes()
    async with db.listening(CHANNEL, wakes, retry_seconds=0.05):
        for _ in range(3):
            [pid] = await listening_backends(db)
            assert await db.pool.fetchval("SELECT pg_terminate_backend($1)", pid)
            await wakes.next()
        await db.pool.execute(f"NOTIFY {CHANNEL}")
        await wakes.next()
        assert wakes.count == 4
