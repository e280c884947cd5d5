"""Do the service's /metrics carry what the alerts need when something gives up quietly?

1. A write-back to the PMS that gave up (a webhook receiver down for an hour, on a hotel with
   one booking) is an open escalation on /metrics, with its own operation label, and the
   rules raise InletBridgeEscalationOpen for it; resolving it clears the series.
2. A Spectra connection whose polls all fail from the start (a password that Spectra does not
   take) exports a last success of 0 and raises InletBridgePollerNeverSucceeded; after a
   success, a fresh process whose polls fail exports the last success from the database, and
   the lag grows with the outage.

The alert checks run the real rules with promtool over the scraped values.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from inlet_bridge.adapters.spectra.client import SpectraError
from inlet_bridge.adapters.spectra.poller import FEED_OVERLAP
from tests.ops.alerting import firing_problems, promtool_available, samples

from ..support import ADMIN_HEADERS, DEMO_PROPERTIES, START, Harness, event, harness
from .spectra_support import CONNECTION, PASSWORD, spectra_hotel

OUTBOUND = "whsec_" + "b3V0Ym91bmQtc2VjcmV0LWZvci10ZXN0cw=="  # base64("outbound-secret-for-tests")
LAST_SUCCESS = "inlet_bridge_poller_last_success_timestamp_seconds"
LAG = "inlet_bridge_poller_lag_seconds"
OPEN = "inlet_bridge_escalations_open"


async def scrape(h: Harness) -> str:
    response = await h.service.get("/metrics")
    assert response.status == 200
    return await response.text()


def value(exposition: str, name: str, **labels: str) -> float | None:
    found = [v for n, ls, v in samples(exposition) if n == name and ls == labels]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else None


def alerts_after(
    exposition: str, minutes: int, expected: list[dict[str, str]], folder: Path
) -> None:
    if not promtool_available():
        pytest.skip("promtool not installed: the exported values were checked, not the rules")
    folder = folder / "alert-rules"
    folder.mkdir()
    problems = firing_problems(
        samples(exposition), minutes=minutes, expected=expected, folder=folder
    )
    assert problems is None, problems


# -- 1. a write-back that gave up ------------------------------------------------------------


@pytest.fixture
async def refusing_receiver() -> AsyncIterator[str]:
    """A PMS webhook endpoint that answers 503 to everything."""

    async def refuse(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=503)

    app = web.Application()
    app.router.add_post("/hook", refuse)
    server = TestServer(app)
    await server.start_server()
    yield str(server.make_url("/hook"))
    await server.close()


@pytest.fixture
async def webhook_hotel(
    database_url: str, refusing_receiver: str, tmp_path: Path
) -> AsyncIterator[Harness]:
    text = DEMO_PROPERTIES.read_text().replace(
        'signing_secrets = [{ env = "DEMO_PMS_WEBHOOK_SECRET" }]',
        'signing_secrets = [{ env = "DEMO_PMS_WEBHOOK_SECRET" }]\n'
        f'webhook_url = "{refusing_receiver}"\n'
        'webhook_secret = { env = "DEMO_PMS_OUTBOUND_SECRET" }',
    )
    properties = tmp_path / "properties.toml"
    properties.write_text(text)
    async with harness(
        database_url, PROPERTIES_FILE=str(properties), DEMO_PMS_OUTBOUND_SECRET=OUTBOUND
    ) as running:
        yield running


async def test_a_webhook_delivery_that_gave_up_is_an_open_escalation_that_alerts(
    webhook_hotel: Harness, tmp_path: Path
) -> None:
    h = webhook_hotel
    await h.post(event("e1", arrival=START + timedelta(hours=1)))
    await h.settle()
    before = await scrape(h)
    assert value(before, OPEN, operation="webhook", severity="high", property="oslo-1") == 0
    for _ in range(14):  # an hour of retries, then the delivery gives up
        await h.advance(timedelta(minutes=5))
    (escalation,) = await h.rows("SELECT id, operation, severity FROM escalations")
    assert (escalation["operation"], escalation["severity"]) == ("webhook", "high")

    exposition = await scrape(h)
    assert value(exposition, OPEN, operation="webhook", severity="high", property="oslo-1") == 1
    others = {
        (ls["operation"], ls["severity"]): v
        for n, ls, v in samples(exposition)
        if n == OPEN and (ls["operation"], ls["severity"]) != ("webhook", "high")
    }
    assert others
    assert set(others.values()) == {0}, others
    # no booking data in the labels: operation, severity and the hotel only
    assert {frozenset(ls) for n, ls, _ in samples(exposition) if n == OPEN} == {
        frozenset({"operation", "severity", "property"})
    }
    alerts_after(
        exposition,
        1,
        [
            {
                "alertname": "InletBridgeEscalationOpen",
                "operation": "webhook",
                "property": "oslo-1",
                "severity": "warning",
            }
        ],
        tmp_path,
    )

    response = await h.service.post(
        f"/v1/escalations/{escalation['id']}/resolve",
        json={"note": "webhook receiver fixed"},
        headers=ADMIN_HEADERS,
    )
    assert response.status == 200, await response.text()
    assert (
        value(await scrape(h), OPEN, operation="webhook", severity="high", property="oslo-1") == 0
    )


async def test_an_escalation_of_a_kind_not_listed_is_exported_and_then_cleared(
    webhook_hotel: Harness,
) -> None:
    """A kind of escalation nobody listed still reaches /metrics, and leaves no stale series."""
    h = webhook_hotel
    await h.db.pool.execute(
        "INSERT INTO escalations (grant_key, source, booking_id, property_id, operation,"
        " severity, reason, message, created_at)"
        " VALUES ('demo-pms:R-9:S1', 'demo-pms', 'R-9', 'oslo-1', 'sms', 'high', 'sms_failed',"
        " 'refused', $1)",
        START,
    )
    assert value(await scrape(h), OPEN, operation="sms", severity="high", property="oslo-1") == 1
    await h.db.pool.execute("UPDATE escalations SET resolved_at = $1", START)
    assert value(await scrape(h), OPEN, operation="sms", severity="high", property="oslo-1") is None


# -- 2. a poller that never succeeds ---------------------------------------------------------


async def test_a_connection_whose_polls_all_fail_exports_the_series_that_alerts(
    database_url: str, tmp_path: Path
) -> None:
    async with spectra_hotel(database_url, tmp_path) as hotel:
        h = hotel.h
        hotel.state.password = "changed-in-spectra-only"
        for _ in range(3):
            with pytest.raises(SpectraError) as failed:
                await hotel.poller.poll_once()
            assert failed.value.status == 401
            h.clock.advance(timedelta(minutes=5))
        exposition = await scrape(h)
        assert value(exposition, LAST_SUCCESS, connection=CONNECTION) == 0
        assert value(exposition, LAG, connection=CONNECTION) is None  # never read: no lag
        alerts_after(
            exposition,
            15,
            [
                {
                    "alertname": "InletBridgePollerNeverSucceeded",
                    "connection": CONNECTION,
                    "severity": "warning",
                }
            ],
            tmp_path,
        )


async def test_after_a_success_a_fresh_process_exports_the_last_success_from_the_database(
    database_url: str, tmp_path: Path
) -> None:
    async with spectra_hotel(database_url, tmp_path) as hotel:
        h = hotel.h
        await hotel.poll()
        succeeded = h.clock.now()
        exposition = await scrape(h)
        assert value(exposition, LAST_SUCCESS, connection=CONNECTION) == succeeded.timestamp()
        # a restart: the new process has no series of its own yet
        h.metrics.poller_last_success.clear()
        h.metrics.poller_lag.clear()
        hotel.state.password = "changed-in-spectra-only"
        h.clock.advance(timedelta(minutes=40))
        with pytest.raises(SpectraError):
            await hotel.poller.poll_once()
        exposition = await scrape(h)
        assert value(exposition, LAST_SUCCESS, connection=CONNECTION) == succeeded.timestamp()
        lag = value(exposition, LAG, connection=CONNECTION)
        assert lag is not None
        assert lag >= 40 * 60  # the outage, not the lag of the last good poll
        # the password fixed: the next poll succeeds and both gauges are current again
        hotel.state.password = PASSWORD
        h.clock.advance(timedelta(minutes=1))
        await hotel.poll()
        exposition = await scrape(h)
        assert value(exposition, LAST_SUCCESS, connection=CONNECTION) == h.clock.now().timestamp()
        assert value(exposition, LAG, connection=CONNECTION) == FEED_OVERLAP.total_seconds()
