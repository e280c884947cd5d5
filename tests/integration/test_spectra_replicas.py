"""Two `serve` processes against one database poll a Spectra connection from only one of them;
when that replica goes away, the other takes over (its advisory lock is released)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .process_support import (
    Process,
    free_port,
    running,
    sandbox_process,
    serve_process,
    wait_until,
)
from .spectra_support import PASSWORD, USERNAME, properties_text, reservation

METRIC = "inlet_bridge_poller_last_success_timestamp_seconds"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def polls(http: aiohttp.ClientSession, replica: Process) -> bool:
    """Whether this replica has polled the connection (its poller metric is set)."""
    async with http.get(f"{replica.url}/metrics") as response:
        text = await response.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == METRIC and sample.labels.get("connection") == "osl":
                return sample.value > 0
    return False


async def test_one_replica_polls_and_the_other_takes_over(
    tmp_path: Path, database_url: str, http: aiohttp.ClientSession
) -> None:
    async with AsyncExitStack() as stack:
        sandbox = await stack.enter_async_context(running(sandbox_process(tmp_path)))
        await sandbox.wait_ready(http, "/_sandbox/grants")
        port = free_port()
        env = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
        emulator = Process(
            "spectra",
            [
                sys.executable,
                "-m",
                "inlet_bridge",
                "spectra-emulator",
                "--port",
                str(port),
                "--username",
                USERNAME,
                "--password",
                PASSWORD,
                "--hotel-code",
                "OSL",
            ],
            {**env, "PYTHONUNBUFFERED": "1"},
            tmp_path,
            port,
        )
        await stack.enter_async_context(running(emulator))
        await emulator.wait_ready(http, "/_emulator/codes")
        # The demo hotel with a Spectra connection polled every second, Inlet at the sandbox.
        text = properties_text(emulator.url, poll_interval_seconds=1)
        properties = tmp_path / "spectra.toml"
        properties.write_text(
            re.sub(
                r'^base_url = ".*"$',
                f'base_url = "{sandbox.url}"',
                text,
                count=1,
                flags=re.MULTILINE,
            )
        )
        extra = {"SPECTRA_OSL_USERNAME": USERNAME, "SPECTRA_OSL_PASSWORD": PASSWORD}
        replicas = []
        for name in ("replica-a", "replica-b"):
            replica = serve_process(
                tmp_path, database_url, instance_id=name, properties=properties, **extra
            )
            replicas.append(await stack.enter_async_context(running(replica)))
            await replica.wait_ready(http, "/readyz")

        # A reservation arriving in two hours, hotel-local time (Oslo).
        local = datetime.now(UTC).astimezone().replace(tzinfo=None) + timedelta(hours=2)
        body = reservation(
            arrival=local.isoformat(timespec="seconds"),
            departure=(local + timedelta(days=2)).isoformat(timespec="seconds"),
        )
        async with http.put(f"{emulator.url}/_emulator/reservations/g-1", json=body) as answer:
            assert answer.status in (200, 201, 204)

        async def granted() -> bool:
            async with http.get(f"{sandbox.url}/_sandbox/grants") as response:
                grants = await response.json()
            return any(g["externalId"].startswith("spectra-osl:") for g in grants)

        await wait_until(granted, "the reservation became access at Inlet")
        await wait_until(lambda: _any(http, replicas), "one replica reports a successful poll")
        polling = [r for r in replicas if await polls(http, r)]
        assert len(polling) == 1, "exactly one replica polls the connection"
        other = next(r for r in replicas if r is not polling[0])

        await polling[0].stop()
        await wait_until(lambda: polls(http, other), "the other replica takes over", timeout=20)


async def _any(http: aiohttp.ClientSession, replicas: list[Process]) -> bool:
    return any([await polls(http, r) for r in replicas])
