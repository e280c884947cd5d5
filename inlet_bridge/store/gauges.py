"""What does the database say right now? Gauges read from PostgreSQL at scrape time.

Every replica reads the same rows, so every replica exports the same value: one source of
truth, aggregated with max() in dashboards and alerts, never summed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from inlet_bridge.domain.states import GRANT_STATES as GRANT_STATE_NAMES
from inlet_bridge.domain.vocab import CALL_OPERATIONS, SEVERITIES
from inlet_bridge.domain.vocab import ESCALATION_OPERATIONS as ESCALATION_OPERATIONS_FILED
from inlet_bridge.metrics import Metrics
from inlet_bridge.store.db import Database

OPERATIONS = CALL_OPERATIONS
# Escalations also count failed re-syncs ("resync"), write-backs to the PMS that gave up (the
# sink kinds "webhook", "spectra" and "apaleo") and stay problems with no call ("none").
ESCALATION_OPERATIONS = (*ESCALATION_OPERATIONS_FILED, "none")
# The grant states a gauge can count from the tables alone (pending and none need the desired
# access of every booking, which only a reconcile computes).
GRANT_STATES = tuple(s for s in GRANT_STATE_NAMES if s not in ("pending", "none"))


async def refresh_gauges(
    db: Database, metrics: Metrics, at: datetime, properties: Iterable[str] = ()
) -> None:
    """Set every gauge from the database as of `at` (the service's clock); `properties`: the
    configured hotels, whose escalation series are exported at 0 too."""
    properties = tuple(properties)
    calls = {r["operation"]: r for r in await db.fetch("gauge_calls", at)}
    for op in OPERATIONS:
        row = calls.get(op)
        metrics.calls_pending.labels(operation=op).set(row["pending"] if row else 0)
        metrics.calls_oldest_pending_age.labels(operation=op).set(row["oldest_age"] if row else 0)
        metrics.calls_failing.labels(operation=op).set(row["failing"] if row else 0)
        metrics.calls_failing_since.labels(operation=op).set(row["failing_for"] if row else 0)
    open_escalations = {
        (r["operation"], r["severity"], r["property_id"]): r["open"]
        for r in await db.fetch("gauge_escalations")
    }
    # Every known kind is exported for every configured hotel (zeros included), and so is any
    # other kind or hotel the database holds: an escalation nobody listed here still reaches
    # the alerts. The values are the service's own names and the hotels' ids, never data from
    # a booking.
    series = {
        (op, severity, prop): 0
        for op in ESCALATION_OPERATIONS
        for severity in SEVERITIES
        for prop in properties
    }
    series.update(open_escalations)
    # Cleared and refilled with no await in between: a scrape never sees it half-done, and a
    # kind that is gone leaves no stale series.
    metrics.escalations_open.clear()
    for (kind, severity, prop), count in series.items():
        metrics.escalations_open.labels(operation=kind, severity=severity, property=prop).set(count)
    failing = {r["property_id"]: r["failing_for"] for r in await db.fetch("gauge_revocations", at)}
    metrics.revocations_failing_since.clear()
    for prop in {*properties, *failing}:
        metrics.revocations_failing_since.labels(property=prop).set(failing.get(prop, 0))
    grants = {r["state"]: r["n"] for r in await db.fetch("gauge_grants")}
    for state in GRANT_STATES:
        metrics.grants.labels(state=state).set(grants.get(state, 0))
    metrics.reconcile_lag.set(await db.fetchval("gauge_reconcile_lag", at) or 0)
