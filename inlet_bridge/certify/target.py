"""What does a certification run run against, with which build, clock and retry settings?

The target is known by how it answers. `--target sandbox` is the in-process sandbox on a
simulated clock. `--target inlet-test` is `INLET_TEST_BASE_URL`: a sandbox process when it
answers `GET /_sandbox/faults` (its test endpoints and fault injection are then used), else
Inlet's test environment. Every target but the in-process one runs on the wall clock, with a
retry rule in seconds set for the run. What is settled here is the head of the report.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import aiohttp
import msgspec

from inlet_bridge import __version__
from inlet_bridge.domain.config import HotelsConfig, RetryPolicy

TargetKind = Literal["in-process sandbox", "sandbox process", "Inlet test environment"]

IN_PROCESS: TargetKind = "in-process sandbox"
SANDBOX_PROCESS: TargetKind = "sandbox process"
INLET_TEST: TargetKind = "Inlet test environment"
PROBE_PATH = "/_sandbox/faults"
PROBE_SECONDS = 10.0
# A wall-clock run's retry rule: every 2 s; it gives up after as many intervals as the
# properties file's rule has (60 / 5 = 12), so the same number of attempts is shown.
DEFAULT_RETRY_INTERVAL_SECONDS = 2.0
_REPO = Path(__file__).resolve().parents[2]


class TargetUnreachable(Exception):
    """The Inlet to certify against does not answer at all."""


class RunTarget(msgspec.Struct, frozen=True, kw_only=True):
    kind: TargetKind
    url: str  # "" for the in-process sandbox until it listens

    @property
    def wall_clock(self) -> bool:
        return self.kind != IN_PROCESS


async def probe_target(url: str) -> RunTarget:
    """A sandbox process if `url` answers the sandbox's fault API, else Inlet's test
    environment; TargetUnreachable when nothing answers there at all."""
    url = url.rstrip("/")
    timeout = aiohttp.ClientTimeout(total=PROBE_SECONDS)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url + PROBE_PATH, allow_redirects=False) as response,
        ):
            status = response.status
            body = await response.read()
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise TargetUnreachable(f"{url} does not answer: {type(exc).__name__}: {exc}") from None
    if status == 200:
        try:
            if isinstance(msgspec.json.decode(body), list):
                return RunTarget(kind=SANDBOX_PROCESS, url=url)
        except msgspec.DecodeError:
            pass
    return RunTarget(kind=INLET_TEST, url=url)


class RunRetry(msgspec.Struct, frozen=True, kw_only=True):
    """The retry rule of a run: the properties file's, or one in seconds set for the run."""

    interval_seconds: float
    max_seconds: float
    max_attempts: int
    configured: RetryPolicy  # the properties file's [retry], for the report
    set_for_run: bool

    @classmethod
    def of(
        cls,
        hotels: HotelsConfig,
        *,
        wall_clock: bool,
        interval_seconds: float | None = None,
        max_seconds: float | None = None,
    ) -> RunRetry:
        configured = hotels.retry
        if not wall_clock:
            return cls(
                interval_seconds=configured.interval_minutes * 60,
                max_seconds=configured.max_minutes * 60,
                max_attempts=configured.max_attempts,
                configured=configured,
                set_for_run=False,
            )
        interval = interval_seconds or DEFAULT_RETRY_INTERVAL_SECONDS
        intervals = configured.max_minutes / configured.interval_minutes
        return cls(
            interval_seconds=interval,
            max_seconds=max_seconds or round(interval * intervals, 3),
            max_attempts=configured.max_attempts,
            configured=configured,
            set_for_run=True,
        )

    def policy(self) -> RetryPolicy:
        return RetryPolicy(
            interval_minutes=self.interval_seconds / 60,
            max_minutes=self.max_seconds / 60,
            max_attempts=self.max_attempts,
        )

    def describe(self) -> str:
        c = self.configured
        span = _seconds if self.set_for_run else _minutes
        rule = (
            f"every {span(self.interval_seconds)}, giving up after"
            f" {span(self.max_seconds)} or {self.max_attempts} attempts"
        )
        if not self.set_for_run:
            return f"{rule} (the properties file's [retry], on the simulated clock)"
        return (
            f"{rule}, set for this run (--retry-interval, --retry-max); the properties file's"
            f" [retry] is every {c.interval_minutes:g} min, at most {c.max_minutes:g} min and"
            f" {c.max_attempts} attempts"
        )


def _seconds(value: float) -> str:
    """As the run's options give them: --retry-interval 2 is "2 s"."""
    return f"{value:g} s"


def _minutes(value: float) -> str:
    """As the properties file gives them: interval_minutes = 5 is "5 min"."""
    return f"{value / 60:g} min"


def build_info(root: Path = _REPO) -> str:
    """The version, and the git commit when the code runs from a checkout."""
    commit = _git(root, "rev-parse", "HEAD")
    top = _git(root, "rev-parse", "--show-toplevel")
    if commit is None or top is None or Path(top).resolve() != root.resolve():
        return f"inlet-bridge {__version__}, not a git checkout"
    dirty = _git(root, "status", "--porcelain", "--untracked-files=no")
    changes = " with uncommitted changes" if dirty else ""
    return f"inlet-bridge {__version__}, git commit {commit}{changes}"


def _git(root: Path, *args: str) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run(  # noqa: S603 - a fixed git command on our own folder
            [git, "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def clock_description(target: RunTarget) -> str:
    if target.wall_clock:
        return (
            "the wall clock of this machine: the service, the events' occurred_at, the Inlet"
            " calls, the log lines and the scenario windows all read it; received_at is stamped"
            " by the database server's clock"
        )
    return (
        "simulated: set to the wall time as each scenario starts and moved forward only by the"
        " scenario (send windows, retries); the service, the sandbox, the events' occurred_at,"
        " the Inlet calls, the log lines and the scenario windows all read it; received_at is"
        " stamped by the database's wall clock, which it never runs ahead of when an event is sent"
    )


def time_zone_description(hotels: HotelsConfig) -> str:
    local = datetime.now(UTC).astimezone().tzname() or "unknown"
    hotels_zones = ", ".join(f"{pid} {p.timezone.key}" for pid, p in hotels.properties.items())
    return (
        f"every time in this report is UTC (+00:00); this machine's local zone: {local};"
        f" hotels: {hotels_zones or '-'}"
    )
