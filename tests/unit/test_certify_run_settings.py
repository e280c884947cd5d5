"""A certification run's settings as its report states them (the retry rule of the run, the
build, the ids a reviewer looks up at Inlet), and a wall-clock run never waiting for hours."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from inlet_bridge import __version__
from inlet_bridge.certify.context import sent_ids
from inlet_bridge.certify.stage import Stage
from inlet_bridge.certify.target import RunRetry, build_info
from inlet_bridge.clock import SystemClock
from inlet_bridge.domain.config import HotelsConfig, InletSettings, RetryPolicy

ROOT = Path(__file__).resolve().parents[2]


def hotels_of(retry: RetryPolicy) -> HotelsConfig:
    return HotelsConfig(
        inlet=InletSettings(partner="Acme", base_url="https://inlet.example"), retry=retry
    )


@pytest.fixture
def configured() -> RetryPolicy:
    return RetryPolicy(interval_minutes=5, max_minutes=60, max_attempts=30)


def test_the_simulated_clock_keeps_the_properties_files_rule(configured: RetryPolicy) -> None:
    retry = RunRetry.of(hotels_of(configured), wall_clock=False)
    assert (retry.interval_seconds, retry.max_seconds, retry.max_attempts) == (300, 3600, 30)
    assert retry.describe() == (
        "every 5 min, giving up after 60 min or 30 attempts (the properties file's [retry], on"
        " the simulated clock)"
    )


@pytest.mark.parametrize(
    ("interval", "limit", "expected"),
    [
        pytest.param(None, None, (2.0, 24.0), id="default: 2 s, as many intervals as the file"),
        pytest.param(1.0, None, (1.0, 12.0), id="interval-given"),
        pytest.param(10.0, 120.0, (10.0, 120.0), id="both-given"),
    ],
)
def test_the_wall_clock_retries_in_seconds_set_for_the_run(
    configured: RetryPolicy,
    interval: float | None,
    limit: float | None,
    expected: tuple[float, float],
) -> None:
    retry = RunRetry.of(
        hotels_of(configured), wall_clock=True, interval_seconds=interval, max_seconds=limit
    )
    assert (retry.interval_seconds, retry.max_seconds) == expected
    policy = retry.policy()
    assert policy.interval_minutes * 60 == pytest.approx(expected[0])
    assert policy.max_minutes * 60 == pytest.approx(expected[1])
    assert policy.max_attempts == 30
    assert retry.describe().startswith(
        f"every {expected[0]:g} s, giving up after {expected[1]:g} s or 30 attempts, set for"
        " this run"
    )
    assert retry.describe().endswith(
        "the properties file's [retry] is every 5 min, at most 60 min and 30 attempts"
    )


def test_a_folder_outside_git_is_not_a_git_checkout(tmp_path: Path) -> None:
    assert build_info(tmp_path) == f"inlet-bridge {__version__}, not a git checkout"


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="runs from a git checkout only")
def test_a_checkout_names_its_commit() -> None:
    build = build_info(ROOT)
    prefix = f"inlet-bridge {__version__}, git commit "
    assert build.startswith(prefix)
    commit = build.removeprefix(prefix).split(" ", 1)[0]
    assert len(commit) == 40
    assert int(commit, 16) >= 0


def test_the_ids_to_look_up_are_those_sent_and_answered() -> None:
    calls = [
        {
            "path": "/GrantAccess",
            "body": {"bookingId": "B-1", "externalId": "src:B-1:S1", "guestName": "x"},
            "response": {"success": True, "ReferenceId": 1234},
        },
        {"path": "/GrantAccess", "body": {"bookingId": "B-2", "externalId": "src:B-2:S1"}},
        {
            "path": "/UpdateAccess",
            "body": {"bookingId": "B-1", "externalId": "src:B-1:S1", "ReferenceId": "1234"},
            "response": "Bad gateway",
        },
        {"path": "/RevokeAccess", "body": {"ReferenceId": "ref-9"}, "response": None},
    ]
    assert sent_ids(calls) == (
        ("B-1", "B-2"),
        ("src:B-1:S1", "src:B-2:S1"),
        ("1234", "ref-9"),
    )
    assert sent_ids([]) == ((), (), ())


async def test_a_wall_clock_stage_refuses_to_wait_for_hours() -> None:
    nothing: Any = None
    stage = Stage(
        service=nothing,
        sandbox=None,
        app=nothing,
        runtime=nothing,
        clock=SystemClock(),
        source_token="t",
        admin_token="a",
        recorder=nothing,
    )
    assert stage.wall_clock
    assert not stage.has_sandbox
    with pytest.raises(RuntimeError, match="may not wait 1:00:00 on the wall clock"):
        await stage.advance(timedelta(hours=1))
