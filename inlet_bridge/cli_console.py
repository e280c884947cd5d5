"""What does the person on call run in a shell? `booking show` (the timeline in the terminal),
`check-config` (every problem of the settings at once), and the help every option shows.

`booking show` reads the same timeline and grant states as the API and the console (masked
unless `--reveal`, which is audited as `cli:<name>`); `check-config` reads the environment and
the properties file as `serve` would, but keeps going after the first problem.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from aiohttp import web

from inlet_bridge.api.access import stays_now
from inlet_bridge.api.auth import OperatorIdentity
from inlet_bridge.api.operators import booking_view
from inlet_bridge.cli_ops import actor, add_as_option, database
from inlet_bridge.clock import SystemClock
from inlet_bridge.domain.config import HotelsConfig, Operator, Property, Source, SpectraConnection
from inlet_bridge.domain.wording import access_in_words
from inlet_bridge.keys import CLOCK, DATABASE, HOTELS, SETTINGS
from inlet_bridge.logs import Masker
from inlet_bridge.properties import ConfigError, _check_references, _convert, _decoder
from inlet_bridge.settings import Settings, SettingsError
from inlet_bridge.store.db import EMBEDDED_MISSING, embedded_available
from inlet_bridge.store.timeline import load_timeline


class DefaultsFormatter(argparse.HelpFormatter):
    """Every option's help line ends with its default (`not set` when there is none)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if not action.option_strings or "%(default)" in text or "default:" in text:
            return text
        if action.default is argparse.SUPPRESS or action.required:
            return text
        if isinstance(action, argparse._StoreTrueAction):
            return f"{text} (default: off)"
        if action.default is None:
            return f"{text} (default: not set)"
        return f"{text} (default: %(default)s)"


def show_defaults(parser: argparse.ArgumentParser) -> None:
    """Have this parser and every subcommand's show their options' defaults."""
    parser.formatter_class = DefaultsFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                show_defaults(sub)


def package_version() -> str:
    try:
        return version("inlet-bridge")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    booking = commands.add_parser("booking", help="one booking's timeline in the terminal")
    actions = booking.add_subparsers(dest="action", required=True)
    show = actions.add_parser("show", help="events, access per stay, Inlet calls, escalations")
    show.add_argument("source", help="the source that sent the booking (e.g. demo-pms)")
    show.add_argument("booking_id", help="the booking's id at that source")
    show.add_argument(
        "--reveal", action="store_true", help="show codes and contact details (audited)"
    )
    add_as_option(show)
    commands.add_parser(
        "check-config",
        help="check the environment and the properties file; list every problem, exit 2 if any",
    )


# -- booking show ---------------------------------------------------------------------------


def _parts(settings: Settings, db: Any) -> web.Application:
    """The app's parts the read functions take (settings, hotels, clock, database)."""
    parts = web.Application()
    parts[SETTINGS] = settings
    parts[HOTELS] = settings.require_hotels()
    parts[CLOCK] = SystemClock()
    parts[DATABASE] = db
    return parts


async def run_booking(settings: Settings, args: argparse.Namespace) -> int:
    try:
        settings.require_hotels()
    except SettingsError as exc:
        print(f"inlet-bridge: {exc}")
        return 2
    async with database(settings) as db:
        parts = _parts(settings, db)
        who = actor(args)
        admin = OperatorIdentity(name=who.operator, role="admin")
        body = await booking_view(
            parts, admin, who, args.source, args.booking_id, reveal=args.reveal
        )
        timeline = await load_timeline(db, args.source, args.booking_id)
        if body is None or timeline is None:
            print(f"no booking {args.source}/{args.booking_id}")
            return 1
        stays = await stays_now(parts, timeline, Masker(settings.log_mask_key))
    for line in timeline_lines(body, stays, parts[HOTELS], datetime.now(UTC)):
        print(line)
    return 0


def timeline_lines(
    body: dict[str, Any], stays: Any, hotels: HotelsConfig, now: datetime
) -> Iterator[str]:
    prop = hotels.properties.get(body["property_id"])
    zone = prop.timezone if prop else ZoneInfo("UTC")

    def at(text: str | None) -> str:
        if text is None:
            return "-"
        return datetime.fromisoformat(text).astimezone(zone).strftime("%Y-%m-%d %H:%M")

    yield f"booking {body['source']}/{body['booking_id']} at {body['property_id']}"
    yield f"  last planned {at(body['reconciled_at'])}, next look {at(body['due_at'])}"
    yield "access:"
    for stay in stays:
        stay_zone = hotels.properties[stay.property_id].timezone if stay.property_id else zone
        words = access_in_words(
            state=stay.state,
            access_points=stay.access_points,
            valid_from=stay.valid_from,
            valid_to=stay.valid_to,
            now=now,
            zone=stay_zone,
            send_after=stay.send_after,
        )
        yield f"  {stay.stay_id}: {stay.state}: {words}"
        yield f"    grant {stay.external_id or stay.grant_key}, reference {stay.reference_id or '-'}"
        if stay.escalation:
            yield f"    escalation: {stay.escalation}"
    grants = {g["stay_id"]: g for g in body["grants"]}
    for stay_id, grant in grants.items():
        code = grant.get("code_formatted") or grant.get("code") or "-"
        yield f"  {stay_id} at Inlet: code {code}, link {grant.get('link') or '-'}"
    yield "events:"
    for event in body["events"]:
        stays_text = ", ".join(
            f"{s['stay_id']} {s['status']} {s.get('resource_id') or 'no room'}"
            for s in event["event"]["booking"]["stays"]
        )
        yield f"  #{event['position']} {at(event['event']['occurred_at'])} {event['event']['event_id']}: {stays_text}"
        for warning in event.get("warnings", []):
            yield f"    warning {warning['path']}: {warning['message']}"
    yield "Inlet calls:"
    for call in body["calls"]:
        yield f"  #{call['id']} {call['operation']} ({call['reason']}) {call['state']}"
        for attempt in call["attempt_log"]:
            status = f" HTTP {attempt['http_status']}" if attempt.get("http_status") else ""
            yield (
                f"    attempt {attempt['attempt']} {at(attempt['started_at'])}:"
                f" {attempt.get('outcome') or 'no answer recorded'}{status}"
                f" {attempt.get('message') or ''}".rstrip()
            )
    yield "deliveries to the PMS:"
    for d in body.get("deliveries", []):
        yield f"  #{d['id']} {d['sink']} {d['kind']} {d['state']} ({d['attempts']} attempts)"
    yield "escalations:"
    for e in body["escalations"]:
        state = "open" if e["resolved_at"] is None else f"resolved: {e['resolved_note']}"
        yield f"  #{e['id']} {e['severity']} {e['operation'] or 'stay'} {e['reason']} {state}"


# -- check-config ---------------------------------------------------------------------------


class _Recording(Mapping[str, str]):
    """An environment that remembers which variables a reader asked for."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        self.asked: list[str] = []

    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def get(self, key: str, default: Any = None) -> Any:
        if key not in self.asked:
            self.asked.append(key)
        return self._values.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def config_problems(environ: Mapping[str, str]) -> list[str]:
    """Every problem of the settings, each naming its variable or properties key."""
    recording = _Recording({})
    Settings.from_env(recording)  # which variables the service reads
    problems: list[str] = []
    for name in recording.asked:
        if name == "PROPERTIES_FILE" or not environ.get(name):
            continue
        try:
            Settings.from_env({name: environ[name]})
        except SettingsError as exc:
            problems.append(str(exc))
    path = environ.get("PROPERTIES_FILE")
    if not path:
        problems.append("PROPERTIES_FILE: not set (the hotels' configuration is required)")
    else:
        problems += [
            f"PROPERTIES_FILE {path}: {p}" for p in properties_problems(Path(path), environ)
        ]
    if not environ.get("DATABASE_URL") and not embedded_available():
        problems.append(EMBEDDED_MISSING)
    if not problems:
        try:  # what depends on several settings together
            Settings.from_env(environ)
        except SettingsError as exc:
            problems.append(str(exc))
    return problems


def properties_problems(path: Path, environ: Mapping[str, str]) -> list[str]:
    """Every table of the file checked on its own, so one bad hotel hides no other."""
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        return [f"cannot read the file: {exc.strerror}"]
    except tomllib.TOMLDecodeError as exc:
        return [f"is not valid TOML: {exc}"]
    hook = _decoder(environ, path.parent)
    problems: list[str] = []
    tables: dict[str, dict[str, Any]] = {}
    for section, struct in (
        ("sources", Source),
        ("properties", Property),
        ("spectra", SpectraConnection),
        ("operators", Operator),
    ):
        table = raw.pop(section, {})
        tables[section] = {}
        if not isinstance(table, dict):
            problems.append(f"{section}: expected a table")
            continue
        for key, value in table.items():
            try:
                tables[section][key] = _convert(value, struct, f"{section}.{key}", hook)
            except ConfigError as exc:
                problems.append(str(exc))
    try:
        top = _convert(raw, HotelsConfig, "", hook)
    except ConfigError as exc:
        return [*problems, str(exc)]
    if problems:
        return problems
    config = msgspec.structs.replace(top, **tables)
    try:
        _check_references(config)
    except ConfigError as exc:
        problems.append(str(exc))
    return problems


def run_check_config(environ: Mapping[str, str] | None = None) -> int:
    problems = config_problems(os.environ if environ is None else environ)
    for problem in problems:
        print(f"inlet-bridge: {problem}")
    if problems:
        print(f"{len(problems)} problem(s); the service would not start")
        return 2
    print("configuration ok")
    return 0
