"""How does an operator re-sync from a shell? `inlet-bridge resync`: count first, then queue and follow.

Without `--yes` it only prints how many active grants match. With `--yes` it queues a
regenerating UpdateAccess for each (the running service's call workers send them, with their
bounded concurrency and retries) and prints progress until every call has settled.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime

from inlet_bridge.cli_ops import actor, add_as_option, database
from inlet_bridge.settings import Settings
from inlet_bridge.store.resync import ResyncSelector, ResyncStore


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("resync", help="re-sync access: new codes for matching grants")
    parser.add_argument("--property", dest="property_id", help="the hotel's grants")
    parser.add_argument(
        "--access-point", dest="access_points", action="append", help="grants on this door (repeat)"
    )
    parser.add_argument(
        "--resource", dest="resource_ids", action="append", help="grants of this room (repeat)"
    )
    parser.add_argument(
        "--booking", dest="bookings", action="append", help="source:booking_id (repeat)"
    )
    parser.add_argument("--note", default=None, help="why, for the audit trail")
    parser.add_argument("--yes", action="store_true", help="queue the calls (default: count only)")
    parser.add_argument("--no-follow", action="store_true", help="do not wait for the calls")
    add_as_option(parser)


async def run_resync(settings: Settings, args: argparse.Namespace) -> int:
    selector = ResyncSelector(
        property_id=args.property_id,
        access_points=tuple(args.access_points) if args.access_points else None,
        resource_ids=tuple(args.resource_ids) if args.resource_ids else None,
        bookings=tuple(args.bookings) if args.bookings else None,
    )
    if selector.is_empty():
        print("inlet-bridge resync: give --property, --access-point, --resource or --booking")
        return 2
    async with database(settings) as db:
        store = ResyncStore(db)
        if not args.yes:
            print(f"{await store.count(selector)} active grants match; run again with --yes")
            return 0
        started = await store.start(
            selector, actor=actor(args), now=datetime.now(UTC), note=args.note
        )
        print(
            f"re-sync {started.resync_id}: {started.matched} matched, {started.queued} queued,"
            f" {started.in_flight} with a call in flight (re-sync those again later)"
        )
        if args.no_follow:
            return 0
        while True:
            progress = await store.progress(started.resync_id)
            assert progress is not None
            print(
                f"  {progress.succeeded} done, {progress.pending} pending,"
                f" {progress.failed} failed (escalated)",
                flush=True,
            )
            if progress.done:
                return 0 if progress.failed == 0 else 1
            await asyncio.sleep(2)
