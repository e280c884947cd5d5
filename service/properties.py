"""What does each hotel want: its doors, its rules, its credentials?

The properties file (TOML, mounted from a ConfigMap) is decoded into frozen Structs.
Unknown keys and bad values are refused at start-up with a message naming the key.
Secrets are never written inline: each is `{ env = "NAME" }` or `{ file = "/path" }`,
resolved once while loading, from the environment mapping the caller passes in.
"""

from __future__ import annotations

import hashlib
import ipaddress
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from service.domain.booking import BookingType, Communication, StayStatus
from service.secrets import Secret

HARD_MAX_WINDOW_HOURS = 72  # Inlet: never earlier than 72 h before arrival
# A cancelled, no-show or deleted stay wants no grant, whatever the property lists.
ALWAYS_REVOKING: tuple[StayStatus, ...] = ("cancelled", "no_show")

PositiveMinutes = Annotated[int, msgspec.Meta(ge=0, le=7 * 24 * 60)]
OffsetMinutes = Annotated[int, msgspec.Meta(ge=-24 * 60, le=24 * 60)]
WindowHours = Annotated[float, msgspec.Meta(gt=0, le=HARD_MAX_WINDOW_HOURS)]


class ConfigError(Exception):
    """The configuration is invalid; the message names the key."""


class _Strict(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class InletSettings(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    partner: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    # Required: a production file without it must not quietly talk to a local sandbox.
    base_url: str
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=120)] = 10.0


class RetryPolicy(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Inlet's rule: every 5 minutes, at most 60 minutes, at most 30 attempts; first to run out ends it."""

    interval_minutes: Annotated[float, msgspec.Meta(gt=0, le=120)] = 5.0
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 30
    max_minutes: Annotated[float, msgspec.Meta(gt=0, le=7 * 24 * 60)] = 60.0


class RateLimit(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A source's token bucket: `burst` requests at once, refilled at `per_second`."""

    per_second: Annotated[float, msgspec.Meta(gt=0, le=100_000)] = 50.0
    burst: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 100


class Source(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A PMS (or adapter) allowed to post events for the properties it serves."""

    # The property_ids this source may post events for and read access of (required).
    properties: Annotated[tuple[str, ...], msgspec.Meta(min_length=1)]
    token: Secret | None = None
    signing_secrets: tuple[Secret, ...] = ()
    webhook_url: str | None = None
    webhook_secret: Secret | None = None
    rate_limit: RateLimit = RateLimit()


OperatorRole = Literal["viewer", "operator", "admin"]


class Operator(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A named person (or tool) with a role, optionally limited to some properties."""

    token: Secret
    role: OperatorRole
    properties: Annotated[tuple[str, ...], msgspec.Meta(min_length=1)] | None = None


class Resource(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A room, meeting room or other bookable thing, as the PMS names it."""

    access_points: Annotated[tuple[str, ...], msgspec.Meta(min_length=1)]
    kind: Literal["room", "meeting_room", "other"] = "room"
    common_doors: tuple[str, ...] | None = None  # None: the property's common doors


class Door(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A shared access point's limits (lock systems hold a limited number of codes)."""

    capacity: Annotated[int, msgspec.Meta(ge=1)] | None = None


class CheckRule(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """When access starts (check-in) or ends (check-out): at the booking's time or at the PMS status."""

    rule: Literal["booking_time", "pms_status"] = "booking_time"
    offset_minutes: OffsetMinutes = 0


class CommunicationDefaults(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    private: Communication = "guest"
    company: Communication = "guest"
    agency: Communication = "none"
    group: Communication = "organizer"

    def for_type(self, booking_type: BookingType) -> Communication:
        value: Communication = getattr(self, booking_type)
        return value


class EventRules(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How time from a PMS is trusted: an event's `occurred_at` more than this ahead of its
    receipt is refused (422), and never counts as later than receipt plus this in the fold."""

    max_clock_skew_seconds: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 300.0

    @property
    def max_clock_skew(self) -> timedelta:
        return timedelta(seconds=self.max_clock_skew_seconds)


class InletAccount(msgspec.Struct, frozen=True, kw_only=True):
    """Where a property's calls go: Inlet's base URL and the property's API key; `account` is a
    digest of both, stored with each grant so a 404 is believed only from the grant's account."""

    base_url: str
    api_key: Secret
    account: str


def account_digest(base_url: str, api_key: str) -> str:
    """A short, one-way digest naming an Inlet account (base URL and key) without the key."""
    material = f"{base_url.rstrip('/')}\n{api_key}".encode()
    return hashlib.sha256(material).hexdigest()[:24]


class Property(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One hotel (or other site) and its access rules."""

    name: str
    timezone: ZoneInfo
    inlet_api_key: Secret
    # The Inlet environment of this property; unset: [inlet] base_url.
    inlet_base_url: str | None = None
    send_window_hours: WindowHours = 24.0
    group_window_hours: WindowHours | None = None
    common_doors: tuple[str, ...] = ()
    doors: dict[str, Door] = {}
    resources: dict[str, Resource] = {}
    checkin: CheckRule = CheckRule()
    checkout: CheckRule = CheckRule()
    # Statuses that remove access at once; cancelled and no_show always do (a list without
    # them is refused), the list may add others such as checked_out.
    revoking_statuses: tuple[StayStatus, ...] = ("cancelled", "no_show", "checked_out")
    communication: CommunicationDefaults = CommunicationDefaults()
    unassigned_room_lead_hours: Annotated[float, msgspec.Meta(ge=0, le=72)] = 4.0
    operation: Literal["code", "unlock"] = "code"


class SpectraConnection(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One hotel's Spectra PMS: polled for reservations, written back with access codes.

    Its events carry the source `spectra-<name>`.
    """

    property_id: str
    base_url: str
    username: Secret
    password: Secret
    hotel_code: Annotated[str, msgspec.Meta(min_length=1, max_length=10)]
    poll_interval_seconds: Annotated[float, msgspec.Meta(ge=1, le=3600)] = 60.0
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=120)] = 15.0
    # Hold access while the reservation's balance is unpaid (Inlet's Spectra link can too).
    hold_unpaid: bool = False
    # Hold a stay's access, before its arrival and until check-in, while its room is not in one
    # of these housekeeping states (e.g. ["Clean", "Inspected"]); empty: no room hold.
    hold_until_room_status: tuple[
        Annotated[str, msgspec.Meta(min_length=1, max_length=50)], ...
    ] = ()
    write_back: bool = True
    # How far back a first start (or a gap too old for the feed) fills from the reservation list.
    backfill_hours: Annotated[float, msgspec.Meta(ge=0, le=24 * 30)] = 72.0

    def source(self, name: str) -> str:
        return f"spectra-{name}"


class ApaleoConnection(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One hotel on apaleo: notified by webhook, reservations fetched, codes written back.

    Its events carry the source `apaleo-<name>`; its receiver is
    `POST /v1/adapters/apaleo/<name>/webhook` (docs/contract.md section 4).
    """

    property_id: str
    apaleo_property_id: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    client_id: Secret
    client_secret: Secret
    # The login apaleo's webhook subscription sends (basic auth on the receiver).
    webhook_username: Secret
    webhook_password: Secret
    api_url: str = "https://api.apaleo.com"
    identity_url: str = "https://identity.apaleo.com"
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=120)] = 15.0
    # Rooms as the properties file names them: the unit's name (`A.101`) or its id.
    unit_key: Literal["name", "id"] = "name"
    # How often the reservations of the window ahead are read whole (missed notifications).
    reconcile_interval_seconds: Annotated[float, msgspec.Meta(ge=10, le=24 * 3600)] = 900.0
    write_back: bool = True

    def source(self, name: str) -> str:
        return f"apaleo-{name}"


class HotelsConfig(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    inlet: InletSettings
    retry: RetryPolicy = RetryPolicy()
    events: EventRules = EventRules()
    sources: dict[str, Source] = {}
    properties: dict[str, Property] = {}
    spectra: dict[str, SpectraConnection] = {}
    apaleo: dict[str, ApaleoConnection] = {}
    operators: dict[str, Operator] = {}

    def served_properties(self, source: str) -> frozenset[str]:
        """The properties `source` may post for and read: its list, or its Spectra connection's."""
        served: set[str] = set()
        configured = self.sources.get(source)
        if configured is not None:
            served.update(configured.properties)
        spectra = self.spectra_for_source(source)
        if spectra is not None:
            served.add(spectra[1].property_id)
        apaleo = self.apaleo_for_source(source)
        if apaleo is not None:
            served.add(apaleo[1].property_id)
        return frozenset(served)

    def inlet_account(self, property_id: str) -> InletAccount | None:
        """The Inlet account a property's calls go to; None for a property not configured."""
        prop = self.properties.get(property_id)
        if prop is None:
            return None
        base_url = prop.inlet_base_url or self.inlet.base_url
        key = prop.inlet_api_key
        return InletAccount(
            base_url=base_url, api_key=key, account=account_digest(base_url, key.reveal())
        )

    def apaleo_for_source(self, source: str) -> tuple[str, ApaleoConnection] | None:
        """The apaleo connection whose events carry this source, if any."""
        for name, connection in self.apaleo.items():
            if connection.source(name) == source:
                return name, connection
        return None

    def spectra_for_source(self, source: str) -> tuple[str, SpectraConnection] | None:
        """The Spectra connection whose events carry this source, if any."""
        for name, connection in self.spectra.items():
            if connection.source(name) == source:
                return name, connection
        return None


def _decoder(environ: Mapping[str, str], base: Path) -> Any:
    def dec_hook(type_: type, obj: Any) -> Any:
        if type_ is Secret:
            return _resolve_secret(obj, environ, base)
        if type_ is ZoneInfo:
            if not isinstance(obj, str):
                raise ValueError("expected an IANA time zone name such as 'Europe/Oslo'")
            try:
                return ZoneInfo(obj)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {obj!r}") from None
        raise NotImplementedError(type_)

    return dec_hook


def _resolve_secret(obj: Any, environ: Mapping[str, str], base: Path) -> Secret:
    if not isinstance(obj, dict) or len(obj) != 1 or not ({"env", "file"} >= obj.keys()):
        raise ValueError('a secret must be { env = "NAME" } or { file = "/path" }, never inline')
    if "env" in obj:
        name = obj["env"]
        if name not in environ or not environ[name]:
            raise ValueError(f"environment variable {name} is not set")
        return Secret(environ[name])
    path = base / str(obj["file"])
    try:
        return Secret(path.read_text().strip())
    except OSError as exc:
        raise ValueError(f"cannot read secret file {path}: {exc.strerror}") from None


def parse_properties(
    raw: Mapping[str, Any], environ: Mapping[str, str], base: Path = Path()
) -> HotelsConfig:
    """Turn the parsed TOML into Structs, naming the key of the first problem."""
    hook = _decoder(environ, base)
    raw = dict(raw)
    # msgspec shows dict keys as `[...]`: convert keyed tables one entry at a time to name them.
    keyed: dict[str, dict[str, Any]] = {}
    for section, struct in (
        ("sources", Source),
        ("properties", Property),
        ("spectra", SpectraConnection),
        ("apaleo", ApaleoConnection),
        ("operators", Operator),
    ):
        table = raw.pop(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{section}: expected a table")
        keyed[section] = {}
        for key, value in table.items():
            keyed[section][key] = _convert(value, struct, f"{section}.{key}", hook)
    top = _convert(raw, HotelsConfig, "", hook)
    config: HotelsConfig = msgspec.structs.replace(
        top,
        sources=keyed["sources"],
        properties=keyed["properties"],
        spectra=keyed["spectra"],
        apaleo=keyed["apaleo"],
        operators=keyed["operators"],
    )
    _check_references(config)
    return config


def _convert(value: Any, type_: Any, path: str, hook: Any) -> Any:
    if type_ is Property and isinstance(value, dict):
        # resources and doors are keyed tables too: convert entry by entry to name the key
        value = dict(value)
        tables: dict[str, dict[str, Any]] = {}
        for table, struct in (("resources", Resource), ("doors", Door)):
            if isinstance(value.get(table), dict):
                tables[table] = {
                    key: _convert(entry, struct, f"{path}.{table}.{key}", hook)
                    for key, entry in value.pop(table).items()
                }
        prop = _convert_plain(value, Property, path, hook)
        return msgspec.structs.replace(prop, **tables) if tables else prop
    return _convert_plain(value, type_, path, hook)


def _convert_plain(value: Any, type_: Any, path: str, hook: Any) -> Any:
    try:
        return msgspec.convert(value, type_, dec_hook=hook)
    except msgspec.ValidationError as exc:
        message = str(exc)
        if " - at `$" in message:
            message = message.replace("`$", f"`{path}" if path else "`", 1).replace("`.", "`", 1)
        else:
            message = f"{message} - at `{path or '(top level)'}`"
        raise ConfigError(message) from None


# The name ADMIN_TOKEN's operator has in the audit trail; no configured operator may take it.
ADMIN_TOKEN_OPERATOR = "ADMIN_TOKEN"  # noqa: S105 - a name, not a secret


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(url: str) -> str | None:
    """Why `url` may not carry credentials or codes: https only, plain http on loopback only."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "is not a URL"
    if parts.scheme not in ("http", "https") or not host:
        return "must be an https:// URL"
    if parts.scheme == "http" and not is_loopback_host(host):
        return "must be an https:// URL (plain http only for loopback: 127.0.0.1, ::1, localhost)"
    return None


def _check_references(config: HotelsConfig) -> None:
    if (problem := url_problem(config.inlet.base_url)) is not None:
        raise ConfigError(f"inlet.base_url: {problem}")
    for name, connection in config.spectra.items():
        if connection.property_id not in config.properties:
            raise ConfigError(
                f"spectra.{name}.property_id: no property {connection.property_id!r} is configured"
            )
        source = config.sources.get(connection.source(name))
        if source is not None and set(source.properties) != {connection.property_id}:
            raise ConfigError(
                f"sources.{connection.source(name)}.properties: the source of spectra.{name}"
                f" serves only its property [{connection.property_id!r}]"
            )
    for name, apaleo in config.apaleo.items():
        _check_apaleo(config, name, apaleo)
    tokens: dict[Secret, str] = {}
    for name, source in config.sources.items():
        for i, prop_id in enumerate(source.properties):
            if prop_id not in config.properties:
                raise ConfigError(
                    f"sources.{name}.properties[{i}]: no property {prop_id!r} is configured"
                )
        if source.webhook_url is not None and (problem := url_problem(source.webhook_url)):
            raise ConfigError(f"sources.{name}.webhook_url: {problem}")
        if source.token is not None:
            _unique_token(tokens, source.token, f"sources.{name}.token")
    for name, operator in config.operators.items():
        if name == ADMIN_TOKEN_OPERATOR:
            raise ConfigError(f"operators.{name}: the name is kept for the ADMIN_TOKEN operator")
        for i, prop_id in enumerate(operator.properties or ()):
            if prop_id not in config.properties:
                raise ConfigError(
                    f"operators.{name}.properties[{i}]: no property {prop_id!r} is configured"
                )
        _unique_token(tokens, operator.token, f"operators.{name}.token")
    for prop_id, prop in config.properties.items():
        if prop.inlet_base_url is not None and (problem := url_problem(prop.inlet_base_url)):
            raise ConfigError(f"properties.{prop_id}.inlet_base_url: {problem}")
        for door in prop.doors:
            if door not in prop.common_doors and not any(
                door in (res.common_doors or ()) or door in res.access_points
                for res in prop.resources.values()
            ):
                raise ConfigError(
                    f"properties.{prop_id}.doors.{door}: not used by any resource or common door"
                )
        missing = [s for s in ALWAYS_REVOKING if s not in prop.revoking_statuses]
        if missing:
            raise ConfigError(
                f"properties.{prop_id}.revoking_statuses: must include {', '.join(missing)}"
                " (a cancelled or no-show stay always loses its access)"
            )
        if prop.group_window_hours is not None and prop.group_window_hours < prop.send_window_hours:
            raise ConfigError(
                f"properties.{prop_id}.group_window_hours: must not be shorter than send_window_hours"
            )


def _check_apaleo(config: HotelsConfig, name: str, connection: ApaleoConnection) -> None:
    if connection.property_id not in config.properties:
        raise ConfigError(
            f"apaleo.{name}.property_id: no property {connection.property_id!r} is configured"
        )
    for key in ("api_url", "identity_url"):
        if (problem := url_problem(getattr(connection, key))) is not None:
            raise ConfigError(f"apaleo.{name}.{key}: {problem}")
    source = connection.source(name)
    configured = config.sources.get(source)
    if configured is not None and set(configured.properties) != {connection.property_id}:
        raise ConfigError(
            f"sources.{source}.properties: the source of apaleo.{name} serves only its"
            f" property [{connection.property_id!r}]"
        )


def _unique_token(seen: dict[Secret, str], token: Secret, key: str) -> None:
    """One token names one caller: a token shared by two would authenticate as either."""
    if token in seen:
        raise ConfigError(f"{key}: the same token as {seen[token]}; give each its own")
    seen[token] = key


def load_properties(path: Path, environ: Mapping[str, str]) -> HotelsConfig:
    """Read and check the properties file; raise ConfigError naming the key on any problem."""
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"is not valid TOML: {exc}") from None
    return parse_properties(raw, environ, path.parent)
