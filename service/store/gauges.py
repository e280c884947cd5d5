"""What does the database say right now? Gauges read from PostgreSQL at scrape time.

Every replica reads the same rows, so every replica exports the same value: one source of
truth, aggregated with max() in dashboards and alerts, never summed.
"""

from __future__ import annotations

from datetime import datetime

from service.domain.states import GRANT_STATES as GRANT_STATE_NAMES
from service.metrics import Metrics
from service.store.db import Database

OPERATIONS = ("grant", "update", "revoke")
# Escalations also count failed re-syncs ("resync"), write-backs to the PMS that gave up (the
# sink kinds "webhook" and "spectra") and stay problems with no call ("none").
ESCALATION_OPERATIONS = (*OPERATIONS, "resync", "webhook", "spectra", "none")
SEVERITIES = ("critical", "high", "warning")
# The grant states a gauge can count from the tables alone (pending and none need the desired
# access of every booking, which only a reconcile computes).
GRANT_STATES = tuple(s for s in GRANT_STATE_NAMES if s not in ("pending", "none"))


async def refresh_gauges(db: Database, metrics: Metrics, at: datetime) -> None:
    """Set every gauge from the database as of `at` (the service's clock)."""
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
    # Every known kind is exported (zeros included), and so is any other kind the database
    # holds: an escalation nobody listed here still reaches the alerts. The values are the
    # service's own operation names, never data from a booking.
    series = {(op, severity): 0 for op in ESCALATION_OPERATIONS for severity in SEVERITIES}
    series.update(open_escalations)
    # Cleared and refilled with no await in between: a scrape never sees it half-done, and a
    # kind that is gone leaves no stale series.
    metrics.escalations_open.clear()
    for (op, severity), count in series.items():
        metrics.escalations_open.labels(operation=op, severity=severity).set(count)
    grants = {r["state"]: r["n"] for r in await db.fetch("gauge_grants")}
    for state in GRANT_STATES:
        metrics.grants.labels(state=state).set(grants.get(state, 0))
    metrics.reconcile_lag.set(await db.fetchval("gauge_reconcile_lag", at) or 0)
