"""Fixtures of the integration tests: the stage (service, Inlet sandbox, moving clock)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from inlet_bridge.doubles.inlet.sandbox_state import Readings

from ..support import Harness, harness

# Where Inlet's behaviour is not published, the scenarios run under each reasonable reading:
# a revoked grant's externalId makes a new grant, each API key its own account (the sandbox's
# default); or Inlet hands the revoked grant back, and all keys share one account.
EVERY_READING = [
    pytest.param(Readings(), id="inlet-new-after-revoke-per-key"),
    pytest.param(Readings(after_revoke="revoked", accounts="shared"), id="inlet-revoked-shared"),
]


@pytest.fixture
async def h(database_url: str) -> AsyncIterator[Harness]:
    async with harness(database_url) as running:
        yield running


@pytest.fixture(params=EVERY_READING)
async def h_every_reading(
    database_url: str, request: pytest.FixtureRequest
) -> AsyncIterator[Harness]:
    """The stage, once per reading of Inlet's unpublished behaviour."""
    async with harness(database_url, readings=request.param) as running:
        yield running
