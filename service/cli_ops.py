"""How does an operator act from a shell? `inlet-bridge escalations`, `resync` and `audit`.

They talk to the database directly (same settings as `serve`); the running service's workers
pick up what they queue. Whoever can run them holds the database's credentials, so they act
as an admin; each action is written to the audit trail as `cli:<name>` (`--as`, or the
shell's user). Inlet's messages are scrubbed of emails and phone numbers, as in the API.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
from datetime import UTC, datetime

from service.logs import Masker
from service.settings import Settings
from service.store.audit import Actor, AuditStore
from service.store.db import Database, open_database
from service.store.escalations import EscalationStore


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
        "--as", dest="as_operator", help="your name, for the audit trail (default: the shell user)"
    )


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = commands.add_parser("audit", help="the audit trail: reveals and operator actions")
    audit.add_argument("--booking", help="source:booking_id")
    audit.add_argument("--operator")
    audit.add_argument("--action", choices=["reveal", "retry", "resolve", "resync"])
    audit.add_argument("--limit", type=int, default=50)
    parser = commands.add_parser("escalations", help="list, retry or resolve escalations")
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="open escalations (newest first)")
    listing.add_argument("--all", action="store_true", help="resolved ones too")
    listing.add_argument("--severity", choices=["critical", "high", "warning"])
    for name in ("retry", "resolve"):
        action = actions.add_parser(name)
        action.add_argument("id", type=int)
        action.add_argument("--note", required=True, help="what was done, for the record")
        add_as_option(action)


def database(settings: Settings) -> contextlib.AbstractAsyncContextManager[Database]:
    return open_database(settings.database_url, settings.data_dir)


async def run_escalations(settings: Settings, args: argparse.Namespace) -> int:
    async with database(settings) as db:
        store = EscalationStore(db)
        now = datetime.now(UTC)
        if args.action == "list":
            masker = Masker(settings.log_mask_key)
            found = await store.list(open_only=None if args.all else True, severity=args.severity)
            for e in found:
                state = "open" if e.resolved_at is None else f"resolved ({e.resolved_note})"
                print(
                    f"#{e.id} {e.severity:8} {e.operation or '-':7} {e.reason:20}"
                    f" {e.source}/{e.booking_id} {e.grant_key} {state}:"
                    f" {masker.scrub(e.message or '')}"
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
        return 0


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
