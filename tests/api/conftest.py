"""The service app over HTTP against a fresh database, workers not running."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from inlet_bridge.app import create_app
from inlet_bridge.clock import ManualClock

from ..support import START, settings_for


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def client(database_url: str, clock: ManualClock) -> AsyncIterator[TestClient]:
    app = create_app(
        settings_for(database_url, MAX_BODY_BYTES="20000"), clock=clock, run_workers=False
    )
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
