"""`inlet-bridge resync` from a shell (certification 3.5): it counts first, queues only with
`--yes`, selects by access point, resource or booking, and the running service's call workers
send the regenerating UpdateAccess calls it queued."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from ..support import Harness, environ, event, harness, stay

HOUR = timedelta(hours=1)


@pytest.fixture
async def h(database_url: str) -> AsyncIterator[Harness]:
    # The command reads the wall clock, so the service's clock starts there too.
    async with harness(database_url, start=datetime.now(UTC).replace(microsecond=0)) as running:
        yield running


def resync(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "inlet_bridge", "resync", *args],
        env={"PATH": os.environ.get("PATH", ""), **environ(database_url)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def two_bookings(h: Harness) -> None:
    start = h.clock.now() + HOUR
    await h.post(event("e1", booking_id="R-1", occurred_at=h.clock.now(), arrival=start))
    await h.post(
        event(
            "e2",
            booking_id="R-2",
            occurred_at=h.clock.now(),
            stays=[stay("S2", resource_id="201", arrival=start)],
        )
    )
    await h.settle()


def updates(calls: list[dict[str, object]]) -> list[dict[str, object]]:
    return [c for c in calls if c["path"] == "/UpdateAccess"]


async def test_counts_first_then_queues_calls_the_service_sends(
    h: Harness, database_url: str
) -> None:
    await two_bookings(h)
    before = {g["externalId"]: g for g in await h.grants()}

    counted = resync(database_url, "--resource", "201")
    assert counted.returncode == 0, counted.stderr
    assert "1 active grants match" in counted.stdout
    assert "2 active grants match" in resync(database_url, "--property", "oslo-1").stdout
    assert "1 active grants match" in resync(database_url, "--booking", "demo-pms:R-1").stdout
    await h.advance(timedelta(minutes=1))
    assert updates(await h.inlet_requests()) == []  # a count queues nothing

    queued = resync(database_url, "--access-point", "L-101", "--yes", "--no-follow")
    assert queued.returncode == 0, queued.stderr
    assert "1 matched, 1 queued" in queued.stdout
    await h.advance(timedelta(minutes=1))

    sent = updates(await h.inlet_requests())
    assert len(sent) == 1
    assert sent[0]["body"]["ReferenceId"] == before["demo-pms:R-1:S1"]["ReferenceId"]  # type: ignore[index]
    assert sent[0]["body"]["regenerate"] is True  # type: ignore[index]
    new_code = {g["externalId"]: g for g in await h.grants()}["demo-pms:R-1:S1"]["code"]
    assert new_code != before["demo-pms:R-1:S1"]["code"]
    stored = await h.rows("SELECT code FROM grants WHERE grant_key = 'demo-pms:R-1:S1'")
    assert stored == [{"code": new_code}]

    # Without --no-follow the command reports progress until its calls have settled.
    following = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "inlet_bridge",
        "resync",
        "--resource",
        "201",
        "--yes",
        env={"PATH": os.environ.get("PATH", ""), **environ(database_url)},
        stdout=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        while following.returncode is None:
            await h.advance(timedelta(seconds=30))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(following.wait(), 0.5)
    output = (await following.stdout.read()).decode()  # type: ignore[union-attr]
    assert following.returncode == 0, output
    assert "1 done, 0 pending, 0 failed" in output
    assert len(updates(await h.inlet_requests())) == 2


def test_a_selector_is_required(database_url: str) -> None:
    result = resync(database_url)
    assert result.returncode == 2
    assert "give --property, --access-point, --resource or --booking" in result.stdout
