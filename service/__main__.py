"""How is the service run? The `inlet-bridge` command: serve, migrate, demo, sandbox, emulators."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from service import cli_ops, cli_resync
from service.logs import Masker, configure_logging
from service.settings import Settings, SettingsError, random_mask_key
from service.store.db import EMBEDDED_MISSING, embedded_available


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inlet-bridge", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the service (settings from the environment)")
    commands.add_parser("migrate", help="apply pending database migrations and exit")
    demo = commands.add_parser(
        "demo", help="run the service with the demo hotel and sample bookings"
    )
    demo.add_argument("--once", action="store_true", help="exit 0 when converged, 1 on timeout")
    demo.add_argument("--timeout", type=float, default=60.0, help="seconds to wait with --once")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument("--inlet-port", type=int, default=8081)
    sandbox = commands.add_parser("sandbox", help="run the Inlet sandbox")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8081)
    sandbox.add_argument(
        "--after-revoke",
        choices=["new", "revoked"],
        default="new",
        help="a GrantAccess repeating a revoked grant's externalId makes a new grant, or hands"
        " back the revoked one (default: %(default)s)",
    )
    sandbox.add_argument(
        "--accounts",
        choices=["per_key", "shared"],
        default="per_key",
        help="each API key is its own Inlet account, or all keys share one (default: %(default)s)",
    )
    emulator = commands.add_parser("spectra-emulator", help="run the Spectra PMS emulator")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=8082)
    emulator.add_argument("--username", default="inlet")
    emulator.add_argument("--password", default="inlet-demo")
    emulator.add_argument("--hotel-code", default="OSL")
    cli_resync.add_parser(commands)
    certify = commands.add_parser("certify", help="run Inlet's certification scenarios")
    certify.add_argument("--target", choices=["sandbox", "inlet-test"], default="sandbox")
    certify.add_argument("--scope", nargs="*", help="scenario ids or prefixes (api, pms.3, ...)")
    certify.add_argument("--out", type=Path, default=Path("certification-report"))
    certify.add_argument("--properties", type=Path, help="the hotels' configuration to certify")
    certify.add_argument(
        "--retry-interval",
        type=float,
        metavar="SECONDS",
        help="with --target inlet-test: retry temporary failures every SECONDS (default 2)",
    )
    certify.add_argument(
        "--retry-max",
        type=float,
        metavar="SECONDS",
        help="with --target inlet-test: give up after SECONDS (default: as many intervals as"
        " the properties file's [retry], 12 for 5 and 60 minutes)",
    )
    cli_ops.add_parser(commands)
    args = parser.parse_args(argv)

    if args.command == "sandbox":
        from service.inlet.sandbox import run_sandbox
        from service.inlet.sandbox_state import Readings

        configure_logging("INFO", Masker(random_mask_key()))
        readings = Readings(after_revoke=args.after_revoke, accounts=args.accounts)
        return _run(run_sandbox(args.host, args.port, readings=readings))
    if args.command == "spectra-emulator":
        from service.adapters.spectra.emulator import run_spectra_emulator

        configure_logging("INFO", Masker(random_mask_key()))
        return _run(
            run_spectra_emulator(
                args.host,
                args.port,
                username=args.username,
                password=args.password,
                hotel_code=args.hotel_code,
            )
        )
    if args.command == "certify":
        from service.certify.run import run_certify

        return asyncio.run(
            run_certify(
                os.environ,
                out=args.out,
                target=args.target,
                scope=args.scope,
                properties=args.properties,
                retry_interval=args.retry_interval,
                retry_max=args.retry_max,
            )
        )
    if args.command == "demo":
        from service.demo.run import run_demo

        return asyncio.run(
            run_demo(
                os.environ,
                once=args.once,
                timeout=args.timeout,
                port=args.port,
                inlet_port=args.inlet_port,
            )
        )
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        print(f"inlet-bridge: {exc}", file=sys.stderr)
        return 2
    if settings.database_url is None and not embedded_available():
        # Production is explicit: no quiet PostgreSQL in /tmp when DATABASE_URL was forgotten.
        print(f"inlet-bridge: {EMBEDDED_MISSING}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, Masker(settings.log_mask_key))
    if args.command == "migrate":
        return asyncio.run(_migrate(settings))
    if args.command == "escalations":
        return asyncio.run(cli_ops.run_escalations(settings, args))
    if args.command == "audit":
        return asyncio.run(cli_ops.run_audit(settings, args))
    if args.command == "resync":
        return asyncio.run(cli_resync.run_resync(settings, args))
    return _serve(settings)


def _serve(settings: Settings) -> int:
    from service.app import create_app

    try:
        settings.require_hotels()
    except SettingsError as exc:
        print(f"inlet-bridge: {exc}", file=sys.stderr)
        return 2
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        shutdown_timeout=settings.shutdown_timeout_seconds,
        print=None,
        access_log=None,
    )
    return 0


async def _migrate(settings: Settings) -> int:
    async with cli_ops.database(settings) as db:
        applied = await db.migrate()
    print(f"applied migrations: {applied or 'none (schema is current)'}")
    return 0


def _run(coro: Coroutine[Any, Any, None]) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(coro)
    return 0


if __name__ == "__main__":
    sys.exit(main())
