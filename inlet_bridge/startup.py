"""What does an operator see when the service starts, or cannot? One line, naming the setting.

A bad or unreachable `DATABASE_URL`, a database login refused, a database user without the
rights it needs, a port already in use: `startup_problem` turns the exception into one line
naming the variable and the problem (never the password), which `inlet-bridge` prints before
exiting with status 2, without a traceback. Once the service listens, `log_started` writes one
log line with the address and what it serves.
"""

from __future__ import annotations

import asyncio
import errno
import importlib
import logging
import socket
from urllib.parse import urlsplit

import asyncpg
from aiohttp import web

from inlet_bridge.keys import HOTELS, SETTINGS
from inlet_bridge.settings import EventLoop, Settings

log = logging.getLogger(__name__)

# The migrations `serve` applied as it started (empty: the schema was current, or
# MIGRATE_ON_START is false).
MIGRATED: web.AppKey[list[int]] = web.AppKey("migrated", list)

_BIND_ERRORS = {errno.EADDRINUSE: "is already in use", errno.EACCES: "may not be opened"}


def database_place(url: str | None) -> str:
    """`host:port/database` of a DSN, without user or password (for messages)."""
    if not url:
        return "the embedded PostgreSQL"
    try:
        parts = urlsplit(url)
        host = parts.hostname or "a local socket"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "the server it names"
    return f"{host}{port}{parts.path or ''}"


def startup_problem(exc: BaseException, settings: Settings) -> str | None:
    """One line for a start-up failure an operator can fix, or None for anything else (a bug,
    which keeps its traceback)."""
    place = database_place(settings.database_url)
    if (
        isinstance(exc, OSError)
        and exc.errno in _BIND_ERRORS
        and ("bind" in str(exc).lower() or "address" in str(exc).lower())
    ):
        return (
            f"PORT: {settings.port} on HOST {settings.host} {_BIND_ERRORS[exc.errno]}"
            " (another process listens there; choose another PORT or stop it)"
        )
    if isinstance(
        exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError
    ):
        return f"DATABASE_URL: {place} refused the login ({_first_line(exc)})"
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        return (
            f"DATABASE_URL: the database user has not the rights it needs at {place}"
            f" ({_first_line(exc)}); it must own the database's schema to migrate it"
            " (docs/operations.md, Deploy)"
        )
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return f"DATABASE_URL: no such database at {place} ({_first_line(exc)})"
    if isinstance(exc, asyncpg.PostgresError):
        return f"DATABASE_URL: the database at {place} refused: {_first_line(exc)}"
    if isinstance(exc, socket.gaierror):
        return f"DATABASE_URL: the host of {place} cannot be found ({exc.strerror})"
    if isinstance(exc, ConnectionError | OSError):
        reason = exc.strerror or _first_line(exc) or type(exc).__name__
        return f"DATABASE_URL: cannot reach the database at {place} ({reason})"
    if isinstance(exc, TimeoutError):
        return f"DATABASE_URL: no answer from the database at {place} in time"
    if isinstance(exc, ValueError) and _is_dsn_error(exc):
        return f"DATABASE_URL: is not a PostgreSQL URL ({_first_line(exc)})"
    return None


def _is_dsn_error(exc: ValueError) -> bool:
    text = str(exc).lower()
    return "dsn" in text or "postgres" in text or isinstance(exc, asyncpg.ClientConfigurationError)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def new_event_loop(kind: EventLoop) -> asyncio.AbstractEventLoop:
    """The loop `serve` runs on (EVENT_LOOP): uvloop's, or the standard library's."""
    if kind == "uvloop":
        uvloop = importlib.import_module("uvloop")  # not importable on every platform
        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        return loop
    return asyncio.new_event_loop()


def log_started(app: web.Application) -> None:
    """The start-up line: where it listens and what it serves."""
    settings = app[SETTINGS]
    hotels = app[HOTELS]
    inlet = {
        pid: prop.inlet_base_url or hotels.inlet.base_url
        for pid, prop in sorted(hotels.properties.items())
    }
    log.info(
        f"inlet-bridge listening on http://{settings.host}:{settings.port}",
        extra={
            "action": "service.started",
            "host": settings.host,
            "port": settings.port,
            "event_loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
            "properties": sorted(hotels.properties),
            "sources": sorted(hotels.sources),
            "spectra_connections": sorted(hotels.spectra),
            "inlet_base_urls": inlet,
            "migrations_applied": app.get(MIGRATED, []),
            "database": database_place(settings.database_url),
            "plain_http_hosts": list(hotels.plain_http_hosts),
        },
    )
    if hotels.plain_http_hosts:
        # Allowed on purpose (a test environment, a proxy on a private network), but never
        # silently: Inlet keys, PMS logins and codes go to these hosts unencrypted.
        log.warning(
            "plain http (no TLS) allowed to: " + ", ".join(hotels.plain_http_hosts),
            extra={
                "action": "config.plain_http",
                "plain_http_hosts": list(hotels.plain_http_hosts),
            },
        )
