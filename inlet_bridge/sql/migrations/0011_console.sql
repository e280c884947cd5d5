-- The operator console: signed-in sessions shared by every replica, and the audit trail found
-- by escalation (what a retry led to is followed from its audit row).
-- Safe while the previous release runs: a new table and a new index only.

-- One row per signed-in browser. The cookie holds a random session id; only its SHA-256 is
-- stored, so a read of this table gives no usable session. `token_sha256` is the digest of the
-- credential the operator signed in with: a rotated or withdrawn token ends the session.
CREATE TABLE console_sessions (
    id_sha256    bytea       PRIMARY KEY,
    operator     text        NOT NULL,
    token_sha256 bytea       NOT NULL,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX console_sessions_expiry_idx ON console_sessions (expires_at);

CREATE INDEX audit_log_escalation_idx ON audit_log (escalation_id, id)
    WHERE escalation_id IS NOT NULL;

-- A booking's deliveries to the PMS, for its timeline (found through its access changes).
CREATE INDEX deliveries_change_idx ON deliveries (change_id);
