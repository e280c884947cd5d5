"""Is the service alive, ready, and what does it count? /healthz, /readyz, /metrics."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from inlet_bridge.api.responses import json_response
from inlet_bridge.keys import CLOCK, DATABASE, HOTELS, METRICS
from inlet_bridge.store.gauges import refresh_gauges

log = logging.getLogger(__name__)


async def healthz(request: web.Request) -> web.Response:
    """The process is up and its event loop answers."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """The database answers and the schema is current: this replica can take traffic."""
    db = request.app[DATABASE]
    try:
        async with asyncio.timeout(2):
            pending = await db.pending_migrations()
    except (TimeoutError, OSError, Exception) as exc:  # any database failure means not ready
        log.warning("not ready", extra={"action": "health.not_ready", "error": type(exc).__name__})
        return json_response({"status": "unavailable", "database": "unreachable"}, status=503)
    if pending:
        return json_response(
            {"status": "unavailable", "database": "ok", "pending_migrations": pending}, status=503
        )
    return json_response({"status": "ok", "database": "ok"})


async def metrics(request: web.Request) -> web.Response:
    registry = request.app[METRICS]
    try:
        async with asyncio.timeout(3):
            await refresh_gauges(
                request.app[DATABASE],
                registry,
                request.app[CLOCK].now(),
                request.app[HOTELS].properties,
            )
    except Exception as exc:  # a scrape still answers with the counters when the database is down
        log.warning(
            "gauges not refreshed", extra={"action": "metrics.stale", "error": type(exc).__name__}
        )
    body = generate_latest(registry.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
