"""How does a partner prepare for the certification meeting? `inlet-bridge certify`.

Starts what it needs (a PostgreSQL database, the service, and the in-process Inlet sandbox
unless `--target inlet-test` names another Inlet), runs every scenario in scope through the
real ingest API, checks the outcome from outside (what Inlet holds, what it would send, whether
codes open the right doors only inside their period, what the service stored and logged), and
writes report.md, report.html and junit.xml. Against another Inlet the run is on the wall
clock with a retry rule in seconds; scenarios that need faults run only where the target can
inject them. Exit 1 when any check failed, 2 when the run cannot start (no scenario in scope,
no or unreachable INLET_TEST_BASE_URL, retry options without a wall-clock target), otherwise
0: a check not run (sandbox-only, or needing fault injection) does not fail the run.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from inlet_bridge.certify.context import (
    NEEDS_FAULTS,
    Check,
    Context,
    ScenarioResult,
    Status,
    Target,
    personal_values,
    redact,
    sent_ids,
)
from inlet_bridge.certify.contract import ASSUMED_INLET
from inlet_bridge.certify.report import RunHeader, write_reports
from inlet_bridge.certify.scenarios import SCENARIOS, Scenario, in_scope
from inlet_bridge.certify.stage import Stage, stage
from inlet_bridge.certify.target import (
    DEFAULT_RETRY_INTERVAL_SECONDS,
    IN_PROCESS,
    SANDBOX_PROCESS,
    RunRetry,
    RunTarget,
    TargetUnreachable,
    build_info,
    clock_description,
    file_sha256,
    probe_target,
    time_zone_description,
)
from inlet_bridge.logs import JsonFormatter, Masker
from inlet_bridge.settings import Settings
from inlet_bridge.store.db import Database, EmbeddedPostgres, create_database

PROPERTIES = Path(__file__).resolve().parent.parent / "demo" / "properties.toml"
SOURCE_TOKEN = "certify-source-token"  # noqa: S105 - made up for this run's own source
ADMIN_TOKEN = "certify-admin-token"  # noqa: S105 - made up for this run's operator calls


class _Capture(logging.Handler):
    """The service's log lines (JSON, masked), kept to show them per scenario, stamped with
    the run's clock (one time base in the report, simulated or not)."""

    def __init__(self, masker: Masker) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter(masker))
        self.lines: list[str] = []
        self.clock: Callable[[], datetime] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.clock is not None:
            record = logging.makeLogRecord(record.__dict__)
            record.created = self.clock().timestamp()
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
    dsn = await create_database(server_dsn, f"inlet_bridge_certify_{uuid.uuid4().hex[:8]}")
    db = await Database.connect(dsn, min_size=1, max_size=1)
    try:
        await db.migrate()
    finally:
        await db.close()
    return dsn


class _Plan(msgspec.Struct, frozen=True, kw_only=True):
    """What a run will do, settled before anything starts."""

    scenarios: list[Scenario]
    target: RunTarget
    run_tag: str
    retry_interval: float | None
    retry_max: float | None


def _fail(message: str) -> int:
    print(f"inlet-bridge certify: {message}", file=sys.stderr)
    return 2


async def run_certify(
    environ: Mapping[str, str],
    *,
    out: Path,
    target: Target = "sandbox",
    scope: list[str] | None = None,
    properties: Path | None = None,
    retry_interval: float | None = None,
    retry_max: float | None = None,
) -> int:
    scenarios = in_scope(scope)
    if not scenarios:
        return _fail(f"no scenario matches {scope}")
    if target == "inlet-test":
        inlet_url = environ.get("INLET_TEST_BASE_URL")
        if not inlet_url:
            return _fail("--target inlet-test needs INLET_TEST_BASE_URL")
        try:
            run_target = await probe_target(inlet_url)
        except TargetUnreachable as exc:
            return _fail(f"INLET_TEST_BASE_URL: {exc}")
    else:
        if retry_interval is not None or retry_max is not None:
            return _fail(
                "--retry-interval and --retry-max apply to wall-clock runs (--target"
                " inlet-test); the in-process run uses the properties file's [retry] on its"
                " simulated clock"
            )
        run_target = RunTarget(kind=IN_PROCESS, url="")
    for name, value in (("--retry-interval", retry_interval), ("--retry-max", retry_max)):
        if value is not None and value <= 0:
            return _fail(f"{name} must be more than 0 seconds")
    if retry_max is not None and retry_max < (retry_interval or DEFAULT_RETRY_INTERVAL_SECONDS):
        return _fail("--retry-max must be at least the retry interval")
    plan = _Plan(
        scenarios=scenarios,
        target=run_target,
        # Inlet keeps grants by externalId: a run against a long-lived Inlet gets its own ids.
        run_tag=uuid.uuid4().hex[:6].upper() if run_target.wall_clock else "",
        retry_interval=retry_interval,
        retry_max=retry_max,
    )
    properties = properties or PROPERTIES
    started_at = datetime.now(UTC)
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
            retry = RunRetry.of(
                settings.require_hotels(),
                wall_clock=run_target.wall_clock,
                interval_seconds=retry_interval,
                max_seconds=retry_max,
            )
            tag = f"run tag {plan.run_tag}; " if plan.run_tag else ""
            print(
                f"certifying against {run_target.url or 'the in-process sandbox'}"
                f" ({run_target.kind}); {tag}retries {retry.describe()}",
                flush=True,
            )
            results, target_url = await _run_all(
                settings,
                plan,
                retry,
                source_token=source_token.reveal() if source_token else SOURCE_TOKEN,
            )
        finally:
            if embedded is not None:
                embedded.stop()
    header = RunHeader(
        target_url=target_url,
        target_kind=run_target.kind,
        build=build_info(),
        properties_file=str(properties),
        properties_sha256=file_sha256(properties),
        clock=clock_description(run_target),
        time_zone=time_zone_description(settings.require_hotels()),
        retry=retry.describe(),
        scope=_scope(scope, scenarios),
        run_tag=plan.run_tag,
        started_at=started_at,
        ended_at=datetime.now(UTC),
        assumed=ASSUMED_INLET,
    )
    write_reports(out, results, settings=settings, header=header)
    failed = [r for r in results if r.status == "fail"]
    print(
        f"{sum(r.status == 'pass' for r in results)} passed, {len(failed)} failed"
        f" ({sum(r.status == 'not_run' for r in results)} not run); report in {out}"
    )
    # A check not run (sandbox-only, or needing faults the target cannot inject) is reported,
    # never passed, and does not fail the run.
    return 1 if failed else 0


def _scope(scope: list[str] | None, scenarios: list[Scenario]) -> str:
    ids = ", ".join(s.id for s in scenarios)
    if not scope:
        return f"all {len(scenarios)} scenarios: {ids}"
    return f"--scope {' '.join(scope)}: {len(scenarios)} of {len(SCENARIOS)} scenarios: {ids}"


async def _run_all(
    settings: Settings, plan: _Plan, retry: RunRetry, *, source_token: str
) -> tuple[list[ScenarioResult], str]:
    results: list[ScenarioResult] = []
    target = plan.target
    with _captured_logs(Masker(settings.log_mask_key)) as logs:
        async with stage(
            settings,
            source_token=source_token,
            admin_token=ADMIN_TOKEN,
            inlet_url=target.url if target.wall_clock else None,
            inlet_sandbox_endpoints=target.kind == SANDBOX_PROCESS,
            retry=retry.policy() if retry.set_for_run else None,
            kind=Stage,
        ) as running:
            logs.clock = running.clock.now
            for scenario in plan.scenarios:
                first_line = len(logs.lines)
                ctx = Context(running, scenario.id, run_tag=plan.run_tag)
                result = await _run_one(scenario, ctx)
                if result.status != "not_run":
                    ctx.personal |= personal_values(await ctx.inlet_calls())
                lines = tuple(line for line in logs.lines[first_line:] if ctx.prefix in line)
                result = _with_logs(result, lines, ctx)
                results.append(result)
                reason = f" ({result.not_run_reason})" if result.not_run_reason else ""
                print(
                    f"[{result.status.upper():7}] {scenario.id:15} {scenario.title}{reason}",
                    flush=True,
                )
            if running.has_sandbox:  # a sandbox process outlives the run: leave it unarmed
                await running.clear_faults()
            return results, running.inlet_url


async def _run_one(scenario: Scenario, ctx: Context) -> ScenarioResult:
    error = None
    if scenario.needs_faults and not ctx.has_sandbox:
        ctx.not_run("whole scenario", NEEDS_FAULTS)
    else:
        try:
            await ctx.begin()
            await scenario.run(ctx)
            await ctx.check_event_times()
        except Exception as exc:  # a crashed scenario is a failed one, with its traceback
            error = "".join(traceback.format_exception_only(exc)).strip()
            ctx.checks.append(Check(name="scenario ran to the end", status="fail", detail=error))
    ended_at = ctx.now
    status = _status(ctx.checks)
    calls = await ctx.inlet_calls() if status != "not_run" else []
    booking_ids, external_ids, reference_ids = sent_ids(calls)
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
        not_run_reason=_not_run_reason(ctx.checks) if status == "not_run" else None,
        started_at=ctx.started_at,
        ended_at=ended_at,
        booking_ids=booking_ids,
        external_ids=external_ids,
        reference_ids=reference_ids,
    )


def _not_run_reason(checks: list[Check]) -> str:
    return "; ".join(dict.fromkeys(c.detail for c in checks if c.status == "not_run"))


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
