-- Re-sync (bulk UpdateAccess with new codes) and what each grant last applied.
-- Additive only: safe while the previous release runs.

ALTER TABLE grants ADD COLUMN resource_id text;
ALTER TABLE grants ADD COLUMN applied jsonb;

CREATE INDEX grants_property_idx ON grants (property_id) WHERE state = 'active';

CREATE TABLE resyncs (
    id           bigserial   PRIMARY KEY,
    requested_at timestamptz NOT NULL,
    requested_by text        NOT NULL,
    selector     jsonb       NOT NULL,
    matched      integer     NOT NULL,
    queued       integer     NOT NULL,
    note         text
);

ALTER TABLE inlet_calls ADD COLUMN resync_id bigint REFERENCES resyncs (id);

CREATE INDEX inlet_calls_resync_idx ON inlet_calls (resync_id) WHERE resync_id IS NOT NULL;
