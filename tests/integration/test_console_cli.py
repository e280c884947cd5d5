"""The CLI of the person on call, and start-up as an operator expects it: booking show,
escalations list and retry --follow, check-config, --version, defaults in every help line; a bad
database or a port in use in one line naming the variable (exit 2), and the start-up line."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from inlet_bridge.__main__ import main
from inlet_bridge.cli_console import DefaultsFormatter

from ..support import ADMIN_HEADERS, START, Harness, environ, event
from .test_escalations import escalate_a_grant


def cli_env(database_url: str, **extra: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), **environ(database_url), **extra}


def run(
    args: list[str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "inlet_bridge", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


async def test_booking_show_prints_the_timeline_in_the_terminal(
    h: Harness, database_url: str
) -> None:
    await h.post(event("e1", arrival=START + timedelta(hours=3)))
    await h.settle()
    shown = await asyncio.to_thread(
        run, ["booking", "show", "demo-pms", "R-1001"], cli_env(database_url)
    )
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "booking demo-pms/R-1001 at oslo-1" in out
    # the CLI reads the wall clock: the code works, or (once the stay is over) worked
    assert "S1: active: code w" in out
    assert "on L-101, MAIN-ENTRANCE and NIGHT-ENTRANCE" in out
    assert "grant (booking) succeeded" in out
    assert "attempt 1" in out
    assert "<masked:" in out  # codes masked unless --reveal
    missing = await asyncio.to_thread(
        run, ["booking", "show", "demo-pms", "R-9"], cli_env(database_url)
    )
    assert missing.returncode == 1
    revealed = await asyncio.to_thread(
        run,
        ["booking", "show", "demo-pms", "R-1001", "--reveal", "--as", "kari"],
        cli_env(database_url),
    )
    assert "<masked:" not in revealed.stdout.split("events:")[0]
    [audit] = await h.rows("SELECT operator, action FROM audit_log")
    assert audit == {"operator": "cli:kari", "action": "reveal"}


async def test_escalations_list_names_hotel_doors_reference_and_age_and_retry_follows(
    h: Harness, database_url: str
) -> None:
    escalation_id = await escalate_a_grant(h)
    listed = await asyncio.to_thread(run, ["escalations", "list"], cli_env(database_url))
    assert listed.returncode == 0, listed.stderr
    assert f"#{escalation_id} high" in listed.stdout
    assert "hotel Demo Hotel Oslo (oslo-1), booking demo-pms/R-1001, age" in listed.stdout
    assert "doors L-101, MAIN-ENTRANCE and NIGHT-ENTRANCE" in listed.stdout
    assert "Inlet: Lock L-101 unknown" in listed.stdout

    follower = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "inlet_bridge", "escalations", "retry", str(escalation_id),
        "--note", "lock added", "--follow", "--timeout", "60",
        env=cli_env(database_url), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    for _ in range(300):  # until the retry is recorded, then the workers do their part
        if await h.rows("SELECT 1 FROM audit_log WHERE action = 'retry'"):
            break
        await asyncio.sleep(0.1)
    await h.settle()
    out, err = await asyncio.wait_for(follower.communicate(), 60)
    text = out.decode()
    assert follower.returncode == 0, text + err.decode()
    assert f"escalation #{escalation_id}: retried" in text
    assert "succeeded: grant #" in text
    followed = await h.service.get(f"/v1/escalations/{escalation_id}", headers=ADMIN_HEADERS)
    body = await followed.json()
    assert body["retry"]["state"] == "succeeded"
    assert body["retry"]["finished"] is True
    assert body["property_id"] == "oslo-1"


def test_check_config_reports_every_problem_at_once(database_url: str, tmp_path: Path) -> None:
    demo = Path(environ(database_url)["PROPERTIES_FILE"]).read_text()
    bad = tmp_path / "properties.toml"
    bad.write_text(demo.replace("send_window_hours = 24", "send_window_hours = 96"))
    env = cli_env(database_url, PROPERTIES_FILE=str(bad), PORT="eighty", LOG_LEVEL="LOUD")
    del env["INLET_API_KEY_OSLO_1"]
    checked = run(["check-config"], env)
    assert checked.returncode == 2
    out = checked.stdout
    assert "PORT" in out
    assert "LOG_LEVEL" in out
    assert "properties.oslo-1" in out
    assert "4 problem(s)" in out or "3 problem(s)" in out, out
    assert "Traceback" not in checked.stdout + checked.stderr
    good = run(["check-config"], cli_env(database_url))
    assert (good.returncode, good.stdout.strip()) == (0, "configuration ok")


def test_version_and_every_option_shows_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("inlet-bridge 0.1.0")
    parser = argparse.ArgumentParser()

    def parsers(p: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
        found = [p]
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    found += parsers(sub)
        return found

    with pytest.raises(SystemExit):
        main(["serve", "--help"])  # builds the parsers; help of a subcommand
    help_text = capsys.readouterr().out
    assert "usage: inlet-bridge serve" in help_text
    # every option of every command has a help line ending with its default
    import inlet_bridge.__main__ as entry

    built: list[argparse.ArgumentParser] = []
    original = argparse.ArgumentParser.parse_args

    def capture(self: argparse.ArgumentParser, *a: object, **k: object) -> object:
        built.append(self)
        raise SystemExit(0)

    argparse.ArgumentParser.parse_args = capture  # type: ignore[method-assign,assignment]
    try:
        with pytest.raises(SystemExit):
            entry.main(["serve"])
    finally:
        argparse.ArgumentParser.parse_args = original  # type: ignore[method-assign]
    del parser
    checked = 0
    for p in parsers(built[0]):
        assert p.formatter_class is DefaultsFormatter, p.prog
        formatter = p._get_formatter()
        for action in p._actions:
            if not action.option_strings or action.dest in ("help", "version"):
                continue
            assert action.help, f"{p.prog} {action.option_strings} has no help"
            line = formatter._expand_help(action) if action.help else ""
            shown = DefaultsFormatter(p.prog)._get_help_string(action) or ""
            assert action.required or "default" in shown, (
                f"{p.prog} {action.option_strings}: {line}"
            )
            checked += 1
    assert checked > 30


# -- start-up ----------------------------------------------------------------------------------


def one_line_naming(result: subprocess.CompletedProcess[str], variable: str) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"inlet-bridge: {variable}"), lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


def test_an_unreachable_database_is_one_line(database_url: str) -> None:
    unreachable = "postgresql://inlet:secret-password@127.0.0.1:1/inlet"
    line = one_line_naming(
        run(["serve"], cli_env(database_url, DATABASE_URL=unreachable)), "DATABASE_URL"
    )
    assert "cannot reach the database at 127.0.0.1:1/inlet" in line
    assert "secret-password" not in line


def test_a_url_that_is_not_postgresql_is_one_line(database_url: str) -> None:
    line = one_line_naming(
        run(["serve"], cli_env(database_url, DATABASE_URL="mysql://db/x")), "DATABASE_URL"
    )
    assert "not a PostgreSQL URL" in line


async def test_a_database_user_without_rights_is_one_line(
    database_url: str, empty_database: str
) -> None:
    admin = await asyncpg.connect(empty_database)
    try:
        await admin.execute("DROP ROLE IF EXISTS inlet_reader")
        await admin.execute("CREATE ROLE inlet_reader LOGIN PASSWORD 'reader-password'")
    except asyncpg.DuplicateObjectError:
        pass
    finally:
        await admin.close()
    parts = urlsplit(empty_database)
    host = parts.netloc.rpartition("@")[2]
    reader = urlunsplit(parts._replace(netloc=f"inlet_reader:reader-password@{host}"))
    result = await asyncio.to_thread(
        run, ["serve"], cli_env(database_url, DATABASE_URL=reader, MIGRATE_ON_START="true")
    )
    line = one_line_naming(result, "DATABASE_URL")
    assert "has not the rights it needs" in line
    assert "reader-password" not in line


def test_a_port_in_use_is_one_line(database_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(["serve"], cli_env(database_url, HOST="127.0.0.1", PORT=str(port)))
    line = one_line_naming(result, "PORT")
    assert f"PORT: {port} on HOST 127.0.0.1 is already in use" in line


def start_up_lines(env: dict[str, str], until: str = '"service.started"') -> list[str]:
    """The log lines of `serve` up to its start-up line (then it is stopped)."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    lines: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-m", "inlet_bridge", "serve"],
        env={**env, "HOST": "127.0.0.1", "PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as server:
        try:
            assert server.stdout is not None
            for line in server.stdout:
                lines.append(line)
                if until in line:
                    break
        finally:
            server.terminate()
            server.communicate(timeout=30)
    return lines


def test_start_up_logs_where_it_listens_and_what_it_serves(database_url: str) -> None:
    lines = start_up_lines(cli_env(database_url))
    found = next((line for line in lines if '"service.started"' in line), None)
    assert found is not None, "no start-up line"
    line = found
    started = json.loads(line)
    assert started["host"] == "127.0.0.1"
    assert isinstance(started["port"], int)
    assert started["properties"] == ["oslo-1"]
    assert started["sources"] == ["demo-pms"]
    assert started["inlet_base_urls"] == {"oslo-1": "http://127.0.0.1:8081"}
    assert started["migrations_applied"] == []
    assert started["event_loop"] == "uvloop"  # the default where uvloop is installed


def test_event_loop_asyncio_serves_on_the_standard_loop(database_url: str) -> None:
    lines = start_up_lines(cli_env(database_url, EVENT_LOOP="asyncio"))

    started = [json.loads(line) for line in lines if '"service.started"' in line]
    assert [s["event_loop"] for s in started] == ["asyncio"]


def test_plain_http_to_a_listed_host_is_allowed_but_said_at_start_up(
    database_url: str, tmp_path: Path
) -> None:
    demo = Path(environ(database_url)["PROPERTIES_FILE"]).read_text(encoding="utf-8")
    properties = tmp_path / "properties.toml"
    properties.write_text('plain_http_hosts = ["inlet-imitation"]\n' + demo, encoding="utf-8")
    env = cli_env(database_url, PROPERTIES_FILE=str(properties))

    lines = start_up_lines(env, until='"config.plain_http"')

    warned = [json.loads(line) for line in lines if '"config.plain_http"' in line]
    assert len(warned) == 1
    assert warned[0]["level"] == "warning"
    assert warned[0]["plain_http_hosts"] == ["inlet-imitation"]
    started = [json.loads(line) for line in lines if '"service.started"' in line]
    assert started[0]["plain_http_hosts"] == ["inlet-imitation"]
