"""Is every bad key or value of the properties file refused with a message naming the key?"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from inlet_bridge.domain.config import (
    CheckRule,
    CommunicationDefaults,
    Door,
    InletSettings,
    Operator,
    RateLimit,
    Resource,
    RetryPolicy,
)
from inlet_bridge.domain.secret import Secret
from inlet_bridge.properties import ConfigError, load_properties, parse_properties
from tests.unit.domain_cases import ENVIRON, PROPERTY_ID, SOURCE, base_config

DEMO = Path(__file__).resolve().parents[2] / "inlet_bridge" / "demo" / "properties.toml"
DEMO_ENV = {
    "DEMO_PMS_TOKEN": "demo-token",
    "DEMO_PMS_WEBHOOK_SECRET": "whsec_c2VjcmV0",
    "INLET_API_KEY_OSLO_1": "inlet-key-oslo-1",
}
REMOVE = object()
P = ("properties", PROPERTY_ID)
SPECTRA = {
    "property_id": PROPERTY_ID,
    "base_url": "https://spectra.invalid",
    "username": {"env": "PMS_TOKEN"},
    "password": {"env": "PMS_TOKEN"},
    "hotel_code": "OSL1",
}


def changed(*changes: tuple[tuple[str, ...], Any]) -> dict[str, Any]:
    """The base configuration with values set (or removed) at the given paths."""
    raw = base_config()
    for path, value in changes:
        target = raw
        for key in path[:-1]:
            target = target.setdefault(key, {})
        if value is REMOVE:
            del target[path[-1]]
        else:
            target[path[-1]] = copy.deepcopy(value)
    return raw


def error_of(raw: dict[str, Any], environ: dict[str, str] = ENVIRON) -> str:
    with pytest.raises(ConfigError) as info:
        parse_properties(raw, environ)
    return str(info.value)


BAD: list[tuple[str, dict[str, Any], str]] = [
    (
        "unknown-key-top-level",
        changed((("colour",), "blue")),
        "Object contains unknown field `colour` - at `(top level)`",
    ),
    (
        "unknown-key-in-inlet",
        changed((("inlet", "colour"), "blue")),
        "Object contains unknown field `colour` - at `inlet`",
    ),
    (
        "unknown-key-in-retry",
        changed((("retry", "every"), 5)),
        "Object contains unknown field `every` - at `retry`",
    ),
    (
        "unknown-key-in-property",
        changed(((*P, "colour"), "blue")),
        "Object contains unknown field `colour` - at `properties.oslo-1`",
    ),
    (
        "unknown-key-in-checkin",
        changed(((*P, "checkin"), {"rule": "booking_time", "offset": 5})),
        "Object contains unknown field `offset` - at `properties.oslo-1.checkin`",
    ),
    (
        "unknown-key-in-resource",
        changed(((*P, "resources", "101", "colour"), "blue")),
        "Object contains unknown field `colour` - at `properties.oslo-1.resources.101`",
    ),
    (
        "unknown-key-in-source",
        changed((("sources", SOURCE, "colour"), "blue")),
        "Object contains unknown field `colour` - at `sources.acme-pms`",
    ),
    (
        "unknown-key-in-spectra",
        changed((("spectra", "main"), {**SPECTRA, "colour": "blue"})),
        "Object contains unknown field `colour` - at `spectra.main`",
    ),
    (
        "missing-required-in-property",
        changed(((*P, "name"), REMOVE)),
        "Object missing required field `name` - at `properties.oslo-1`",
    ),
    (
        "missing-inlet-partner",
        changed((("inlet", "partner"), REMOVE)),
        "Object missing required field `partner` - at `inlet`",
    ),
    (
        "missing-inlet",
        changed((("inlet",), REMOVE)),
        "Object missing required field `inlet` - at `(top level)`",
    ),
    (
        "unknown-time-zone",
        changed(((*P, "timezone"), "Europe/Atlantis")),
        "unknown time zone 'Europe/Atlantis' - at `properties.oslo-1.timezone`",
    ),
    (
        "time-zone-not-normalized",
        changed(((*P, "timezone"), "../etc/passwd")),
        "unknown time zone '../etc/passwd' - at `properties.oslo-1.timezone`",
    ),
    (
        "time-zone-not-a-string",
        changed(((*P, "timezone"), 1)),
        "expected an IANA time zone name such as 'Europe/Oslo' - at `properties.oslo-1.timezone`",
    ),
    (
        "send-window-over-72",
        changed(((*P, "send_window_hours"), 73)),
        "Expected `float` <= 72.0 - at `properties.oslo-1.send_window_hours`",
    ),
    (
        "send-window-zero",
        changed(((*P, "send_window_hours"), 0)),
        "Expected `float` > 0.0 - at `properties.oslo-1.send_window_hours`",
    ),
    (
        "group-window-over-72",
        changed(((*P, "group_window_hours"), 100)),
        "Expected `float` <= 72.0 - at `properties.oslo-1.group_window_hours`",
    ),
    (
        "group-window-shorter-than-send-window",
        changed(((*P, "send_window_hours"), 48), ((*P, "group_window_hours"), 24)),
        "properties.oslo-1.group_window_hours: must not be shorter than send_window_hours",
    ),
    (
        "checkin-offset-over-a-day",
        changed(((*P, "checkin"), {"offset_minutes": 1441})),
        "Expected `int` <= 1440 - at `properties.oslo-1.checkin.offset_minutes`",
    ),
    (
        "checkout-offset-under-a-day",
        changed(((*P, "checkout"), {"offset_minutes": -1441})),
        "Expected `int` >= -1440 - at `properties.oslo-1.checkout.offset_minutes`",
    ),
    (
        "checkin-rule-unknown",
        changed(((*P, "checkin"), {"rule": "door_opened"})),
        "Invalid enum value 'door_opened' - at `properties.oslo-1.checkin.rule`",
    ),
    (
        "revoking-status-unknown",
        changed(((*P, "revoking_statuses"), ["cancelled", "gone"])),
        "Invalid enum value 'gone' - at `properties.oslo-1.revoking_statuses[1]`",
    ),
    (
        "revoking-statuses-without-no-show",
        changed(((*P, "revoking_statuses"), ["cancelled", "checked_out"])),
        "properties.oslo-1.revoking_statuses: must include no_show"
        " (a cancelled or no-show stay always loses its access)",
    ),
    (
        "revoking-statuses-without-cancelled-and-no-show",
        changed(((*P, "revoking_statuses"), [])),
        "properties.oslo-1.revoking_statuses: must include cancelled, no_show"
        " (a cancelled or no-show stay always loses its access)",
    ),
    (
        "communication-unknown",
        changed(((*P, "communication"), {"agency": "fax"})),
        "Invalid enum value 'fax' - at `properties.oslo-1.communication.agency`",
    ),
    (
        "operation-unknown",
        changed(((*P, "operation"), "open")),
        "Invalid enum value 'open' - at `properties.oslo-1.operation`",
    ),
    (
        "lead-negative",
        changed(((*P, "unassigned_room_lead_hours"), -1)),
        "Expected `float` >= 0.0 - at `properties.oslo-1.unassigned_room_lead_hours`",
    ),
    (
        "resource-without-access-points",
        changed(((*P, "resources", "101", "access_points"), [])),
        "Expected `array` of length >= 1 - at `properties.oslo-1.resources.101.access_points`",
    ),
    (
        "resource-kind-unknown",
        changed(((*P, "resources", "101", "kind"), "castle")),
        "Invalid enum value 'castle' - at `properties.oslo-1.resources.101.kind`",
    ),
    (
        "resources-not-a-table",
        changed(((*P, "resources"), ["101"])),
        "Expected `object`, got `array` - at `properties.oslo-1.resources`",
    ),
    (
        "property-not-a-table",
        changed((("properties", "bergen-1"), "Bergen")),
        "Expected `object`, got `str` - at `properties.bergen-1`",
    ),
    (
        "properties-not-a-table",
        changed((("properties",), ["oslo-1"])),
        "properties: expected a table",
    ),
    (
        "retry-interval-zero",
        changed((("retry", "interval_minutes"), 0)),
        "Expected `float` > 0.0 - at `retry.interval_minutes`",
    ),
    (
        "retry-attempts-zero",
        changed((("retry", "max_attempts"), 0)),
        "Expected `int` >= 1 - at `retry.max_attempts`",
    ),
    (
        "retry-minutes-not-a-number",
        changed((("retry", "max_minutes"), "an hour")),
        "Expected `float`, got `str` - at `retry.max_minutes`",
    ),
    (
        "inlet-timeout-too-long",
        changed((("inlet", "timeout_seconds"), 121)),
        "Expected `float` <= 120.0 - at `inlet.timeout_seconds`",
    ),
    (
        "secret-inline",
        changed(((*P, "inlet_api_key"), "the-key")),
        'a secret must be { env = "NAME" } or { file = "/path" }, never inline'
        " - at `properties.oslo-1.inlet_api_key`",
    ),
    (
        "secret-with-both-env-and-file",
        changed(((*P, "inlet_api_key"), {"env": "INLET_KEY", "file": "/key"})),
        'a secret must be { env = "NAME" } or { file = "/path" }, never inline'
        " - at `properties.oslo-1.inlet_api_key`",
    ),
    (
        "secret-with-unknown-key",
        changed(((*P, "inlet_api_key"), {"value": "the-key"})),
        'a secret must be { env = "NAME" } or { file = "/path" }, never inline'
        " - at `properties.oslo-1.inlet_api_key`",
    ),
    (
        "secret-env-missing",
        changed(((*P, "inlet_api_key"), {"env": "INLET_KEY_MISSING"})),
        "environment variable INLET_KEY_MISSING is not set - at `properties.oslo-1.inlet_api_key`",
    ),
    (
        "source-token-inline",
        changed((("sources", SOURCE, "token"), "pms-token")),
        'a secret must be { env = "NAME" } or { file = "/path" }, never inline'
        " - at `sources.acme-pms.token`",
    ),
    (
        "signing-secret-env-missing",
        changed((("sources", SOURCE, "signing_secrets"), [{"env": "PMS_TOKEN"}, {"env": "NOPE"}])),
        "environment variable NOPE is not set - at `sources.acme-pms.signing_secrets[1]`",
    ),
    (
        "secret-file-missing",
        changed(((*P, "inlet_api_key"), {"file": "/nonexistent/inlet.key"})),
        "cannot read secret file /nonexistent/inlet.key: No such file or directory"
        " - at `properties.oslo-1.inlet_api_key`",
    ),
    (
        "door-capacity-on-unused-door",
        changed(((*P, "doors"), {"BACK-DOOR": {"capacity": 5}})),
        "properties.oslo-1.doors.BACK-DOOR: not used by any resource or common door",
    ),
    (
        "spectra-unknown-property",
        changed((("spectra", "main"), {**SPECTRA, "property_id": "bergen-1"})),
        "spectra.main.property_id: no property 'bergen-1' is configured",
    ),
    (
        "spectra-hotel-code-too-long",
        changed((("spectra", "main"), {**SPECTRA, "hotel_code": "HOTELCODE-11"})),
        "Expected `str` of length <= 10 - at `spectra.main.hotel_code`",
    ),
    (
        "spectra-password-env-missing",
        changed((("spectra", "main"), {**SPECTRA, "password": {"env": "SPECTRA_PASSWORD"}})),
        "environment variable SPECTRA_PASSWORD is not set - at `spectra.main.password`",
    ),
    # -- trust boundaries: who may touch which hotel, and where credentials may go
    (
        "inlet-base-url-missing",
        changed((("inlet", "base_url"), REMOVE)),
        "Object missing required field `base_url` - at `inlet`",
    ),
    (
        "inlet-base-url-plain-http",
        changed((("inlet", "base_url"), "http://inlet.example")),
        "inlet.base_url: must be an https:// URL (plain http only for loopback: 127.0.0.1,"
        " ::1, localhost, or a host listed in plain_http_hosts)",
    ),
    (
        "property-inlet-base-url-plain-http",
        changed(((*P, "inlet_base_url"), "http://inlet-eu.example")),
        "properties.oslo-1.inlet_base_url: must be an https:// URL (plain http only for"
        " loopback: 127.0.0.1, ::1, localhost, or a host listed in plain_http_hosts)",
    ),
    (
        "spectra-base-url-plain-http",
        changed((("spectra", "main"), {**SPECTRA, "base_url": "http://spectra.invalid"})),
        "spectra.main.base_url: must be an https:// URL (plain http only for loopback:"
        " 127.0.0.1, ::1, localhost, or a host listed in plain_http_hosts)",
    ),
    (
        "plain-http-host-with-a-scheme",
        changed((("plain_http_hosts",), ["http://inlet-imitation"])),
        "plain_http_hosts[0]: a host name only (no scheme, port or path), not loopback",
    ),
    (
        "plain-http-host-listed-for-another-host",
        changed(
            (("plain_http_hosts",), ["inlet-imitation"]),
            (("inlet", "base_url"), "http://inlet.example"),
        ),
        "inlet.base_url: must be an https:// URL (plain http only for loopback: 127.0.0.1,"
        " ::1, localhost, or a host listed in plain_http_hosts)",
    ),
    (
        "source-without-properties",
        changed((("sources", SOURCE, "properties"), REMOVE)),
        "Object missing required field `properties` - at `sources.acme-pms`",
    ),
    (
        "source-with-no-property",
        changed((("sources", SOURCE, "properties"), [])),
        "Expected `array` of length >= 1 - at `sources.acme-pms.properties`",
    ),
    (
        "source-unknown-property",
        changed((("sources", SOURCE, "properties"), [PROPERTY_ID, "bergen-1"])),
        "sources.acme-pms.properties[1]: no property 'bergen-1' is configured",
    ),
    (
        "webhook-url-not-a-url",
        changed((("sources", SOURCE, "webhook_url"), "not a url")),
        "sources.acme-pms.webhook_url: must be an https:// URL",
    ),
    (
        "webhook-url-plain-http",
        changed((("sources", SOURCE, "webhook_url"), "http://pms.example/hooks")),
        "sources.acme-pms.webhook_url: must be an https:// URL (plain http only for loopback:"
        " 127.0.0.1, ::1, localhost, or a host listed in plain_http_hosts)",
    ),
    (
        "rate-limit-zero",
        changed((("sources", SOURCE, "rate_limit"), {"per_second": 0})),
        "Expected `float` > 0.0 - at `sources.acme-pms.rate_limit.per_second`",
    ),
    (
        "token-shared-by-two-sources",
        changed(
            (("sources", "other-pms"), {"properties": [PROPERTY_ID], "token": {"env": "PMS_TOKEN"}})
        ),
        "sources.other-pms.token: the same token as sources.acme-pms.token; give each its own",
    ),
    (
        "spectra-source-serving-another-property",
        changed(
            (("spectra", "main"), SPECTRA),
            (("sources", "spectra-main"), {"properties": [PROPERTY_ID, PROPERTY_ID + "x"]}),
        ),
        "sources.spectra-main.properties: the source of spectra.main serves only its property"
        " ['oslo-1']",
    ),
    (
        "operator-unknown-role",
        changed((("operators", "ola"), {"token": {"env": "INLET_KEY"}, "role": "root"})),
        "Invalid enum value 'root' - at `operators.ola.role`",
    ),
    (
        "operator-unknown-property",
        changed(
            (
                ("operators", "ola"),
                {"token": {"env": "INLET_KEY"}, "role": "viewer", "properties": ["bergen-1"]},
            )
        ),
        "operators.ola.properties[0]: no property 'bergen-1' is configured",
    ),
    (
        "operator-with-a-source-token",
        changed((("operators", "ola"), {"token": {"env": "PMS_TOKEN"}, "role": "admin"})),
        "operators.ola.token: the same token as sources.acme-pms.token; give each its own",
    ),
    (
        "operator-named-like-admin-token",
        changed((("operators", "ADMIN_TOKEN"), {"token": {"env": "INLET_KEY"}, "role": "admin"})),
        "operators.ADMIN_TOKEN: the name is kept for the ADMIN_TOKEN operator",
    ),
]


@pytest.mark.parametrize(("raw", "message"), [pytest.param(r, m, id=i) for i, r, m in BAD])
def test_bad_configuration_is_refused_naming_the_key(raw: dict[str, Any], message: str) -> None:
    assert error_of(raw) == message


def test_empty_environment_variable_is_not_set() -> None:
    assert error_of(base_config(), {**ENVIRON, "INLET_KEY": ""}) == (
        "environment variable INLET_KEY is not set - at `properties.oslo-1.inlet_api_key`"
    )


@pytest.mark.parametrize(
    ("doors", "key"),
    [
        pytest.param({"MAIN": {"capacity": 0}}, "capacity", id="door-capacity-zero"),
        pytest.param({"MAIN": {"capacity": 5, "colour": "red"}}, "colour", id="door-unknown-key"),
    ],
)
def test_bad_door_names_the_door(doors: dict[str, Any], key: str) -> None:
    message = error_of(changed(((*P, "doors"), doors)))

    assert "properties.oslo-1.doors.MAIN" in message
    assert key in message


# --- good values ---------------------------------------------------------------------------


def test_base_configuration_and_defaults() -> None:
    config = parse_properties(base_config(), ENVIRON)

    assert config.inlet == InletSettings(partner="Test Partner", base_url="https://inlet.example")
    assert config.retry == RetryPolicy(interval_minutes=5.0, max_attempts=30, max_minutes=60.0)
    assert config.spectra == {}
    assert config.sources[SOURCE].token == Secret("pms-token")
    assert config.sources[SOURCE].properties == (PROPERTY_ID,)
    assert config.sources[SOURCE].rate_limit == RateLimit(per_second=50.0, burst=100)
    assert config.served_properties(SOURCE) == {PROPERTY_ID}
    assert config.served_properties("unknown-pms") == frozenset()
    assert config.operators == {}
    prop = config.properties[PROPERTY_ID]
    assert prop.timezone == ZoneInfo("Europe/Oslo")
    assert prop.inlet_api_key.reveal() == "inlet-key"
    assert (prop.send_window_hours, prop.group_window_hours) == (24.0, None)
    assert prop.checkin == CheckRule(rule="booking_time", offset_minutes=0)
    assert prop.checkout == CheckRule(rule="booking_time", offset_minutes=0)
    assert prop.revoking_statuses == ("cancelled", "no_show", "checked_out")
    assert prop.communication == CommunicationDefaults(
        private="guest", company="guest", agency="none", group="organizer"
    )
    assert (prop.unassigned_room_lead_hours, prop.operation) == (4.0, "code")
    assert prop.resources["201"] == Resource(
        access_points=("L-201",), kind="room", common_doors=("MAIN", "FLOOR-2")
    )
    assert prop.resources["101"].common_doors is None


@pytest.mark.parametrize(
    ("doors", "expected"),
    [
        pytest.param({"MAIN": {"capacity": 3}}, {"MAIN": Door(capacity=3)}, id="common-door"),
        pytest.param({"FLOOR-2": {}}, {"FLOOR-2": Door(capacity=None)}, id="resource-common-door"),
        pytest.param({"L-102": {"capacity": 1}}, {"L-102": Door(capacity=1)}, id="room-lock"),
    ],
)
def test_door_capacity_on_a_used_door(doors: dict[str, Any], expected: dict[str, Door]) -> None:
    config = parse_properties(changed(((*P, "doors"), doors)), ENVIRON)

    assert config.properties[PROPERTY_ID].doors == expected


@pytest.mark.parametrize(
    ("send", "group"),
    [
        pytest.param(24, 24, id="equal-windows"),
        pytest.param(24, 72, id="longer-group-window"),
        pytest.param(72, 72, id="both-at-hard-max"),
    ],
)
def test_group_window_not_shorter_is_accepted(send: float, group: float) -> None:
    raw = changed(((*P, "send_window_hours"), send), ((*P, "group_window_hours"), group))

    prop = parse_properties(raw, ENVIRON).properties[PROPERTY_ID]

    assert (prop.send_window_hours, prop.group_window_hours) == (send, group)


@pytest.mark.parametrize(
    "statuses",
    [
        pytest.param(["cancelled", "no_show"], id="only-the-required"),
        pytest.param(["no_show", "cancelled", "checked_out"], id="checked-out-added"),
        pytest.param(["cancelled", "no_show", "checked_in"], id="any-status-added"),
    ],
)
def test_revoking_statuses_that_include_cancelled_and_no_show_are_accepted(
    statuses: list[str],
) -> None:
    raw = changed(((*P, "revoking_statuses"), statuses))

    prop = parse_properties(raw, ENVIRON).properties[PROPERTY_ID]

    assert prop.revoking_statuses == tuple(statuses)


def test_secret_file_is_read_relative_to_the_base(tmp_path: Path) -> None:
    (tmp_path / "inlet.key").write_text("  key-from-file\n")
    raw = changed(((*P, "inlet_api_key"), {"file": "inlet.key"}))

    config = parse_properties(raw, ENVIRON, tmp_path)

    assert config.properties[PROPERTY_ID].inlet_api_key.reveal() == "key-from-file"


def test_secret_file_by_absolute_path(tmp_path: Path) -> None:
    key = tmp_path / "secrets" / "inlet.key"
    key.parent.mkdir()
    key.write_text("absolute-key")
    raw = changed(((*P, "inlet_api_key"), {"file": str(key)}))

    config = parse_properties(raw, ENVIRON, Path("/elsewhere"))

    assert config.properties[PROPERTY_ID].inlet_api_key.reveal() == "absolute-key"


def test_secret_is_never_shown() -> None:
    config = parse_properties(base_config(), ENVIRON)

    shown = repr(config) + str(config.properties[PROPERTY_ID].inlet_api_key)

    assert "inlet-key" not in shown
    assert "pms-token" not in shown
    assert repr(config.sources[SOURCE].token) == "Secret('***')"


def test_spectra_connection() -> None:
    config = parse_properties(changed((("spectra", "main"), SPECTRA)), ENVIRON)

    connection = config.spectra["main"]
    assert (connection.property_id, connection.hotel_code) == (PROPERTY_ID, "OSL1")
    assert connection.username.reveal() == "pms-token"
    assert (connection.poll_interval_seconds, connection.write_back) == (60.0, True)
    assert config.spectra_for_source("spectra-main") == ("main", connection)
    assert config.spectra_for_source(SOURCE) is None


# --- the demo file -------------------------------------------------------------------------


def test_demo_file_loads() -> None:
    config = load_properties(DEMO, DEMO_ENV)

    assert config.inlet == InletSettings(
        partner="Inlet Bridge Demo", base_url="http://127.0.0.1:8081", timeout_seconds=10.0
    )
    assert config.retry == RetryPolicy()
    assert config.sources["demo-pms"].token == Secret("demo-token")
    assert config.sources["demo-pms"].signing_secrets == (Secret("whsec_c2VjcmV0"),)
    prop = config.properties["oslo-1"]
    assert (prop.name, prop.timezone) == ("Demo Hotel Oslo", ZoneInfo("Europe/Oslo"))
    assert prop.inlet_api_key == Secret("inlet-key-oslo-1")
    assert (prop.send_window_hours, prop.group_window_hours) == (24.0, 72.0)
    assert prop.common_doors == ("MAIN-ENTRANCE", "NIGHT-ENTRANCE")
    assert prop.doors == {"MAIN-ENTRANCE": Door(capacity=1000)}
    assert sorted(prop.resources) == ["101", "102", "201", "202", "Fjord"]
    assert prop.resources["201"].common_doors == ("MAIN-ENTRANCE", "NIGHT-ENTRANCE", "FLOOR-2")
    assert prop.resources["Fjord"] == Resource(
        access_points=("L-FJORD",), kind="meeting_room", common_doors=("MAIN-ENTRANCE",)
    )


def test_demo_file_needs_its_secrets() -> None:
    env = {k: v for k, v in DEMO_ENV.items() if k != "INLET_API_KEY_OSLO_1"}

    with pytest.raises(ConfigError) as info:
        load_properties(DEMO, env)

    assert str(info.value) == (
        "environment variable INLET_API_KEY_OSLO_1 is not set - at `properties.oslo-1.inlet_api_key`"
    )


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"

    with pytest.raises(ConfigError) as info:
        load_properties(path, DEMO_ENV)

    assert str(info.value) == "cannot read the file: No such file or directory"


def test_invalid_toml(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('[inlet]\npartner = "unterminated\n')

    with pytest.raises(ConfigError) as info:
        load_properties(path, DEMO_ENV)

    assert str(info.value).startswith("is not valid TOML: ")
    assert "line 2" in str(info.value)


def test_secret_file_next_to_the_properties_file(tmp_path: Path) -> None:
    (tmp_path / "inlet.key").write_text("key-beside\n")
    (tmp_path / "properties.toml").write_text(
        '[inlet]\npartner = "P"\nbase_url = "https://inlet.example"\n\n[properties.h1]\nname = "H"\ntimezone = "UTC"\n'
        'inlet_api_key = { file = "inlet.key" }\n'
    )

    config = load_properties(tmp_path / "properties.toml", {})

    assert config.properties["h1"].inlet_api_key == Secret("key-beside")
    assert config.properties["h1"].timezone == ZoneInfo("UTC")


@pytest.mark.parametrize(
    "url",
    [
        "https://pms.example/hooks",
        "http://127.0.0.1:9000/hooks",
        "http://[::1]/h",
        "http://localhost/h",
    ],
)
def test_webhook_url_https_or_plain_http_on_loopback(url: str) -> None:
    config = parse_properties(changed((("sources", SOURCE, "webhook_url"), url)), ENVIRON)

    assert config.sources[SOURCE].webhook_url == url


def test_operators_and_a_spectra_source_are_bound_to_their_properties() -> None:
    config = parse_properties(
        changed(
            (("spectra", "main"), SPECTRA),
            (("operators", "ola"), {"token": {"env": "INLET_KEY"}, "role": "viewer"}),
            (
                ("operators", "kari"),
                {
                    "token": {"env": "SPECTRA_TOKEN"},
                    "role": "operator",
                    "properties": [PROPERTY_ID],
                },
            ),
        ),
        {**ENVIRON, "SPECTRA_TOKEN": "kari-token"},
    )

    assert config.served_properties("spectra-main") == {PROPERTY_ID}
    assert config.operators["ola"] == Operator(token=Secret("inlet-key"), role="viewer")
    assert config.operators["kari"].properties == (PROPERTY_ID,)


def test_a_host_listed_in_plain_http_hosts_is_reached_over_plain_http() -> None:
    raw = changed(
        (("plain_http_hosts",), ["inlet-imitation", "PMS.internal"]),
        (("inlet", "base_url"), "http://inlet-imitation:8080"),
        (("sources", SOURCE, "webhook_url"), "http://pms.internal/hooks"),
    )

    config = parse_properties(raw, ENVIRON)

    assert config.inlet.base_url == "http://inlet-imitation:8080"
    assert config.sources[SOURCE].webhook_url == "http://pms.internal/hooks"
    assert config.plain_http_hosts == ("inlet-imitation", "PMS.internal")
