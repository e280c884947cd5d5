"""Does the process read each environment variable once, with defaults, naming any bad one?"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from inlet_bridge import settings as settings_module
from inlet_bridge.domain.config import RetryPolicy
from inlet_bridge.domain.secret import Secret
from inlet_bridge.settings import MIN_MASK_KEY_CHARS, Settings, SettingsError

DEMO = Path(__file__).resolve().parents[2] / "inlet_bridge" / "demo" / "properties.toml"
DEMO_ENV = {
    "DEMO_PMS_TOKEN": "demo-token",
    "DEMO_PMS_WEBHOOK_SECRET": "whsec_c2VjcmV0",
    "INLET_API_KEY_OSLO_1": "inlet-key-oslo-1",
}
MASK_KEY = "0123456789abcdef0123456789abcdef"
# Unset, the mask key is drawn at random: compared apart from the other settings.
FIXED_KEY = Secret("fixed-for-comparing-the-other-settings")


def without_mask_key(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, log_mask_key=FIXED_KEY)


def test_defaults() -> None:
    assert without_mask_key(Settings.from_env({})) == Settings(
        log_mask_key=FIXED_KEY,
        database_url=None,
        data_dir=Path(".data"),
        host="0.0.0.0",  # noqa: S104 - the default the service documents
        port=8080,
        properties_file=None,
        hotels=None,
        admin_token=None,
        migrate_on_start=True,
        max_body_bytes=1024 * 1024,
        log_level="INFO",
        event_loop="uvloop",  # installed with the service on this platform
        shutdown_timeout_seconds=20.0,
        call_concurrency=32,
        lease_seconds=30.0,
        reconcile_lease_seconds=15.0,
        reconcile_batch=50,
        reconcile_concurrency=4,
        sweep_interval_seconds=600.0,
        retention_days=90.0,
        group_commit_max_events=1000,
        ingest_wait_seconds=10.0,
        ingest_unavailable_after_seconds=3.0,
        ingest_max_queued_events=20_000,
        instance_id="local",
    )


def test_empty_values_mean_the_default() -> None:
    empty = {
        name: ""
        for name in (
            "DATABASE_URL",
            "INLET_BRIDGE_DATA",
            "HOST",
            "PORT",
            "PROPERTIES_FILE",
            "ADMIN_TOKEN",
            "MIGRATE_ON_START",
            "MAX_BODY_BYTES",
            "LOG_LEVEL",
            "SHUTDOWN_TIMEOUT_SECONDS",
            "CALL_CONCURRENCY",
            "LEASE_SECONDS",
            "RECONCILE_LEASE_SECONDS",
            "RECONCILE_BATCH",
            "SWEEP_INTERVAL_SECONDS",
            "INGEST_WAIT_SECONDS",
            "INGEST_UNAVAILABLE_AFTER_SECONDS",
            "INGEST_MAX_QUEUED_EVENTS",
            "GROUP_COMMIT_MAX_EVENTS",
            "LOG_MASK_KEY",
        )
    }

    assert without_mask_key(Settings.from_env(empty)) == without_mask_key(Settings.from_env({}))


@pytest.mark.parametrize(
    ("name", "raw", "field", "expected"),
    [
        pytest.param(
            "DATABASE_URL",
            "postgresql://u@db:5432/bridge",
            "database_url",
            "postgresql://u@db:5432/bridge",
            id="database-url",
        ),
        pytest.param(
            "INLET_BRIDGE_DATA",
            "/var/lib/bridge",
            "data_dir",
            Path("/var/lib/bridge"),
            id="data-dir",
        ),
        pytest.param("HOST", "127.0.0.1", "host", "127.0.0.1", id="host"),
        pytest.param("PORT", "9090", "port", 9090, id="port"),
        pytest.param("PORT", "0", "port", 0, id="port-zero"),
        pytest.param("PORT", "65535", "port", 65535, id="port-max"),
        pytest.param(
            "ADMIN_TOKEN", "admin-secret", "admin_token", Secret("admin-secret"), id="admin-token"
        ),
        pytest.param("MIGRATE_ON_START", "false", "migrate_on_start", False, id="migrate-false"),
        pytest.param("MIGRATE_ON_START", "0", "migrate_on_start", False, id="migrate-0"),
        pytest.param("MIGRATE_ON_START", "Off", "migrate_on_start", False, id="migrate-off"),
        pytest.param("MIGRATE_ON_START", "no", "migrate_on_start", False, id="migrate-no"),
        pytest.param("MIGRATE_ON_START", " TRUE ", "migrate_on_start", True, id="migrate-true"),
        pytest.param("MIGRATE_ON_START", "yes", "migrate_on_start", True, id="migrate-yes"),
        pytest.param("MIGRATE_ON_START", "on", "migrate_on_start", True, id="migrate-on"),
        pytest.param("MIGRATE_ON_START", "1", "migrate_on_start", True, id="migrate-1"),
        pytest.param("MAX_BODY_BYTES", "2048", "max_body_bytes", 2048, id="max-body"),
        pytest.param("LOG_LEVEL", "debug", "log_level", "DEBUG", id="log-level-lower"),
        pytest.param("LOG_LEVEL", " WARNING ", "log_level", "WARNING", id="log-level-spaces"),
        pytest.param("LOG_LEVEL", "error", "log_level", "ERROR", id="log-level-error"),
        pytest.param("EVENT_LOOP", "asyncio", "event_loop", "asyncio", id="event-loop-asyncio"),
        pytest.param("EVENT_LOOP", " UVLoop ", "event_loop", "uvloop", id="event-loop-uvloop"),
        pytest.param(
            "SHUTDOWN_TIMEOUT_SECONDS", "2.5", "shutdown_timeout_seconds", 2.5, id="shutdown"
        ),
        pytest.param("CALL_CONCURRENCY", "32", "call_concurrency", 32, id="concurrency"),
        pytest.param("LEASE_SECONDS", "45", "lease_seconds", 45.0, id="lease"),
        pytest.param(
            "RECONCILE_LEASE_SECONDS", "8", "reconcile_lease_seconds", 8.0, id="reconcile-lease"
        ),
        pytest.param("INGEST_WAIT_SECONDS", "2.5", "ingest_wait_seconds", 2.5, id="ingest-wait"),
        pytest.param(
            "INGEST_UNAVAILABLE_AFTER_SECONDS",
            "1",
            "ingest_unavailable_after_seconds",
            1.0,
            id="ingest-unavailable-after",
        ),
        pytest.param(
            "INGEST_MAX_QUEUED_EVENTS", "500", "ingest_max_queued_events", 500, id="ingest-queue"
        ),
        pytest.param("RECONCILE_BATCH", "10", "reconcile_batch", 10, id="batch"),
        pytest.param(
            "RECONCILE_CONCURRENCY", "2", "reconcile_concurrency", 2, id="reconcile-concurrency"
        ),
        pytest.param("RETENTION_DAYS", "45", "retention_days", 45.0, id="retention"),
        pytest.param("SWEEP_INTERVAL_SECONDS", "60.5", "sweep_interval_seconds", 60.5, id="sweep"),
        pytest.param(
            "GROUP_COMMIT_MAX_EVENTS", "250", "group_commit_max_events", 250, id="group-commit"
        ),
        pytest.param("INSTANCE_ID", "bridge-7", "instance_id", "bridge-7", id="instance-id"),
        pytest.param("HOSTNAME", "pod-abc", "instance_id", "pod-abc", id="instance-from-hostname"),
        pytest.param("LOG_MASK_KEY", MASK_KEY, "log_mask_key", Secret(MASK_KEY), id="mask-key"),
    ],
)
def test_each_variable(name: str, raw: str, field: str, expected: Any) -> None:
    settings = Settings.from_env({name: raw})

    assert getattr(settings, field) == expected
    assert type(getattr(settings, field)) is type(expected)


def test_instance_id_beats_hostname() -> None:
    settings = Settings.from_env({"INSTANCE_ID": "bridge-1", "HOSTNAME": "pod-abc"})

    assert settings.instance_id == "bridge-1"


def test_admin_token_is_not_shown() -> None:
    settings = Settings.from_env({"ADMIN_TOKEN": "admin-secret"})

    assert "admin-secret" not in repr(settings)


def test_mask_key_is_not_shown() -> None:
    settings = Settings.from_env({"LOG_MASK_KEY": MASK_KEY})

    assert MASK_KEY not in repr(settings)


def test_without_a_mask_key_each_start_draws_its_own() -> None:
    first, second = Settings.from_env({}), Settings.from_env({})

    assert first.log_mask_key != second.log_mask_key
    assert len(first.log_mask_key.reveal()) >= MIN_MASK_KEY_CHARS
    # settings made in code get one as well
    assert Settings(database_url=None, data_dir=Path()).log_mask_key != first.log_mask_key


def test_a_short_mask_key_is_refused_without_showing_it() -> None:
    short = "guessable"

    with pytest.raises(SettingsError) as info:
        Settings.from_env({"LOG_MASK_KEY": short})

    assert str(info.value) == (
        "LOG_MASK_KEY: 9 characters; at least 32 are needed (for example `openssl rand -hex 32`)"
    )
    assert short not in str(info.value)


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        pytest.param(
            "PORT", "http", "PORT: invalid literal for int() with base 10: 'http'", id="port-text"
        ),
        pytest.param(
            "PORT", "70000", "PORT: '70000' is not a port number (0-65535)", id="port-big"
        ),
        pytest.param("PORT", "-1", "PORT: '-1' is not a port number (0-65535)", id="port-negative"),
        pytest.param(
            "PORT", "80.5", "PORT: invalid literal for int() with base 10: '80.5'", id="port-float"
        ),
        pytest.param(
            "MIGRATE_ON_START",
            "maybe",
            "MIGRATE_ON_START: 'maybe' is not a boolean (true/false)",
            id="bool",
        ),
        pytest.param(
            "MAX_BODY_BYTES",
            "0",
            "MAX_BODY_BYTES: '0' must be a positive whole number",
            id="int-zero",
        ),
        pytest.param(
            "CALL_CONCURRENCY",
            "1.5",
            "CALL_CONCURRENCY: invalid literal for int() with base 10: '1.5'",
            id="int-float",
        ),
        pytest.param(
            "RECONCILE_BATCH",
            "-3",
            "RECONCILE_BATCH: '-3' must be a positive whole number",
            id="int-negative",
        ),
        pytest.param(
            "GROUP_COMMIT_MAX_EVENTS",
            "many",
            "GROUP_COMMIT_MAX_EVENTS: invalid literal for int() with base 10: 'many'",
            id="int-text",
        ),
        pytest.param(
            "LEASE_SECONDS",
            "two minutes",
            "LEASE_SECONDS: could not convert string to float: 'two minutes'",
            id="float-text",
        ),
        pytest.param(
            "SHUTDOWN_TIMEOUT_SECONDS",
            "0",
            "SHUTDOWN_TIMEOUT_SECONDS: '0' must be a positive number",
            id="float-zero",
        ),
        pytest.param(
            "SWEEP_INTERVAL_SECONDS",
            "-60",
            "SWEEP_INTERVAL_SECONDS: '-60' must be a positive number",
            id="float-negative",
        ),
        pytest.param(
            "RETENTION_DAYS",
            "7",
            "RETENTION_DAYS: '7' is shorter than 30 days",
            id="retention-too-short",
        ),
        pytest.param(
            "LOG_LEVEL",
            "trace",
            "LOG_LEVEL: 'trace' is not one of DEBUG, INFO, WARNING, ERROR",
            id="log-level",
        ),
        pytest.param(
            "EVENT_LOOP",
            "trio",
            "EVENT_LOOP: 'trio' is not one of uvloop, asyncio",
            id="event-loop",
        ),
    ],
)
def test_bad_value_names_the_variable(name: str, raw: str, message: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({name: raw})

    assert str(info.value) == message


@pytest.mark.parametrize(
    "name", ["LEASE_SECONDS", "SHUTDOWN_TIMEOUT_SECONDS", "SWEEP_INTERVAL_SECONDS"]
)
def test_nan_is_not_a_positive_number(name: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({name: "nan"})

    assert str(info.value) == f"{name}: 'nan' must be a positive number"


def test_without_uvloop_the_standard_loop_is_the_default_and_uvloop_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings_module, "uvloop_installed", lambda: False)

    assert Settings.from_env({}).event_loop == "asyncio"
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"EVENT_LOOP": "uvloop"})
    assert str(info.value) == (
        "EVENT_LOOP: uvloop is not installed on this machine; set asyncio or install it"
    )


def test_properties_file_is_loaded() -> None:
    settings = Settings.from_env({"PROPERTIES_FILE": str(DEMO), **DEMO_ENV})

    assert settings.properties_file == DEMO
    assert settings.hotels is not None
    assert settings.require_hotels() is settings.hotels
    assert sorted(settings.hotels.properties) == ["oslo-1"]
    assert settings.hotels.retry == RetryPolicy()


def test_no_properties_file_is_refused_when_required() -> None:
    settings = Settings.from_env({})

    with pytest.raises(SettingsError) as info:
        settings.require_hotels()

    assert str(info.value) == "PROPERTIES_FILE: not set (the hotels' configuration is required)"


def test_properties_key_error_is_prefixed_with_the_variable() -> None:
    env = {"PROPERTIES_FILE": str(DEMO), **DEMO_ENV}
    del env["INLET_API_KEY_OSLO_1"]

    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)

    assert str(info.value) == (
        f"PROPERTIES_FILE {DEMO}: environment variable INLET_API_KEY_OSLO_1 is not set"
        " - at `properties.oslo-1.inlet_api_key`"
    )


def test_properties_bad_key_is_prefixed_with_the_variable(tmp_path: Path) -> None:
    path = tmp_path / "properties.toml"
    path.write_text(
        '[inlet]\npartner = "P"\nbase_url = "https://inlet.example"\n\n[properties.h1]\nname = "H"\ntimezone = "Mars/Olympus"\n'
        'inlet_api_key = { env = "KEY" }\n'
    )

    with pytest.raises(SettingsError) as info:
        Settings.from_env({"PROPERTIES_FILE": str(path), "KEY": "k"})

    assert str(info.value) == (
        f"PROPERTIES_FILE {path}: unknown time zone 'Mars/Olympus' - at `properties.h1.timezone`"
    )


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        pytest.param(None, "cannot read", id="missing-file"),
        pytest.param('[inlet\npartner = "P"\n', "is not valid TOML", id="invalid-toml"),
    ],
)
def test_unreadable_properties_file_names_the_variable(
    tmp_path: Path, content: str | None, detail: str
) -> None:
    path = tmp_path / "properties.toml"
    if content is not None:
        path.write_text(content)

    with pytest.raises(SettingsError) as info:
        Settings.from_env({"PROPERTIES_FILE": str(path)})

    message = str(info.value)
    assert message.startswith(f"PROPERTIES_FILE {path}: ")
    assert detail in message


@pytest.mark.parametrize(
    "content",
    [pytest.param(None, id="missing-file"), pytest.param("[inlet\n", id="invalid-toml")],
)
def test_unreadable_properties_file_names_the_variable_once(
    tmp_path: Path, content: str | None
) -> None:
    path = tmp_path / "properties.toml"
    if content is not None:
        path.write_text(content)

    with pytest.raises(SettingsError) as info:
        Settings.from_env({"PROPERTIES_FILE": str(path)})

    assert str(info.value).count("PROPERTIES_FILE") == 1
    assert str(info.value).count(str(path)) == 1


def test_a_call_lease_shorter_than_inlets_timeout_is_refused() -> None:
    """A lease bounds one attempt: it must outlast Inlet's timeout (10 s in the demo) plus the
    time to record the outcome, or a slow answer lets another replica send the call again."""
    env = {"PROPERTIES_FILE": str(DEMO), **DEMO_ENV}
    assert Settings.from_env({**env, "LEASE_SECONDS": "15"}).lease_seconds == 15.0
    with pytest.raises(SettingsError) as info:
        Settings.from_env({**env, "LEASE_SECONDS": "12"})
    assert str(info.value).startswith("LEASE_SECONDS: 12 is shorter than [inlet] timeout_seconds")


def test_the_reconcile_lease_is_well_under_a_minute_by_default() -> None:
    assert Settings.from_env({}).reconcile_lease_seconds < 60
