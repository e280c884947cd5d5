"""How is the service put together? `create_app(settings)`: one factory, cleanup contexts, typed keys."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from aiohttp import web

from inlet_bridge import console
from inlet_bridge.api import access, apaleo, audit, escalations, health, ingest, operators, resync
from inlet_bridge.api.auth import CREDENTIALS, RATE_LIMITS, Credentials, RateLimits
from inlet_bridge.api.responses import error
from inlet_bridge.clock import Clock, SystemClock
from inlet_bridge.group_commit import GroupCommitter
from inlet_bridge.keys import CLOCK, COMMITTER, DATABASE, HOTELS, METRICS, REQUEST_ID, SETTINGS
from inlet_bridge.metrics import Metrics
from inlet_bridge.settings import Settings
from inlet_bridge.startup import MIGRATED
from inlet_bridge.store.db import Database, EmbeddedPostgres
from inlet_bridge.store.events import EventStore
from inlet_bridge.store.replay import SeenWebhookIds
from inlet_bridge.store.retention import RetentionStore

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# A caller's request id is kept when it is an id of letters, digits and `._:-` (it is logged
# and echoed, so it can hold no email or markup); anything else, or anything longer than 128
# characters, is replaced by a new one.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# How often seen webhook-ids past their expiry are forgotten.
PURGE_SECONDS = 60.0
# How often finished calls, attempts and deliveries past RETENTION_DAYS are purged.
RETENTION_SECONDS = 3600.0


def request_id(header: str | None) -> str:
    """The caller's X-Request-Id when it is a well-formed id, else a new one."""
    if header is not None and _REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Carry a request id through logs; answer unexpected failures with our error shape."""
    request[REQUEST_ID] = request_id(request.headers.get("X-Request-Id"))
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.content_type != "application/json":
            code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
                exc.status, "http_error"
            )
            response = error(exc.status, code, exc.reason)
            if exc.status == 405:
                response.headers["Allow"] = exc.headers.get("Allow", "")
        else:
            raise
    except Exception:
        log.exception(
            "request failed",
            extra={
                "action": "http.error",
                "path": request.path,
                "request_id": request[REQUEST_ID],
            },
        )
        response = error(500, "internal", "internal error; see the service logs")
    response.headers["X-Request-Id"] = request[REQUEST_ID]
    return response


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    metrics: Metrics | None = None,
    run_workers: bool = True,
) -> web.Application:
    """Assemble the service; parts start and stop through the cleanup contexts."""
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[request_context])
    app[SETTINGS] = settings
    app[HOTELS] = settings.require_hotels()
    app[CLOCK] = clock or SystemClock()
    app[METRICS] = metrics or Metrics()
    app[CREDENTIALS] = Credentials(app[HOTELS], settings.admin_token)
    app[RATE_LIMITS] = RateLimits()
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_ingest)
    app.cleanup_ctx.append(_validation_threads)
    app.cleanup_ctx.append(_forget_old_webhook_ids)
    if run_workers:
        app.cleanup_ctx.append(_retention)
        from inlet_bridge.workers.runtime import workers_context

        app.cleanup_ctx.append(workers_context)
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", health.metrics)
    app.router.add_post("/v1/events", ingest.post_event)
    app.router.add_post("/v1/events:batch", ingest.post_batch)
    operators.add_routes(app)
    resync.add_routes(app)
    access.add_routes(app)
    escalations.add_routes(app)
    audit.add_routes(app)
    console.add_routes(app)
    apaleo.add_routes(app)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    embedded: EmbeddedPostgres | None = None
    dsn = settings.database_url
    if dsn is None:
        embedded = EmbeddedPostgres(settings.data_dir / "postgres")
        dsn = await asyncio.get_running_loop().run_in_executor(None, embedded.start)
    # Room for the call worker's outcomes (a call holds a connection only while its outcome is
    # recorded, not while Inlet answers), the two group-commit writers' held connections, the
    # LISTEN connection, the reconciler's workers and the health checks.
    db = await Database.connect(
        dsn,
        max_size=max(10, min(settings.call_concurrency, 16) + 4)
        + 3
        + settings.reconcile_concurrency,
    )
    try:
        app[MIGRATED] = await db.migrate() if settings.migrate_on_start else []
    except BaseException:
        await db.close()
        if embedded is not None:
            embedded.stop()
        raise
    app[DATABASE] = db
    try:
        yield
    finally:
        await db.close()
        if embedded is not None:
            embedded.stop()


async def _ingest(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    committer = GroupCommitter(
        EventStore(app[DATABASE]),
        app[METRICS],
        app[CLOCK],
        max_events=settings.group_commit_max_events,
        max_queued_events=settings.ingest_max_queued_events,
        wait_seconds=settings.ingest_wait_seconds,
        unavailable_after=settings.ingest_unavailable_after_seconds,
    )
    committer.start()
    app[COMMITTER] = committer
    try:
        yield
    finally:
        await committer.close()


async def _validation_threads(app: web.Application) -> AsyncIterator[None]:
    """Large bodies are decoded here, one at a time, so the event loop keeps answering."""
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode")
    app[ingest.VALIDATION] = ingest.LargeBodies(executor)
    try:
        yield
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


async def _forget_old_webhook_ids(app: web.Application) -> AsyncIterator[None]:
    """Every replica purges now and then; a failure is logged and tried again next time."""

    async def loop() -> None:
        seen = SeenWebhookIds(app[DATABASE])
        while True:
            try:
                await seen.purge(app[CLOCK].now())
            except Exception as exc:
                log.warning(
                    "seen webhook-ids not purged",
                    extra={"action": "auth.purge_failed", "error": type(exc).__name__},
                )
            await asyncio.sleep(PURGE_SECONDS)

    task = asyncio.create_task(loop(), name="forget-old-webhook-ids")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _retention(app: web.Application) -> AsyncIterator[None]:
    """Every replica purges finished history past RETENTION_DAYS now and then, in batches."""
    keep = timedelta(days=app[SETTINGS].retention_days)

    async def loop() -> None:
        store = RetentionStore(app[DATABASE])
        while True:
            try:
                purged = await store.purge(cutoff=app[CLOCK].now() - keep)
                if purged.total:
                    log.info(
                        "finished history purged",
                        extra={
                            "action": "retention.purged",
                            "calls": purged.calls,
                            "deliveries": purged.deliveries,
                            "access_changes": purged.access_changes,
                        },
                    )
            except Exception as exc:
                log.warning(
                    "finished history not purged",
                    extra={"action": "retention.failed", "error": type(exc).__name__},
                )
            await asyncio.sleep(RETENTION_SECONDS)

    task = asyncio.create_task(loop(), name="retention")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
