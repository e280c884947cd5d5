"""How does a partner prepare for the certification meeting? `inlet-bridge certify`.

Starts what it needs (a PostgreSQL database, the service, the Inlet sandbox), runs every
scenario in scope through the real ingest API, checks the outcome from outside (what Inlet
holds, what it would send, whether codes open the right doors only inside their period, what
the service stored and logged), and writes report.md, report.html and junit.xml. Exit 1 when
any check failed, 2 when the run cannot start (no scenario in scope, no INLET_TEST_BASE_URL),
otherwise 0: checks that only the sandbox can answer are not run against Inlet's test
environment, and a check not run does not fail the run.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import msgspec

from service.certify.context import (
    Check,
    Context,
    ScenarioResult,
    Status,
    Target,
    personal_values,
    redact,
)
from service.certify.report import write_reports
from service.certify.scenarios import Scenario, in_scope
from service.certify.stage import Stage, stage
from service.logs import JsonFormatter, Masker
from service.settings import Settings
from service.store.db import Database, EmbeddedPostgres

PROPERTIES = Path(__file__).resolve().parent.parent / "demo" / "properties.toml"
SOURCE_TOKEN = "certify-source-token"  # noqa: S105 - made up for this run's own source
ADMIN_TOKEN = "certify-admin-token"  # noqa: S105 - made up for this run's operator calls


class _Capture(logging.Handler):
    """The service's log lines (JSON, masked), kept to show them per scenario."""

    def __init__(self, masker: Masker) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter(masker))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextmanager
def _captured_logs(masker: Masker) -> Iterator[_Capture]:
    capture = _Capture(masker)
    root = logging.getLogger()
    previous = (root.level, list(root.handlers))
    root.handlers[:] = [capture]
    root.setLevel(logging.INFO)
    try:
        yield capture
    finally:
        root.setLevel(previous[0])
        root.handlers[:] = previous[1]


def certify_environ(
    environ: Mapping[str, str], database_url: str, properties: Path
) -> dict[str, str]:
    env = dict(environ)
    env.update(
        {
            "DATABASE_URL": database_url,
            "PROPERTIES_FILE": str(properties),
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "MIGRATE_ON_START": "false",
        }
    )
    env.setdefault("DEMO_PMS_TOKEN", SOURCE_TOKEN)
    env.setdefault("DEMO_PMS_WEBHOOK_SECRET", "whsec_Y2VydGlmeS1zaWduaW5n")
    env.setdefault("INLET_API_KEY_OSLO_1", "certify-inlet-key")
    return env


async def _fresh_database(server_dsn: str) -> str:
    name = f"inlet_bridge_certify_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, sep, query = server_dsn.partition("?")
    dsn = f"{base.rpartition('/')[0]}/{name}{sep}{query}"
    db = await Database.connect(dsn, min_size=1, max_size=1)
    try:
        await db.migrate()
    finally:
        await db.close()
    return dsn


async def run_certify(
    environ: Mapping[str, str],
    *,
    out: Path,
    target: Target = "sandbox",
    scope: list[str] | None = None,
    properties: Path | None = None,
) -> int:
    scenarios = in_scope(scope)
    if not scenarios:
        print(f"inlet-bridge certify: no scenario matches {scope}", file=sys.stderr)
        return 2
    inlet_url = environ.get("INLET_TEST_BASE_URL") if target == "inlet-test" else None
    if target == "inlet-test" and not inlet_url:
        print(
            "inlet-bridge certify: --target inlet-test needs INLET_TEST_BASE_URL", file=sys.stderr
        )
        return 2
    properties = properties or PROPERTIES
    with tempfile.TemporaryDirectory(prefix="inlet-bridge-certify-") as scratch:
        embedded = None
        server = environ.get("DATABASE_URL")
        if not server:
            embedded = EmbeddedPostgres(Path(scratch) / "postgres")
            server = embedded.start()
        try:
            settings = Settings.from_env(
                certify_environ(environ, await _fresh_database(server), properties)
            )
            source_token = settings.require_hotels().sources["demo-pms"].token
            results = await _run_all(
                settings,
                scenarios,
                target=target,
                inlet_url=inlet_url,
                source_token=source_token.reveal() if source_token else SOURCE_TOKEN,
            )
        finally:
            if embedded is not None:
                embedded.stop()
    write_reports(out, results, settings=settings, target=target, properties=properties)
    failed = [r for r in results if r.status == "fail"]
    print(
        f"{sum(r.status == 'pass' for r in results)} passed, {len(failed)} failed"
        f" ({sum(r.status == 'not_run' for r in results)} not run); report in {out}"
    )
    # A check not run (sandbox-only, against Inlet's test environment) is reported, not failed.
    return 1 if failed else 0


async def _run_all(
    settings: Settings,
    scenarios: list[Scenario],
    *,
    target: Target,
    inlet_url: str | None,
    source_token: str,
) -> list[ScenarioResult]:
    results: list[ScenarioResult] = []
    with _captured_logs(Masker(settings.log_mask_key)) as logs:
        async with stage(
            settings,
            start=datetime.now(UTC),
            source_token=source_token,
            admin_token=ADMIN_TOKEN,
            inlet_url=inlet_url,
            kind=Stage,
        ) as running:
            for scenario in scenarios:
                first_line = len(logs.lines)
                ctx = Context(running, target, scenario.id)
                result = await _run_one(scenario, ctx, target)
                if result.status != "not_run":
                    ctx.personal |= personal_values(await ctx.inlet_calls())
                lines = tuple(
                    line
                    for line in logs.lines[first_line:]
                    if scenario.id.replace(".", "-").upper() in line
                )
                result = _with_logs(result, lines, ctx)
                results.append(result)
                print(f"[{result.status.upper():7}] {scenario.id:15} {scenario.title}", flush=True)
    return results


async def _run_one(scenario: Scenario, ctx: Context, target: Target) -> ScenarioResult:
    error = None
    if scenario.needs_faults and target != "sandbox":
        ctx.checks.append(
            Check(
                name="whole scenario",
                status="not_run",
                detail="needs the sandbox's fault injection",
            )
        )
    else:
        try:
            await ctx.begin()
            await scenario.run(ctx)
        except Exception as exc:  # a crashed scenario is a failed one, with its traceback
            error = "".join(traceback.format_exception_only(exc)).strip()
            ctx.checks.append(Check(name="scenario ran to the end", status="fail", detail=error))
    status = _status(ctx.checks)
    calls = await ctx.inlet_calls() if status != "not_run" else []
    return ScenarioResult(
        id=scenario.id,
        title=scenario.title,
        reference=scenario.reference,
        status=status,
        checks=tuple(ctx.checks),
        events=tuple(ctx.events),
        inlet_calls=tuple(redact(calls, ctx.masker)),
        log_lines=(),
        seconds=round(time.perf_counter() - ctx.started, 3),
        error=error,
    )


def _status(checks: list[Check]) -> Status:
    statuses = {c.status for c in checks}
    if statuses == {"not_run"}:
        return "not_run"
    return "fail" if "fail" in statuses or not checks else "pass"


def _with_logs(result: ScenarioResult, lines: tuple[str, ...], ctx: Context) -> ScenarioResult:
    """The scenario's log lines, and what Inlet's reviewers look for in them (guide 4.3): each
    booking can be followed, and no personal value sent or answered is there in clear text."""
    if result.status == "not_run":
        return msgspec.structs.replace(result, log_lines=lines)
    for booking_id in sorted(ctx.booking_ids):
        ctx.check(
            f"logs: {booking_id} can be followed",
            any(f'"booking_id":"{booking_id}"' in line for line in lines),
            "log lines carry the booking's id",
        )
    leaked = sum(1 for value in ctx.personal if any(value in line for line in lines))
    ctx.check(
        "logs: no name, email, phone, code or link in clear text",
        leaked == 0,
        f"{len(ctx.personal)} personal values looked for in {len(lines)} lines; {leaked} found",
    )
    return msgspec.structs.replace(
        result, log_lines=lines, checks=tuple(ctx.checks), status=_status(ctx.checks)
    )
