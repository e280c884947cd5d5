"""`inlet-bridge certify` runs the scenarios, writes the evidence, and fails when a behaviour breaks."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from inlet_bridge.certify.contract import ASSUMED_INLET
from inlet_bridge.certify.run import PROPERTIES, run_certify
from inlet_bridge.certify.scenarios import in_scope
from inlet_bridge.certify.target import (
    INLET_TEST,
    SANDBOX_PROCESS,
    RunTarget,
    TargetUnreachable,
    probe_target,
)
from inlet_bridge.doubles.inlet.sandbox import create_sandbox_app

from .process_support import free_port
from .report_reader import read_html, read_markdown


def environ(pg_server: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["DATABASE_URL"] = pg_server
    return env


# -- the HTML report loads nothing -------------------------------------------------------------
#
# report.html must open offline, on a reviewer's machine, exactly as it was written: nothing is
# fetched and nothing links off the page. Inlet's texts are cited by section as plain text; an
# address may appear only as text the reader sees (escaped), never in an attribute or in CSS.

# Elements that fetch or embed something, whatever their attributes say.
_LOADING_TAGS = frozenset(
    {
        "script",
        "link",
        "img",
        "picture",
        "source",
        "iframe",
        "frame",
        "object",
        "embed",
        "audio",
        "video",
        "track",
        "image",  # SVG
        "use",  # SVG, may reference another file
        "base",
        "form",
        "meta",  # http-equiv=refresh; the charset is declared by <meta charset> only
    }
)
# Attributes that hold an address; on this page their only allowed value is an in-page "#id".
_ADDRESS_ATTRS = frozenset(
    {
        "href",
        "xlink:href",
        "src",
        "srcset",
        "action",
        "formaction",
        "data",
        "poster",
        "background",
        "ping",
    }
)
# An XML namespace is a name, never fetched.
_NAMESPACES = {("svg", "xmlns"): "http://www.w3.org/2000/svg"}
_CSS_URL = re.compile(r"url\(\s*(['\"]?)(?P<target>[^'\")]*)\1\s*\)", re.IGNORECASE)
_SCHEME = re.compile(r"(?:https?:)?//|[a-z][a-z0-9+.-]*:", re.IGNORECASE)


class _Loads(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _LOADING_TAGS and not (tag == "meta" and [a for a, _ in attrs] == ["charset"]):
            self.problems.append(f"<{tag}> element")
        self._in_style = tag == "style"
        for name, raw in attrs:
            value = raw or ""
            if _NAMESPACES.get((tag, name)) == value:
                continue
            if name in _ADDRESS_ATTRS and not value.startswith("#"):
                self.problems.append(f"<{tag} {name}={value!r}>")
            elif _SCHEME.search(value) and ("//" in value or name in _ADDRESS_ATTRS):
                self.problems.append(f"<{tag} {name}={value!r}>: an address")
            self._css(f"<{tag} {name}>", value)

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self._css("<style>", data)

    def _css(self, where: str, css: str) -> None:
        if "@import" in css.lower():
            self.problems.append(f"{where}: @import")
        for match in _CSS_URL.finditer(css):
            if not match["target"].strip().startswith("#"):
                self.problems.append(f"{where}: url({match['target']})")


def network_loads(page: str) -> list[str]:
    """What in an HTML page would fetch something or lead off the page."""
    parser = _Loads()
    parser.feed(page)
    parser.close()
    return parser.problems


@pytest.mark.parametrize(
    ("page", "found"),
    [
        pytest.param("<script>alert(1)</script>", ["<script> element"], id="inline-script"),
        pytest.param(
            '<img src="https://inlet.example/logo.png">',
            ["<img> element", "<img src='https://inlet.example/logo.png'>"],
            id="image",
        ),
        pytest.param(
            '<a href="https://docs.inlet.example/api#3.2">guide</a>',
            ["<a href='https://docs.inlet.example/api#3.2'>"],
            id="link-off-the-page",
        ),
        pytest.param(
            '<a href="&#104;ttp://x.example/">x</a>', ["<a href='http://x.example/'>"], id="escaped"
        ),
        pytest.param(
            "<style>body{background:url( 'http://x.example/a.png' )}</style>",
            ["<style>: url(http://x.example/a.png)"],
            id="css-url",
        ),
        pytest.param(
            '<p style="background: URL(//x.example/a.png)">x</p>',
            [
                "<p style='background: URL(//x.example/a.png)'>: an address",
                "<p style>: url(//x.example/a.png)",
            ],
            id="inline-css-url",
        ),
        pytest.param("<style>@import 'x.css';</style>", ["<style>: @import"], id="import"),
        pytest.param(
            '<svg xmlns="http://www.w3.org/2000/svg"><use href="sprites.svg#a"/></svg>',
            ["<use> element", "<use href='sprites.svg#a'>"],
            id="svg-use",
        ),
        pytest.param(
            '<meta http-equiv="refresh" content="0; url=https://x.example/">',
            ["<meta> element", "<meta content='0; url=https://x.example/'>: an address"],
            id="refresh",
        ),
        pytest.param(
            '<meta charset="utf-8"><a href="#pms.3.1">pms.3.1</a>'
            '<svg xmlns="http://www.w3.org/2000/svg"><path marker-end="url(#a)"/></svg>'
            "<pre>{&quot;link&quot;: &quot;https://inlet.example/k/1&quot;}</pre>",
            [],
            id="allowed",
        ),
    ],
)
def test_the_offline_check_finds_what_would_load(page: str, found: list[str]) -> None:
    assert network_loads(page) == found


async def test_every_scenario_passes_against_the_sandbox_and_the_reports_are_written(
    pg_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await run_certify(environ(pg_server), out=tmp_path)
    printed = capsys.readouterr().out
    assert code == 0, printed
    every = len(in_scope(None))
    assert every >= 20
    assert f"{every} passed, 0 failed (0 not run)" in printed
    assert printed.count("[PASS   ]") == every
    report = (tmp_path / "report.md").read_text()
    assert "```mermaid" in report
    assert "## Certified scope (from the configuration)" in report
    assert "## Known limitations" in report
    assert '"action":"call.succeeded"' in report  # the service's own log lines are shown
    # ... and checked: every scenario's bookings can be followed, with no personal data.
    leak_checks = re.findall(
        r"\| logs: no name, email, phone, code or link in clear text \| (\w+) \| (\d+) personal",
        report,
    )
    assert len(leak_checks) == every
    assert all(status == "pass" and int(looked) > 0 for status, looked in leak_checks)
    assert "| logs: API-VALIDATION-BAD0 can be followed | pass |" in report  # a refused event
    page = (tmp_path / "report.html").read_text()
    assert "<svg" in page
    assert '<a href="#api.window">' in page  # in-page links are read by the check too
    assert network_loads(page) == []
    for personal in ("ola@example.no", "Ola Nordmann", "kari@example.no"):
        assert personal not in report
        assert personal not in page
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == (
        str(every),
        "0",
        "0",
    )
    # The header says what ran: the in-process sandbox, on its simulated clock, with the
    # properties file's retry rule; both reports say the same.
    markdown, html = read_markdown(report), read_html(page)
    assert markdown.header == html.header
    header = markdown.header
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+ \(in-process sandbox\)", header["target"])
    assert header["clock"].startswith("simulated: set to the wall time as each scenario starts")
    assert header["retry settings"] == (
        "every 5 min, giving up after 60 min or 30 attempts (the properties file's [retry], on"
        " the simulated clock)"
    )
    assert header["run tag"].startswith("none")
    assert markdown.assumed == list(ASSUMED_INLET)
    assert markdown.lookups["pms.3.1"]["bookingId"] == "PMS-3-1-1"
    assert markdown.lookups["pms.3.1"]["externalId"] == "demo-pms:PMS-3-1-1:S1"
    assert markdown.lookups["pms.3.1"]["ReferenceId"].startswith("ref-")
    # One clock: the 76 h the send-window scenario waits are on the simulated clock, and every
    # event of every scenario was received (database clock) after it occurred (run clock).
    start, _, end = markdown.lookups["api.window"]["time window"].partition(" to ")
    waited = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    assert waited >= timedelta(hours=76)
    assert report.count("| events: received_at never before occurred_at | pass |") == every


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


@web.middleware
async def _without_sandbox_endpoints(
    request: web.Request, handler: web.RequestHandler
) -> web.StreamResponse:
    if request.path.startswith("/_sandbox/"):
        raise web.HTTPNotFound()
    return await handler(request)


@pytest.fixture
async def other_inlet() -> AsyncIterator[str]:
    """An Inlet that speaks the API but has none of the sandbox's test endpoints, as Inlet's
    test environment: no fault injection, no "does this code open this door"."""
    app = create_sandbox_app()
    app.middlewares.append(_without_sandbox_endpoints)
    server = TestServer(app)
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


async def test_against_another_inlet_sandbox_only_checks_and_fault_scenarios_are_not_run(
    pg_server: str, tmp_path: Path, other_inlet: str, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {**environ(pg_server), "INLET_TEST_BASE_URL": other_inlet}
    code = await run_certify(
        env,
        out=tmp_path,
        target="inlet-test",
        scope=["pms.3.1", "api.retry", "api.fields", "pms.6"],
    )
    printed = capsys.readouterr().out
    # not run is not failed: the run succeeds, and says what it could not check
    assert code == 0, printed
    assert f"certifying against {other_inlet} (Inlet test environment)" in printed
    reason = "needs fault injection: the target does not answer GET /_sandbox/faults"
    assert (
        f"[NOT_RUN] api.retry       Retry every 5 minutes, at most 60 minutes, then escalation ({reason})"
        in printed
    )
    assert f"({reason})" in next(line for line in printed.splitlines() if "] pms.6 " in line)
    assert "2 passed, 0 failed (2 not run)" in printed
    report = (tmp_path / "report.md").read_text()
    assert (
        "| code opens the room during the stay | not_run | needs the Inlet sandbox's test endpoints |"
        in report
    )
    assert "| code opens the room during the stay | pass |" not in report
    markdown = read_markdown(report)
    assert markdown.header["target"] == f"{other_inlet} (Inlet test environment)"
    assert markdown.header["clock"].startswith("the wall clock of this machine")
    assert markdown.results == {
        "api.fields": "pass",
        "api.retry": f"not run: {reason}",
        "pms.3.1": "pass",
        "pms.6": f"not run: {reason}",
    }
    assert markdown.lookups["api.retry"]["bookingId"] == "none sent"
    tag = markdown.header["run tag"].split(" ", 1)[0]
    assert markdown.lookups["pms.3.1"]["bookingId"] == f"{tag}-PMS-3-1-1"
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    assert suite.get("skipped") == "2"
    skipped = [node.get("message") for node in suite.iter("skipped")]
    assert skipped == [f"not run: {reason}"] * 2


async def test_against_another_inlet_a_failed_check_still_fails_the_run(
    pg_server: str, tmp_path: Path, other_inlet: str, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "properties.toml"
    broken.write_text(
        PROPERTIES.read_text().replace(
            '[properties.oslo-1.resources."101"]\naccess_points = ["L-101"]\n', ""
        )
    )
    env = {**environ(pg_server), "INLET_TEST_BASE_URL": other_inlet}
    code = await run_certify(
        env,
        out=tmp_path / "out",
        target="inlet-test",
        scope=["pms.3.1", "api.retry"],
        properties=broken,
    )
    printed = capsys.readouterr().out
    assert code == 1, printed
    assert "[FAIL   ] pms.3.1" in printed
    assert "[NOT_RUN] api.retry" in printed
    assert "0 passed, 1 failed (1 not run)" in printed


@pytest.mark.parametrize(
    ("target", "options", "extra_env", "message"),
    [
        pytest.param(
            "inlet-test", {}, {}, "--target inlet-test needs INLET_TEST_BASE_URL", id="no-url"
        ),
        pytest.param(
            "sandbox",
            {"retry_interval": 1.0},
            {},
            "--retry-interval and --retry-max apply to wall-clock runs",
            id="retry-on-the-simulated-clock",
        ),
        pytest.param(
            "inlet-test",
            {"retry_interval": 0.0},
            {"INLET_TEST_BASE_URL": "sandbox"},
            "--retry-interval must be more than 0 seconds",
            id="zero-interval",
        ),
        pytest.param(
            "inlet-test",
            {"retry_interval": 5.0, "retry_max": 4.0},
            {"INLET_TEST_BASE_URL": "sandbox"},
            "--retry-max must be at least the retry interval",
            id="limit-below-the-interval",
        ),
    ],
)
async def test_a_run_that_cannot_start_says_why_and_exits_2(
    pg_server: str,
    tmp_path: Path,
    other_inlet: str,
    capsys: pytest.CaptureFixture[str],
    target: str,
    options: dict[str, float],
    extra_env: dict[str, str],
    message: str,
) -> None:
    env = {k: v for k, v in environ(pg_server).items() if k != "INLET_TEST_BASE_URL"}
    env.update({k: other_inlet if v == "sandbox" else v for k, v in extra_env.items()})
    code = await run_certify(env, out=tmp_path / "out", target=target, **options)  # type: ignore[arg-type]
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


async def test_the_target_is_told_by_its_answers(other_inlet: str) -> None:
    sandbox = TestServer(create_sandbox_app())
    await sandbox.start_server()
    try:
        url = str(sandbox.make_url("")).rstrip("/")
        assert await probe_target(url + "/") == RunTarget(kind=SANDBOX_PROCESS, url=url)
    finally:
        await sandbox.close()
    assert await probe_target(other_inlet) == RunTarget(kind=INLET_TEST, url=other_inlet)
    with pytest.raises(TargetUnreachable, match="does not answer"):
        await probe_target(f"http://127.0.0.1:{free_port()}")
