-- Actual access at Inlet, the retry table of Inlet calls, their attempts, and escalations
-- (docs/architecture.md rules 5 to 9, 11).

-- What Inlet holds for one grant (one per stay), as last confirmed by Inlet.
CREATE TABLE grants (
    grant_key       text        PRIMARY KEY,
    source          text        NOT NULL,
    booking_id      text        NOT NULL,
    stay_id         text        NOT NULL,
    property_id     text        NOT NULL,
    state           text        NOT NULL CHECK (state IN ('active', 'revoked')),
    reference_id    text,
    code            text,
    code_formatted  text,
    link            text,
    access_points   text[]      NOT NULL DEFAULT '{}',
    valid_from      timestamptz,
    valid_to        timestamptz,
    fingerprint     text        NOT NULL DEFAULT '',
    message         text,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

CREATE INDEX grants_booking_idx ON grants (source, booking_id);
CREATE INDEX grants_access_points_idx ON grants USING gin (access_points);

-- Every Inlet call goes through this table. One pending call per grant (a newer desired state
-- supersedes it); claimed with FOR UPDATE SKIP LOCKED and a lease; revocations first.
CREATE TABLE inlet_calls (
    id               bigserial   PRIMARY KEY,
    grant_key        text        NOT NULL,
    source           text        NOT NULL,
    booking_id       text        NOT NULL,
    property_id      text        NOT NULL,
    operation        text        NOT NULL CHECK (operation IN ('grant', 'update', 'revoke')),
    reason           text        NOT NULL DEFAULT 'booking',
    request          jsonb       NOT NULL,
    fingerprint      text        NOT NULL DEFAULT '',
    state            text        NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'succeeded', 'failed', 'superseded')),
    priority         smallint    NOT NULL,
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    first_attempt_at timestamptz,
    deadline         timestamptz,
    lease_owner      text,
    lease_until      timestamptz,
    last_outcome     text,
    last_http_status integer,
    last_message     text,
    created_at       timestamptz NOT NULL,
    finished_at      timestamptz
);

CREATE UNIQUE INDEX inlet_calls_one_pending_per_grant ON inlet_calls (grant_key) WHERE state = 'pending';
CREATE INDEX inlet_calls_due_idx ON inlet_calls (priority, next_attempt_at) WHERE state = 'pending';
CREATE INDEX inlet_calls_booking_idx ON inlet_calls (source, booking_id, id);

CREATE TABLE call_attempts (
    call_id      bigint      NOT NULL REFERENCES inlet_calls (id),
    attempt      integer     NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL,
    outcome      text        NOT NULL,
    http_status  integer,
    message      text,
    PRIMARY KEY (call_id, attempt)
);

-- Work a person must follow up: a call that gave up, a revocation that keeps failing,
-- a stay with no room shortly before arrival.
CREATE TABLE escalations (
    id            bigserial   PRIMARY KEY,
    grant_key     text        NOT NULL,
    source        text        NOT NULL,
    booking_id    text        NOT NULL,
    property_id   text        NOT NULL,
    call_id       bigint      REFERENCES inlet_calls (id),
    operation     text,
    severity      text        NOT NULL CHECK (severity IN ('critical', 'high', 'warning')),
    reason        text        NOT NULL,
    message       text,
    created_at    timestamptz NOT NULL,
    resolved_at   timestamptz,
    resolved_note text
);

CREATE UNIQUE INDEX escalations_one_open ON escalations (grant_key, reason) WHERE resolved_at IS NULL;
CREATE INDEX escalations_booking_idx ON escalations (source, booking_id);
