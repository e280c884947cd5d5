"""How does an operator act from a shell? `inlet-bridge escalations`, `resync` and `audit`.

They talk to the database directly (same settings as `serve`); the running service's workers
pick up what they queue. Whoever can run them holds the database's credentials, so they act
as an admin; each action is written to the audit trail as `cli:<name>` (`--as`, or the
shell's user). Inlet's messages are scrubbed of emails and phone numbers, as in the API.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
from datetime import UTC, datetime, timedelta

from inlet_bridge.domain.wording import doors
from inlet_bridge.logs import Masker
from inlet_bridge.settings import Settings
from inlet_bridge.store.audit import Actor, AuditStore
from inlet_bridge.store.db import Database, open_database
from inlet_bridge.store.escalations import EscalationStore
from inlet_bridge.store.oncall import OnCallStore

# How often `escalations retry --follow` looks at the call.
FOLLOW_SECONDS = 2.0


def actor(args: argparse.Namespace) -> Actor:
    """The shell's operator, as the audit trail names them."""
    name = getattr(args, "as_operator", None)
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):  # a container user without a passwd entry
            name = "unknown"
    return Actor(operator=f"cli:{name}", role="admin")


def add_as_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--as",
        dest="as_operator",
        help="your name, for the audit trail (default: the shell's user)",
    )


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = commands.add_parser("audit", help="the audit trail: reveals and operator actions")
    audit.add_argument("--booking", help="only this booking, as source:booking_id")
    audit.add_argument("--operator", help="only this operator's rows")
    audit.add_argument(
        "--action", choices=["reveal", "retry", "resolve", "resync"], help="only this action"
    )
    audit.add_argument("--limit", type=int, default=50, help="most rows shown (1-500)")
    parser = commands.add_parser("escalations", help="list, retry or resolve escalations")
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser(
        "list", help="open escalations, critical first: hotel, booking, doors, reference, age"
    )
    listing.add_argument("--all", action="store_true", help="resolved ones too")
    listing.add_argument(
        "--severity", choices=["critical", "high", "warning"], help="only this severity"
    )
    listing.add_argument("--property", dest="property_id", help="only this hotel's")
    for name, what in (
        ("retry", "plan the call again (and follow it with --follow)"),
        ("resolve", "record that a person dealt with it"),
    ):
        action = actions.add_parser(name, help=what)
        action.add_argument("id", type=int, help="the escalation's number")
        action.add_argument("--note", required=True, help="what was done, for the record")
        add_as_option(action)
        if name == "retry":
            action.add_argument(
                "--follow",
                action="store_true",
                help="wait and print the new call's progress until it succeeds or fails again",
            )
            action.add_argument(
                "--timeout",
                type=float,
                default=600.0,
                help="with --follow: give up waiting after this many seconds",
            )


def database(settings: Settings) -> contextlib.AbstractAsyncContextManager[Database]:
    return open_database(settings.database_url, settings.data_dir)


async def run_escalations(settings: Settings, args: argparse.Namespace) -> int:
    async with database(settings) as db:
        store = EscalationStore(db)
        now = datetime.now(UTC)
        if args.action == "list":
            masker = Masker(settings.log_mask_key)
            found = await OnCallStore(db).escalations(
                open_only=None if args.all else True,
                severity=args.severity,
                property_id=args.property_id,
            )
            names = (
                {pid: p.name for pid, p in settings.hotels.properties.items()}
                if (settings.hotels)
                else {}
            )
            for e in found:
                state = "open" if e.resolved_at is None else f"resolved ({e.resolved_note})"
                hotel = names.get(e.property_id, e.property_id)
                print(
                    f"#{e.id} {e.severity:8} {e.operation or 'stay':7} {e.reason:20} {state}\n"
                    f"    hotel {hotel} ({e.property_id}), booking {e.source}/{e.booking_id},"
                    f" age {ago(now - e.created_at)}\n"
                    f"    doors {doors(e.access_points)}, reference {e.reference_id or '-'},"
                    f" valid {_utc(e.valid_from)} to {_utc(e.valid_to)}\n"
                    f"    Inlet: {masker.scrub(e.last_message or '-')}"
                )
            print(f"{len(found)} escalation(s)")
            return 0
        if args.action == "retry":
            outcome = await store.retry(args.id, note=args.note, now=now, actor=actor(args))
        else:
            outcome = await store.resolve(args.id, note=args.note, now=now, actor=actor(args))
        if outcome == "not_found":
            print(f"no open escalation #{args.id}")
            return 1
        print(f"escalation #{args.id}: {outcome}")
        if args.action == "retry" and args.follow:
            return await follow(db, args.id, wait=args.timeout)
        return 0


async def follow(
    db: Database, escalation_id: int, *, wait: float, interval: float = FOLLOW_SECONDS
) -> int:
    """Print the retried call's progress until it is finished: 0 succeeded (or none was
    needed), 1 failed again, 3 still pending after `wait` seconds."""
    store = OnCallStore(db)
    deadline = asyncio.get_running_loop().time() + wait
    said = ""
    while True:
        found = await store.followed(escalation_id)
        assert found is not None
        progress = found[1]
        line = f"  {progress.state}: {progress.words}"
        if progress.escalation_id is not None:
            line += f" (escalation #{progress.escalation_id})"
        if line != said:
            print(line, flush=True)
            said = line
        if progress.finished:
            return 1 if progress.state == "failed_again" else 0
        if asyncio.get_running_loop().time() >= deadline:
            print(f"  still {progress.state} after {wait:g} s; see `escalations list --all`")
            return 3
        await asyncio.sleep(interval)


def _utc(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def ago(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours < 48 else f"{hours // 24} d {hours % 24} h"


async def run_audit(settings: Settings, args: argparse.Namespace) -> int:
    source, booking_id = None, None
    if args.booking:
        source, _, booking_id = args.booking.partition(":")
    async with database(settings) as db:
        rows = await AuditStore(db).list(
            source=source,
            booking_id=booking_id or None,
            operator=args.operator,
            action=args.action,
            limit=max(1, min(args.limit, 500)),
        )
    for r in rows:
        what = f"{r.source}/{r.booking_id}" if r.booking_id else (r.property_id or "-")
        extra = f" escalation #{r.escalation_id}" if r.escalation_id else ""
        extra += f" re-sync #{r.resync_id}" if r.resync_id else ""
        note = f": {r.note}" if r.note else ""
        print(f"#{r.id} {r.at.isoformat()} {r.operator} ({r.role}) {r.action} {what}{extra}{note}")
    print(f"{len(rows)} audit row(s)")
    return 0
