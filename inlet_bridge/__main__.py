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

from inlet_bridge import cli_console, cli_ops, cli_resync
from inlet_bridge.logs import Masker, configure_logging
from inlet_bridge.settings import Settings, SettingsError, random_mask_key
from inlet_bridge.startup import log_started, new_event_loop, startup_problem
from inlet_bridge.store.db import EMBEDDED_MISSING, embedded_available


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inlet-bridge", description=__doc__)
    parser.add_argument(
        "--version", action="version", version=f"inlet-bridge {cli_console.package_version()}"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the service (settings from the environment)")
    commands.add_parser("migrate", help="apply pending database migrations and exit")
    demo = commands.add_parser(
        "demo", help="run the service with the demo hotel and sample bookings"
    )
    demo.add_argument("--once", action="store_true", help="exit 0 when converged, 1 on timeout")
    demo.add_argument("--timeout", type=float, default=60.0, help="seconds to wait with --once")
    demo.add_argument("--port", type=int, default=8080, help="the service's port")
    demo.add_argument("--inlet-port", type=int, default=8081, help="the Inlet sandbox's port")
    sandbox = commands.add_parser("sandbox", help="run the Inlet sandbox")
    sandbox.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sandbox.add_argument("--port", type=int, default=8081, help="port to listen on")
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
    emulator.add_argument("--host", default="127.0.0.1", help="address to listen on")
    emulator.add_argument("--port", type=int, default=8082, help="port to listen on")
    emulator.add_argument("--username", default="inlet", help="the login it accepts")
    emulator.add_argument("--password", default="inlet-demo", help="the password it accepts")
    emulator.add_argument("--hotel-code", default="OSL", help="the hotel it serves")
    apaleo = commands.add_parser("apaleo-emulator", help="run the apaleo emulator")
    apaleo.add_argument("--host", default="127.0.0.1", help="address to listen on")
    apaleo.add_argument("--port", type=int, default=8083, help="port to listen on")
    apaleo.add_argument(
        "--client-id", default="inlet-bridge", help="the OAuth client id it accepts"
    )
    apaleo.add_argument(
        "--client-secret", default="inlet-demo", help="the OAuth client secret it accepts"
    )
    apaleo.add_argument("--property-id", default="OSL", help="the apaleo property it serves")
    cli_resync.add_parser(commands)
    certify = commands.add_parser("certify", help="run Inlet's certification scenarios")
    certify.add_argument(
        "--target",
        choices=["sandbox", "inlet-test"],
        default="sandbox",
        help="the in-process sandbox, or INLET_TEST_BASE_URL",
    )
    certify.add_argument(
        "--scope", nargs="*", help="scenario ids or prefixes (api, pms.3, ...); all when left out"
    )
    certify.add_argument(
        "--out", type=Path, default=Path("certification-report"), help="folder of the report"
    )
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
    cli_console.add_parsers(commands)
    cli_console.show_defaults(parser)
    args = parser.parse_args(argv)

    if args.command == "check-config":
        return cli_console.run_check_config()

    if args.command == "sandbox":
        from inlet_bridge.doubles.inlet.sandbox import run_sandbox
        from inlet_bridge.doubles.inlet.sandbox_state import Readings

        configure_logging("INFO", Masker(random_mask_key()))
        readings = Readings(after_revoke=args.after_revoke, accounts=args.accounts)
        return _run(run_sandbox(args.host, args.port, readings=readings))
    if args.command == "spectra-emulator":
        from inlet_bridge.doubles.spectra.emulator import run_spectra_emulator

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
    if args.command == "apaleo-emulator":
        from inlet_bridge.doubles.apaleo.emulator import run_apaleo_emulator

        configure_logging("INFO", Masker(random_mask_key()))
        return _run(
            run_apaleo_emulator(
                args.host,
                args.port,
                client_id=args.client_id,
                client_secret=args.client_secret,
                property_id=args.property_id,
            )
        )
    if args.command == "certify":
        from inlet_bridge.certify.run import run_certify

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
        from inlet_bridge.demo.run import run_demo

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
    try:
        return _database_command(settings, args)
    except Exception as exc:
        # A database that cannot be reached or used, a port taken: one line, no traceback.
        line = startup_problem(exc, settings)
        if line is None:
            raise
        print(f"inlet-bridge: {line}", file=sys.stderr)
        return 2


def _database_command(settings: Settings, args: argparse.Namespace) -> int:
    if args.command == "migrate":
        return asyncio.run(_migrate(settings))
    if args.command == "escalations":
        return asyncio.run(cli_ops.run_escalations(settings, args))
    if args.command == "audit":
        return asyncio.run(cli_ops.run_audit(settings, args))
    if args.command == "resync":
        return asyncio.run(cli_resync.run_resync(settings, args))
    if args.command == "booking":
        return asyncio.run(cli_console.run_booking(settings, args))
    return _serve(settings)


def _serve(settings: Settings) -> int:
    from inlet_bridge.app import create_app

    try:
        settings.require_hotels()
    except SettingsError as exc:
        print(f"inlet-bridge: {exc}", file=sys.stderr)
        return 2
    app = create_app(settings)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        shutdown_timeout=settings.shutdown_timeout_seconds,
        print=lambda _: log_started(app),  # called once the sockets listen
        access_log=None,
        loop=new_event_loop(settings.event_loop),
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
