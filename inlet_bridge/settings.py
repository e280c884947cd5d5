"""What does this process need to know to run? The only reader of the environment.

`Settings.from_env(environ)` reads every variable once; a bad value stops start-up
with one line naming the variable (or, for the properties file, the key).
"""

from __future__ import annotations

import importlib.util
import math
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec

from inlet_bridge.domain.config import HotelsConfig
from inlet_bridge.domain.secret import Secret
from inlet_bridge.properties import ConfigError, load_properties

T = TypeVar("T")

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
# The event loop `serve` runs on: uvloop (libuv) where it is installed, the standard one else.
EventLoop = Literal["uvloop", "asyncio"]
# How much longer than Inlet's timeout a call's lease must be (time to record the outcome).
LEASE_MARGIN_SECONDS = 5.0
# A mask key shorter than this could be guessed along with the values it hides.
MIN_MASK_KEY_CHARS = 32


def random_mask_key() -> Secret:
    """A key for this process alone: its tags match only each other."""
    return Secret(secrets.token_hex(32))


class SettingsError(Exception):
    """A setting is missing or invalid; the message names it."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str | None
    data_dir: Path
    host: str = "0.0.0.0"  # noqa: S104 - the service listens on the pod's interfaces
    port: int = 8080
    properties_file: Path | None = None
    hotels: HotelsConfig | None = None
    admin_token: Secret | None = None
    migrate_on_start: bool = True
    max_body_bytes: int = 1024 * 1024
    log_level: LogLevel = "INFO"
    event_loop: EventLoop = msgspec.field(default_factory=lambda: default_event_loop())
    shutdown_timeout_seconds: float = 20.0
    call_concurrency: int = 32
    lease_seconds: float = 30.0
    reconcile_lease_seconds: float = 15.0
    reconcile_batch: int = 50
    reconcile_concurrency: int = 4
    sweep_interval_seconds: float = 600.0
    retention_days: float = 90.0
    group_commit_max_events: int = 1000
    ingest_wait_seconds: float = 10.0
    ingest_unavailable_after_seconds: float = 3.0
    ingest_max_queued_events: int = 20_000
    instance_id: str = "local"
    # Keys the tags of masked personal data in logs, the timeline and certification reports.
    log_mask_key: Secret = msgspec.field(default_factory=random_mask_key)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read the process settings; raise SettingsError naming the first bad variable."""

        def get(name: str, parse: Callable[[str], T], default: T) -> T:
            raw = environ.get(name)
            if raw is None or raw == "":
                return default
            try:
                return parse(raw)
            except ValueError as exc:
                raise SettingsError(f"{name}: {exc}") from None

        properties_file = get("PROPERTIES_FILE", Path, None)
        hotels = None
        if properties_file is not None:
            try:
                hotels = load_properties(properties_file, environ)
            except ConfigError as exc:
                raise SettingsError(f"PROPERTIES_FILE {properties_file}: {exc}") from None
        lease = get("LEASE_SECONDS", _positive_float, 30.0)
        if hotels is not None:
            # A lease bounds one attempt: it must outlast Inlet's timeout, or a slow answer
            # would let another replica send the same call again while this one waits.
            needed = hotels.inlet.timeout_seconds + LEASE_MARGIN_SECONDS
            if lease < needed:
                raise SettingsError(
                    f"LEASE_SECONDS: {lease:g} is shorter than [inlet] timeout_seconds plus"
                    f" {LEASE_MARGIN_SECONDS:g} s ({needed:g}); raise it or lower the timeout"
                )
        admin = environ.get("ADMIN_TOKEN")
        if admin and hotels is not None:
            _check_admin_token(Secret(admin), hotels)
        # Unset: a key drawn now, so tags agree within this process but with no other one.
        mask_key = get("LOG_MASK_KEY", _mask_key, None)
        return cls(
            database_url=environ.get("DATABASE_URL") or None,
            data_dir=get("INLET_BRIDGE_DATA", Path, Path(".data")),
            host=get("HOST", str, "0.0.0.0"),  # noqa: S104
            port=get("PORT", _port, 8080),
            properties_file=properties_file,
            hotels=hotels,
            admin_token=Secret(admin) if admin else None,
            migrate_on_start=get("MIGRATE_ON_START", _bool, True),
            max_body_bytes=get("MAX_BODY_BYTES", _positive_int, 1024 * 1024),
            log_level=get("LOG_LEVEL", _log_level, "INFO"),
            event_loop=get("EVENT_LOOP", _event_loop, default_event_loop()),
            shutdown_timeout_seconds=get("SHUTDOWN_TIMEOUT_SECONDS", _positive_float, 20.0),
            call_concurrency=get("CALL_CONCURRENCY", _positive_int, 32),
            lease_seconds=get("LEASE_SECONDS", _positive_float, 30.0),
            reconcile_lease_seconds=get("RECONCILE_LEASE_SECONDS", _positive_float, 15.0),
            reconcile_batch=get("RECONCILE_BATCH", _positive_int, 50),
            reconcile_concurrency=get("RECONCILE_CONCURRENCY", _positive_int, 4),
            sweep_interval_seconds=get("SWEEP_INTERVAL_SECONDS", _positive_float, 600.0),
            retention_days=get("RETENTION_DAYS", _retention_days, 90.0),
            group_commit_max_events=get("GROUP_COMMIT_MAX_EVENTS", _positive_int, 1000),
            ingest_wait_seconds=get("INGEST_WAIT_SECONDS", _positive_float, 10.0),
            ingest_unavailable_after_seconds=get(
                "INGEST_UNAVAILABLE_AFTER_SECONDS", _positive_float, 3.0
            ),
            ingest_max_queued_events=get("INGEST_MAX_QUEUED_EVENTS", _positive_int, 20_000),
            instance_id=get("INSTANCE_ID", str, environ.get("HOSTNAME", "local")),
            log_mask_key=random_mask_key() if mask_key is None else mask_key,
        )

    def require_hotels(self) -> HotelsConfig:
        if self.hotels is None:
            raise SettingsError("PROPERTIES_FILE: not set (the hotels' configuration is required)")
        return self.hotels


def _check_admin_token(admin: Secret, hotels: HotelsConfig) -> None:
    """ADMIN_TOKEN must name the admin alone: a source's or an operator's token is not it."""
    shared = [f"sources.{n}.token" for n, s in hotels.sources.items() if s.token == admin]
    shared += [f"operators.{n}.token" for n, o in hotels.operators.items() if o.token == admin]
    if shared:
        raise SettingsError(f"ADMIN_TOKEN: the same token as {shared[0]}; give each its own")


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError(f"{raw!r} is not a port number (0-65535)")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError(f"{raw!r} must be a positive whole number")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{raw!r} must be a positive number")
    return value


# Finished calls, attempts and deliveries are kept at least this long: the timeline of a stay
# and the escalations a person works on look back that far.
MIN_RETENTION_DAYS = 30.0


def _retention_days(raw: str) -> float:
    value = _positive_float(raw)
    if value < MIN_RETENTION_DAYS:
        raise ValueError(f"{raw!r} is shorter than {MIN_RETENTION_DAYS:g} days")
    return value


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{raw!r} is not a boolean (true/false)")


def _mask_key(raw: str) -> Secret:
    if len(raw) < MIN_MASK_KEY_CHARS:
        # the value is a secret: its length only, never the value itself
        raise ValueError(
            f"{len(raw)} characters; at least {MIN_MASK_KEY_CHARS} are needed"
            " (for example `openssl rand -hex 32`)"
        )
    return Secret(raw)


def uvloop_installed() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def default_event_loop() -> EventLoop:
    """uvloop when it is installed (a dependency everywhere but Windows): it carries the same
    calls and requests for less CPU than the standard loop (docs/performance.md)."""
    return "uvloop" if uvloop_installed() else "asyncio"


def _event_loop(raw: str) -> Any:
    lowered = raw.strip().lower()
    if lowered not in ("uvloop", "asyncio"):
        raise ValueError(f"{raw!r} is not one of uvloop, asyncio")
    if lowered == "uvloop" and not uvloop_installed():
        raise ValueError("uvloop is not installed on this machine; set asyncio or install it")
    return lowered


def _log_level(raw: str) -> Any:
    upper = raw.strip().upper()
    if upper not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError(f"{raw!r} is not one of DEBUG, INFO, WARNING, ERROR")
    return upper
