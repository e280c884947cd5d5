-- apaleo notifications: each webhook notification is stored before it is answered 2xx, then
-- claimed by a worker (SKIP LOCKED and a lease, like calls) that fetches the reservation it
-- names. Safe while the previous release runs: a new table only.

CREATE TABLE apaleo_notifications (
    id               bigserial   PRIMARY KEY,
    connection       text        NOT NULL,
    notification_id  text        NOT NULL,  -- apaleo's `id`: a repeat is stored once
    topic            text        NOT NULL,
    type             text        NOT NULL,
    entity_id        text        NOT NULL,  -- the reservation id
    sent_at          timestamptz,           -- apaleo's `timestamp`
    received_at      timestamptz NOT NULL,
    state            text        NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'done', 'not_found', 'skipped', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    first_attempt_at timestamptz,
    next_attempt_at  timestamptz NOT NULL,
    lease_owner      text,
    lease_until      timestamptz,
    finished_at      timestamptz,
    event_id         text,                  -- the event the fetch appended (NULL: unchanged)
    last_error       text,
    UNIQUE (connection, notification_id)
);
CREATE INDEX apaleo_notifications_due_idx ON apaleo_notifications (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX apaleo_notifications_entity_idx ON apaleo_notifications (connection, entity_id)
    WHERE state = 'pending';
