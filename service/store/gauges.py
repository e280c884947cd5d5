"""What does the database say right now? Gauges read from PostgreSQL at scrape time.

Every replica reads the same rows, so every replica exports the same value: one source of
truth, aggregated with max() in dashboards and alerts, never summed.
"""

from __future__ import annotations

from datetime import UTC, datetime

from service.metrics import Metrics
from service.store.db import Database

OPERATIONS = ("grant", "update", "revoke")
SEVERITIES = ("critical", "high", "warning")
GRANT_STATES = ("active", "revoked")


async def refresh_gauges(db: Database, metrics: Metrics, now: datetime | None = None) -> None:
    at = now or datetime.now(UTC)
    calls = {r["operation"]: r for r in await db.fetch("gauge_calls", at)}
    for op in OPERATIONS:
        row = calls.get(op)
        metrics.calls_pending.labels(operation=op).set(row["pending"] if row else 0)
        metrics.calls_oldest_pending_age.labels(operation=op).set(row["oldest_age"] if row else 0)
        metrics.calls_failing.labels(operation=op).set(row["failing"] if row else 0)
        metrics.calls_failing_since.labels(operation=op).set(row["failing_for"] if row else 0)
    open_escalations = {
        (r["operation"], r["severity"]): r["open"] for r in await db.fetch("gauge_escalations")
    }
    # escalations also count failed re-syncs ("resync") and stay problems with no call ("none")
    for op in (*OPERATIONS, "resync", "none"):
        for severity in SEVERITIES:
            metrics.escalations_open.labels(operation=op, severity=severity).set(
                open_escalations.get((op, severity), 0)
            )
    grants = {r["state"]: r["n"] for r in await db.fetch("gauge_grants")}
    for state in GRANT_STATES:
        metrics.grants.labels(state=state).set(grants.get(state, 0))
    metrics.reconcile_lag.set(await db.fetchval("gauge_reconcile_lag", at) or 0)
