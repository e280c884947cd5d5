-- Where each PMS poller has read up to. Additive only.

CREATE TABLE poll_cursors (
    connection      text        PRIMARY KEY,
    sync_time       timestamptz,
    held            text[]      NOT NULL DEFAULT '{}',
    last_success_at timestamptz,
    last_error      text,
    updated_at      timestamptz NOT NULL
);

-- Pollers find the booking a PMS reservation (a stay) belongs to.
CREATE INDEX events_stays_idx ON events USING gin ((event -> 'booking' -> 'stays') jsonb_path_ops);
