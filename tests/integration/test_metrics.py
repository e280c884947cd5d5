"""What /metrics says while a booking goes through: how long it has waited for the reconciler,
how many calls are pending and how old the oldest is, and the Inlet calls made with their
latency. The gauges come from PostgreSQL as of the service's clock, which the test moves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ..support import Harness, event, harness


@pytest.fixture
async def h(database_url: str) -> AsyncIterator[Harness]:
    # Bookings are marked with the database's clock: the service's clock starts beside it.
    async with harness(database_url, start=datetime.now(UTC).replace(microsecond=0)) as running:
        yield running


async def samples(h: Harness) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = await (await h.service.get("/metrics")).text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return found[(name, tuple(sorted(labels.items())))]


async def test_lag_pending_calls_and_call_latency_follow_a_booking(h: Harness) -> None:
    await h.post(event("e1", occurred_at=h.clock.now(), arrival=h.clock.now() + timedelta(hours=2)))
    h.clock.advance(timedelta(seconds=40))
    waiting = await samples(h)
    # Marked by the commit, not yet looked at: about 40 s behind (the database's clock marked it).
    assert 35 <= value(waiting, "inlet_bridge_reconcile_lag_seconds") <= 60
    assert value(waiting, "inlet_bridge_calls_pending", operation="grant") == 0

    await h.runtime.reconciler.run_once()  # plans the GrantAccess, sends nothing yet
    h.clock.advance(timedelta(seconds=90))
    planned = await samples(h)
    assert value(planned, "inlet_bridge_reconcile_lag_seconds") == 0
    assert value(planned, "inlet_bridge_calls_pending", operation="grant") == 1
    assert value(planned, "inlet_bridge_calls_oldest_pending_age_seconds", operation="grant") == 90
    assert value(planned, "inlet_bridge_calls_pending", operation="revoke") == 0

    await h.settle()
    done = await samples(h)
    assert value(done, "inlet_bridge_calls_pending", operation="grant") == 0
    assert value(done, "inlet_bridge_calls_oldest_pending_age_seconds", operation="grant") == 0
    assert value(done, "inlet_bridge_inlet_calls_total", operation="grant", outcome="success") == 1
    assert value(done, "inlet_bridge_inlet_call_seconds_count", operation="grant") == 1
    assert value(done, "inlet_bridge_inlet_call_seconds_sum", operation="grant") > 0
    assert value(done, "inlet_bridge_grants", state="active") == 1
