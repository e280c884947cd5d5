"""How does an operator act from a shell? `inlet-bridge escalations` and `inlet-bridge resync`.

Both talk to the database directly (same settings as `serve`); the running service's workers
pick up what they queue.
"""

from __future__ import annotations

import argparse
import contextlib
from datetime import UTC, datetime

from service.settings import Settings
from service.store.db import Database, open_database
from service.store.escalations import EscalationStore


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("escalations", help="list, retry or resolve escalations")
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="open escalations (newest first)")
    listing.add_argument("--all", action="store_true", help="resolved ones too")
    listing.add_argument("--severity", choices=["critical", "high", "warning"])
    for name in ("retry", "resolve"):
        action = actions.add_parser(name)
        action.add_argument("id", type=int)
        action.add_argument("--note", required=True, help="what was done, for the record")


def database(settings: Settings) -> contextlib.AbstractAsyncContextManager[Database]:
    return open_database(settings.database_url, settings.data_dir)


async def run_escalations(settings: Settings, args: argparse.Namespace) -> int:
    async with database(settings) as db:
        store = EscalationStore(db)
        now = datetime.now(UTC)
        if args.action == "list":
            found = await store.list(open_only=None if args.all else True, severity=args.severity)
            for e in found:
                state = "open" if e.resolved_at is None else f"resolved ({e.resolved_note})"
                print(
                    f"#{e.id} {e.severity:8} {e.operation or '-':7} {e.reason:20}"
                    f" {e.source}/{e.booking_id} {e.grant_key} {state}: {e.message or ''}"
                )
            print(f"{len(found)} escalation(s)")
            return 0
        if args.action == "retry":
            outcome = await store.retry(args.id, note=args.note, now=now)
        else:
            outcome = await store.resolve(args.id, note=args.note, now=now)
        if outcome == "not_found":
            print(f"no open escalation #{args.id}")
            return 1
        print(f"escalation #{args.id}: {outcome}")
        return 0
