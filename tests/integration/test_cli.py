"""The command line refuses bad settings with one line naming the setting, and migrates."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..support import environ


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "inlet_bridge", *args],
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"MIGRATE_ON_START": "maybe"}, "MIGRATE_ON_START"),
        ({"PROPERTIES_FILE": "/nonexistent.toml"}, "PROPERTIES_FILE"),
        ({"INLET_API_KEY_OSLO_1": ""}, "properties.oslo-1.inlet_api_key"),
    ],
)
def test_bad_setting_stops_start_up_naming_it(
    database_url: str, override: dict[str, str], named: str
) -> None:
    result = run(["serve"], {**environ(database_url), **override})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert named in lines[0], result.stderr


def test_bad_key_in_properties_file_is_named(database_url: str, tmp_path: Path) -> None:
    demo = Path(environ(database_url)["PROPERTIES_FILE"]).read_text()
    bad = tmp_path / "properties.toml"
    bad.write_text(demo.replace("send_window_hours = 24", "send_window_hours = 96"))
    result = run(["serve"], {**environ(database_url), "PROPERTIES_FILE": str(bad)})
    assert result.returncode == 2
    assert "properties.oslo-1.send_window_hours" in result.stderr


def test_migrate_reports_a_current_schema(database_url: str) -> None:
    result = run(["migrate"], environ(database_url))
    assert result.returncode == 0, result.stderr
    assert "schema is current" in result.stdout
