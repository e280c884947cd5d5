-- Trust boundaries: globally unique ids of outgoing webhooks, the webhook-ids seen from each
-- source (replays refused across replicas), and the operators' append-only audit trail.
-- Safe while the previous release runs: only new tables, a new function, and a new nullable
-- column whose default fills it for rows the previous release inserts.

-- A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits. Unique across
-- databases, deployments and restores (unlike a bigserial), and ordered by time.
CREATE FUNCTION uuid_v7() RETURNS uuid
LANGUAGE sql VOLATILE AS $$
    SELECT encode(
        set_bit(
            set_bit(
                overlay(uuid_send(gen_random_uuid())
                        PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp())
                                                         * 1000)::bigint) FROM 3)
                        FROM 1 FOR 6),
                52, 1),
            53, 1),
        'hex')::uuid
$$;

-- The `webhook-id` of a delivery: the same on every attempt, so the PMS can drop repeats.
-- No table rewrite: existing rows stay NULL and get an id when they are next claimed.
ALTER TABLE deliveries ADD COLUMN webhook_id uuid;
ALTER TABLE deliveries ALTER COLUMN webhook_id SET DEFAULT uuid_v7();
CREATE UNIQUE INDEX deliveries_webhook_id_idx ON deliveries (webhook_id);

-- webhook-ids of signed requests, kept until their timestamp is too old to be accepted anyway.
CREATE TABLE seen_webhook_ids (
    source     text        NOT NULL,
    webhook_id text        NOT NULL,
    seen_at    timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (source, webhook_id)
);
CREATE INDEX seen_webhook_ids_expiry_idx ON seen_webhook_ids (expires_at);

-- Who revealed or did what, to which booking, when. Rows are only ever added.
CREATE TABLE audit_log (
    id            bigserial   PRIMARY KEY,
    at            timestamptz NOT NULL,
    operator      text        NOT NULL,
    role          text        NOT NULL,
    action        text        NOT NULL
                  CHECK (action IN ('reveal', 'retry', 'resolve', 'resync')),
    source        text,
    booking_id    text,
    property_id   text,
    escalation_id bigint,
    resync_id     bigint,
    note          text,
    detail        jsonb,
    request_id    text
);
CREATE INDEX audit_log_booking_idx ON audit_log (source, booking_id, id);

CREATE FUNCTION audit_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
