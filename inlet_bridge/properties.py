"""How is the hotels' configuration read? The properties file and its secrets, checked.

The file (TOML, mounted from a ConfigMap) is decoded into the frozen Structs of
`inlet_bridge/domain/config.py`. Unknown keys and bad values are refused at start-up with a message
naming the key. Secrets are never written inline: each is `{ env = "NAME" }` or
`{ file = "/path" }`, resolved once while loading, from the environment mapping the caller
passes in.
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from inlet_bridge.domain.config import (
    ALWAYS_REVOKING,
    ApaleoConnection,
    Door,
    HotelsConfig,
    Operator,
    Property,
    Resource,
    Source,
    SpectraConnection,
)
from inlet_bridge.domain.secret import Secret


class ConfigError(Exception):
    """The configuration is invalid; the message names the key."""


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


def url_problem(url: str, plain_http_hosts: Collection[str] = ()) -> str | None:
    """Why `url` may not carry credentials or codes: https only, plain http on loopback and on
    the hosts listed in `plain_http_hosts` only."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "is not a URL"
    if parts.scheme not in ("http", "https") or not host:
        return "must be an https:// URL"
    if parts.scheme == "http" and not is_loopback_host(host) and host not in plain_http_hosts:
        return (
            "must be an https:// URL (plain http only for loopback: 127.0.0.1, ::1, localhost,"
            " or a host listed in plain_http_hosts)"
        )
    return None


def _check_references(config: HotelsConfig) -> None:
    """What one key says about another: every property named exists, addresses are https,
    no token is shared; the first problem found is raised, naming its key."""
    plain = frozenset(host.lower() for host in config.plain_http_hosts)
    for i, host in enumerate(config.plain_http_hosts):
        if "/" in host or ":" in host or is_loopback_host(host):
            raise ConfigError(
                f"plain_http_hosts[{i}]: a host name only (no scheme, port or path), not loopback"
            )
    if (problem := url_problem(config.inlet.base_url, plain)) is not None:
        raise ConfigError(f"inlet.base_url: {problem}")
    for name, connection in config.spectra.items():
        _check_spectra(config, name, connection, plain)
    for name, apaleo in config.apaleo.items():
        _check_apaleo(config, name, apaleo, plain)
    tokens: dict[Secret, str] = {}
    for name, source in config.sources.items():
        _check_listed(config, source.properties, f"sources.{name}.properties")
        if source.webhook_url is not None and (problem := url_problem(source.webhook_url, plain)):
            raise ConfigError(f"sources.{name}.webhook_url: {problem}")
        if source.token is not None:
            _unique_token(tokens, source.token, f"sources.{name}.token")
    for name, operator in config.operators.items():
        if name == ADMIN_TOKEN_OPERATOR:
            raise ConfigError(f"operators.{name}: the name is kept for the ADMIN_TOKEN operator")
        _check_listed(config, operator.properties or (), f"operators.{name}.properties")
        _unique_token(tokens, operator.token, f"operators.{name}.token")
    for prop_id, prop in config.properties.items():
        _check_property(prop_id, prop, plain)


def _check_listed(config: HotelsConfig, listed: Sequence[str], key: str) -> None:
    for i, prop_id in enumerate(listed):
        if prop_id not in config.properties:
            raise ConfigError(f"{key}[{i}]: no property {prop_id!r} is configured")


def _check_spectra(
    config: HotelsConfig, name: str, connection: SpectraConnection, plain: frozenset[str]
) -> None:
    # The hotel's Spectra login goes with every request, and codes are written back there.
    if (problem := url_problem(connection.base_url, plain)) is not None:
        raise ConfigError(f"spectra.{name}.base_url: {problem}")
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


def _check_property(prop_id: str, prop: Property, plain: frozenset[str]) -> None:
    if prop.inlet_base_url is not None and (problem := url_problem(prop.inlet_base_url, plain)):
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


def _check_apaleo(
    config: HotelsConfig, name: str, connection: ApaleoConnection, plain: frozenset[str]
) -> None:
    if connection.property_id not in config.properties:
        raise ConfigError(
            f"apaleo.{name}.property_id: no property {connection.property_id!r} is configured"
        )
    for key in ("api_url", "identity_url"):
        if (problem := url_problem(getattr(connection, key), plain)) is not None:
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
