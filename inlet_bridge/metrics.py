"""What does the service count? Every Prometheus metric, in one registry per app (no globals).

No label ever carries personal data: labels are sources, properties (hotels' ids, which name
the hotel in alerts), operations, outcomes.
Gauges marked "from PostgreSQL" are refreshed from the database at scrape time, so every replica
exports the same value: aggregate them with max(), never sum().
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # ingest
        self.events_accepted = Counter(
            "inlet_bridge_events_accepted",
            "Booking events committed to the log (first delivery).",
            ["source"],
            registry=r,
        )
        self.events_duplicate = Counter(
            "inlet_bridge_events_duplicate",
            "Repeated deliveries of an event already stored, answered like the first.",
            ["source"],
            registry=r,
        )
        self.events_rejected = Counter(
            "inlet_bridge_events_rejected",
            "Events refused, by reason (invalid, malformed, unauthorized, forbidden, too_large,"
            " conflict).",
            ["source", "reason"],
            registry=r,
        )
        self.ingest_seconds = Histogram(
            "inlet_bridge_ingest_seconds",
            "Time from request to durable answer.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.group_commit_size = Histogram(
            "inlet_bridge_group_commit_events",
            "Events committed per group-commit transaction.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
            registry=r,
        )
        # Inlet calls
        self.inlet_calls = Counter(
            "inlet_bridge_inlet_calls",
            "Inlet calls made, by operation and outcome (success, temporary, permanent).",
            ["operation", "outcome"],
            registry=r,
        )
        self.inlet_call_seconds = Histogram(
            "inlet_bridge_inlet_call_seconds",
            "Inlet call latency.",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.escalations_raised = Counter(
            "inlet_bridge_escalations_raised",
            "Escalations raised for manual follow-up.",
            ["operation", "severity", "reason"],
            registry=r,
        )
        # from PostgreSQL
        self.calls_pending = Gauge(
            "inlet_bridge_calls_pending",
            "Pending Inlet calls (from PostgreSQL).",
            ["operation"],
            registry=r,
        )
        self.calls_oldest_pending_age = Gauge(
            "inlet_bridge_calls_oldest_pending_age_seconds",
            "Age of the oldest pending Inlet call (from PostgreSQL).",
            ["operation"],
            registry=r,
        )
        self.calls_failing = Gauge(
            "inlet_bridge_calls_failing",
            "Pending calls whose last attempt failed (from PostgreSQL).",
            ["operation"],
            registry=r,
        )
        self.calls_failing_since = Gauge(
            "inlet_bridge_calls_failing_oldest_seconds",
            "How long the longest-failing pending call has been failing (from PostgreSQL).",
            ["operation"],
            registry=r,
        )
        self.escalations_open = Gauge(
            "inlet_bridge_escalations_open",
            "Open escalations (from PostgreSQL), by operation: grant, update, revoke (failed"
            " revocations), resync, webhook and spectra (write-backs to the PMS that gave up),"
            " none (a stay problem with no call); by hotel (`property`).",
            ["operation", "severity", "property"],
            registry=r,
        )
        self.revocations_failing_since = Gauge(
            "inlet_bridge_revocations_failing_oldest_seconds",
            "How long the longest-failing pending revocation of each hotel has been failing (from"
            " PostgreSQL); 0 when none is failing.",
            ["property"],
            registry=r,
        )
        self.grants = Gauge(
            "inlet_bridge_grants",
            "Access grants by grant state (from PostgreSQL): active, revoked, granting, updating,"
            " revoking, grant_failed, update_failed, revoke_failed (a code that may still open"
            " doors).",
            ["state"],
            registry=r,
        )
        self.reconcile_lag = Gauge(
            "inlet_bridge_reconcile_lag_seconds",
            "Age of the oldest booking waiting for the reconciler (from PostgreSQL).",
            registry=r,
        )
        # reconciler
        self.reconciles = Counter(
            "inlet_bridge_reconciles",
            "Bookings reconciled, by result (converged, planned, error).",
            ["result"],
            registry=r,
        )
        self.sweep_repairs = Counter(
            "inlet_bridge_sweep_repairs",
            "Operations the periodic sweep found that nothing else had planned.",
            registry=r,
        )
        self.deliveries = Counter(
            "inlet_bridge_deliveries",
            "Deliveries of access changes to PMS sinks (webhook, spectra), by outcome.",
            ["sink", "outcome"],
            registry=r,
        )
        # pollers
        self.poller_last_success = Gauge(
            "inlet_bridge_poller_last_success_timestamp_seconds",
            "Unix time of the connection's last successful poll, 0 if it never had one; set by"
            " the replica polling it, at every attempt.",
            ["connection"],
            registry=r,
        )
        self.poller_errors = Counter(
            "inlet_bridge_poller_errors",
            "Failed polls, by kind (timeout, http, decode).",
            ["connection", "kind"],
            registry=r,
        )
        self.poller_lag = Gauge(
            "inlet_bridge_poller_lag_seconds",
            "How far behind the PMS the poller's cursor is; grows while polls fail.",
            ["connection"],
            registry=r,
        )
