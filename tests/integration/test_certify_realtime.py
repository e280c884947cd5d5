"""The certification run of the day, rehearsed: `inlet-bridge sandbox --port N` in its own
process, `inlet-bridge certify --target inlet-test` with INLET_TEST_BASE_URL pointing at it,
both started as a user would. The whole scope runs on the wall clock (retries every 2 s),
and the report is read back: its header says what the run ran against and rests on, and each
scenario's ids can be found in the target's own request log, inside the scenario's window."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from inlet_bridge import __version__
from inlet_bridge.certify.contract import ASSUMED_INLET
from inlet_bridge.certify.run import PROPERTIES
from inlet_bridge.certify.scenarios import SCENARIOS

from .process_support import _INHERITED, REPO, Process, free_port, running
from .report_reader import Report, read_html, read_markdown

pytestmark = pytest.mark.slow

RUN_SECONDS = 300  # the run itself takes about a minute; the bound is for a loaded machine


def command(*args: str) -> list[str]:
    """The `inlet-bridge` console script of this environment, as a user runs it."""
    script = Path(sys.executable).with_name("inlet-bridge")
    return (
        [str(script), *args] if script.exists() else [sys.executable, "-m", "inlet_bridge", *args]
    )


def inherited() -> dict[str, str]:
    env = {name: os.environ[name] for name in _INHERITED if name in os.environ}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Process]:
    port = free_port()
    process = Process(
        "sandbox", command("sandbox", "--port", str(port)), inherited(), tmp_path, port
    )
    async with (
        running(process),
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
    ):
        await process.wait_ready(http, "/_sandbox/faults")
        yield process


async def certify(pg_server: str, inlet_url: str, out: Path) -> tuple[int, str]:
    env = {**inherited(), "DATABASE_URL": pg_server, "INLET_TEST_BASE_URL": inlet_url}
    proc = await asyncio.create_subprocess_exec(
        *command("certify", "--target", "inlet-test", "--retry-interval", "2", "--out", str(out)),
        env=env,
        cwd=REPO,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), RUN_SECONDS)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, output.decode()


def git(*args: str) -> str:
    return subprocess.run(  # noqa: S603 - a fixed git command on the repository
        ["git", "-C", str(REPO), *args],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def expected_build() -> str:
    try:
        commit = git("rev-parse", "HEAD")
    except (OSError, subprocess.CalledProcessError):
        return f"inlet-bridge {__version__}, not a git checkout"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return f"inlet-bridge {__version__}, git commit {commit}" + (
        " with uncommitted changes" if dirty else ""
    )


async def target_requests(url: str) -> list[dict[str, Any]]:
    """What the target itself logged: every Inlet request it received and its answer."""
    async with aiohttp.ClientSession() as http, http.get(url + "/_sandbox/requests") as response:
        assert response.status == 200
        return list(await response.json())


def ids_in_window(requests: list[dict[str, Any]], window: str) -> dict[str, set[str]]:
    """The ids the target saw in a time window, found the way Inlet's reviewer would."""
    start, _, end = window.partition(" to ")
    first, last = datetime.fromisoformat(start), datetime.fromisoformat(end)
    found: dict[str, set[str]] = {"bookingId": set(), "externalId": set(), "ReferenceId": set()}
    for request in requests:
        if not first <= datetime.fromisoformat(request["at"]) <= last:
            continue
        for part in (request["body"], request["response"]):
            for key, ids in found.items():
                if isinstance(part, dict) and part.get(key):
                    ids.add(str(part[key]))
    return found


def listed(value: str) -> set[str]:
    return set() if value.startswith("none") else set(value.split(", "))


def check_report(report: Report, inlet_url: str, printed: str, *, html: bool) -> None:
    every = [s.id for s in SCENARIOS]
    header = report.header
    assert header["target"] == f"{inlet_url} (sandbox process)"
    assert header["build"] == expected_build()
    digest = hashlib.sha256(PROPERTIES.read_bytes()).hexdigest()
    assert header["properties file"] == f"{PROPERTIES} (sha256 {digest})"
    assert header["clock"].startswith("the wall clock of this machine")
    assert header["time zone"].startswith("every time in this report is UTC (+00:00)")
    assert "oslo-1 Europe/Oslo" in header["time zone"]
    assert header["retry settings"].startswith(
        "every 2 s, giving up after 24 s or 30 attempts, set for this run"
    )
    assert header["scope"] == f"all {len(every)} scenarios: {', '.join(every)}"
    tag = header["run tag"].split(" ", 1)[0]
    assert len(tag) == 6, header["run tag"]
    assert f"run tag {tag};" in printed
    expected_assumed = [
        (number, fact.replace("`", "") if html else fact) for number, fact in ASSUMED_INLET
    ]
    assert report.assumed == expected_assumed
    assert list(report.results) == every
    assert set(report.lookups) == set(every)
    for scenario, lookup in report.lookups.items():
        assert set(lookup) == {"time window", "bookingId", "externalId", "ReferenceId"}, scenario
        assert all(b.startswith(f"{tag}-") for b in listed(lookup["bookingId"])), scenario


async def test_the_whole_scope_passes_against_a_sandbox_process_and_the_report_says_so(
    pg_server: str, sandbox: Process, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    code, printed = await certify(pg_server, sandbox.url, out)
    assert code == 0, printed + sandbox.output()
    every = [s.id for s in SCENARIOS]
    assert f"{len(every)} passed, 0 failed (0 not run)" in printed, printed
    for scenario in every:  # none skipped silently: one line each, and it passed
        lines = [line for line in printed.splitlines() if f"] {scenario} " in line]
        assert len(lines) == 1, (scenario, printed)
        assert lines[0].startswith("[PASS   ]"), (scenario, printed)

    markdown = read_markdown((out / "report.md").read_text())
    page = read_html((out / "report.html").read_text())
    check_report(markdown, sandbox.url, printed, html=False)
    check_report(page, sandbox.url, printed, html=True)
    assert page.header == markdown.header
    assert page.lookups == markdown.lookups
    assert set(markdown.results.values()) == {"pass"}

    # Inlet's reviewer finds each scenario in their own logs by its window and ids: here the
    # target's request log holds exactly the ids the report lists for that window.
    requests = await target_requests(sandbox.url)
    assert requests, "the target saw no request"
    for scenario, lookup in markdown.lookups.items():
        seen = ids_in_window(requests, lookup["time window"])
        assert seen["bookingId"], f"{scenario}: nothing sent in its window"
        for key in ("bookingId", "externalId", "ReferenceId"):
            assert seen[key] == listed(lookup[key]), (scenario, key, seen[key], lookup[key])


async def test_a_target_that_does_not_answer_stops_the_run_before_it_starts(
    pg_server: str, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, printed = await certify(pg_server, url, tmp_path / "out")
    assert code == 2
    assert f"INLET_TEST_BASE_URL: {url} does not answer" in printed
    assert not (tmp_path / "out").exists()
