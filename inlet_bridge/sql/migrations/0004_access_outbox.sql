-- "Access changed" records and their deliveries to each sink (a PMS's webhook receiver, the
-- Spectra write-back): an outbox written in the same transaction as the access change.
-- Additive only: safe while the previous release runs.

CREATE TABLE access_changes (
    id          bigserial   PRIMARY KEY,
    grant_key   text        NOT NULL,
    source      text        NOT NULL,
    booking_id  text        NOT NULL,
    stay_id     text        NOT NULL,
    property_id text        NOT NULL,
    kind        text        NOT NULL
                CHECK (kind IN ('access.granted', 'access.updated', 'access.revoked', 'access.failed')),
    payload     jsonb       NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE INDEX access_changes_booking_idx ON access_changes (source, booking_id, id);

-- One row per change and sink. Delivered in order per sink and grant: a delivery is claimable
-- only when no earlier delivery for the same sink and grant is still pending.
CREATE TABLE deliveries (
    id               bigserial   PRIMARY KEY,
    change_id        bigint      NOT NULL REFERENCES access_changes (id),
    sink             text        NOT NULL,
    grant_key        text        NOT NULL,
    state            text        NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    first_attempt_at timestamptz,
    lease_owner      text,
    lease_until      timestamptz,
    last_status      integer,
    last_message     text,
    created_at       timestamptz NOT NULL,
    finished_at      timestamptz
);

CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_order_idx ON deliveries (sink, grant_key, id) WHERE state = 'pending';

ALTER TABLE escalations ADD COLUMN delivery_id bigint REFERENCES deliveries (id);
