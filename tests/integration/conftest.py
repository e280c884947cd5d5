"""Fixtures of the integration tests: the stage (service, Inlet sandbox, moving clock)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ..support import Harness, harness


@pytest.fixture
async def h(database_url: str) -> AsyncIterator[Harness]:
    async with harness(database_url) as running:
        yield running
