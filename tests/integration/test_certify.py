"""`inlet-bridge certify` runs the scenarios, writes the evidence, and fails when a behaviour breaks."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from service.certify.run import PROPERTIES, run_certify
from service.inlet.sandbox import create_sandbox_app


def environ(pg_server: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["DATABASE_URL"] = pg_server
    return env


async def test_every_scenario_passes_against_the_sandbox_and_the_reports_are_written(
    pg_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await run_certify(environ(pg_server), out=tmp_path)
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "20 passed, 0 failed" in printed
    assert printed.count("[PASS   ]") == 20
    report = (tmp_path / "report.md").read_text()
    assert "```mermaid" in report
    assert "## Certified scope (from the configuration)" in report
    assert "## Known limitations" in report
    assert '"action":"call.succeeded"' in report  # the service's own log lines are shown
    page = (tmp_path / "report.html").read_text()
    assert "<svg" in page
    assert "<script" not in page
    assert "src=" not in page  # no external scripts, images or fonts
    assert "@import" not in page
    for personal in ("ola@example.no", "Ola Nordmann", "kari@example.no"):
        assert personal not in report
        assert personal not in page
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("20", "0", "0")


async def test_an_unmapped_room_fails_its_scenario_and_the_exit_code(
    pg_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "properties.toml"
    text = PROPERTIES.read_text()
    broken.write_text(
        text.replace('[properties.oslo-1.resources."101"]\naccess_points = ["L-101"]\n', "")
    )
    code = await run_certify(
        environ(pg_server), out=tmp_path / "out", scope=["pms.3.1", "pms.3.2"], properties=broken
    )
    printed = capsys.readouterr().out
    assert code == 1
    assert "[FAIL   ] pms.3.1" in printed
    assert "[PASS   ] pms.3.2" in printed  # room 102 is still mapped
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| pms.3.1 Standard booking | PMS 3.1 | **fail** |" in report
    suite = ET.parse(tmp_path / "out" / "junit.xml").getroot()
    assert suite.get("failures") == "1"


async def test_a_sandbox_fault_the_service_cannot_recover_from_fails(
    pg_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A configuration whose retry limit is a single attempt: the retry scenario must fail.
    strict = tmp_path / "properties.toml"
    strict.write_text(PROPERTIES.read_text().replace("max_attempts = 30", "max_attempts = 1"))
    code = await run_certify(
        environ(pg_server), out=tmp_path / "out", scope=["api.retry"], properties=strict
    )
    assert code == 1
    assert "[FAIL   ] api.retry" in capsys.readouterr().out


@pytest.fixture
async def other_inlet() -> AsyncIterator[str]:
    server = TestServer(create_sandbox_app())
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


async def test_against_another_inlet_sandbox_only_checks_are_not_run(
    pg_server: str, tmp_path: Path, other_inlet: str, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {**environ(pg_server), "INLET_TEST_BASE_URL": other_inlet}
    code = await run_certify(
        env, out=tmp_path, target="inlet-test", scope=["pms.3.1", "api.retry", "api.fields"]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "[NOT_RUN] api.retry" in printed
    report = (tmp_path / "report.md").read_text()
    assert "| code opens the room during the stay | not_run |" in report
    assert "| code opens the room during the stay | pass |" not in report
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    assert suite.get("skipped") == "1"
