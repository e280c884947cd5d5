-- The append-only event log and the per-booking work queue (docs/architecture.md rules 1, 4, 11).

CREATE TABLE events (
    position     bigserial PRIMARY KEY,
    source       text        NOT NULL,
    event_id     text        NOT NULL,
    booking_id   text        NOT NULL,
    property_id  text        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    body_sha256  bytea       NOT NULL,
    event        jsonb       NOT NULL,
    CONSTRAINT events_source_event_id_key UNIQUE (source, event_id)
);

CREATE INDEX events_booking_idx ON events (source, booking_id, position);

-- The log is append-only: the database itself refuses UPDATE, DELETE and TRUNCATE.
-- purge_events_before() is the one way out, for data past its retention period.
CREATE FUNCTION events_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('inlet_bridge.retention', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'events is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

-- Delete the events of bookings that have been quiet since before `cutoff`; at least 30 days ago,
-- so a live booking's history is never cut short.
CREATE FUNCTION purge_events_before(cutoff timestamptz) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    removed bigint;
BEGIN
    IF cutoff > now() - interval '30 days' THEN
        RAISE EXCEPTION 'retention cutoff % is less than 30 days ago', cutoff
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM set_config('inlet_bridge.retention', 'on', true);
    DELETE FROM events e
    WHERE e.received_at < cutoff
      AND NOT EXISTS (
          SELECT 1 FROM events n
          WHERE n.source = e.source AND n.booking_id = e.booking_id AND n.received_at >= cutoff
      );
    GET DIAGNOSTICS removed = ROW_COUNT;
    PERFORM set_config('inlet_bridge.retention', 'off', true);
    RETURN removed;
END
$$;

-- One row per booking: the reconciler's work queue. Ingest bumps marked_seq in the same
-- transaction as the append; the reconciler records the marked_seq it converged as seen_seq.
-- A booking marked again while it is being reconciled is therefore looked at once more.
CREATE TABLE bookings (
    source        text        NOT NULL,
    booking_id    text        NOT NULL,
    property_id   text        NOT NULL,
    marked_seq    bigint      NOT NULL DEFAULT 1,
    seen_seq      bigint      NOT NULL DEFAULT 0,
    marked_at     timestamptz NOT NULL DEFAULT now(),
    due_at        timestamptz,
    lease_owner   text,
    lease_until   timestamptz,
    reconciled_at timestamptz,
    PRIMARY KEY (source, booking_id)
);

CREATE INDEX bookings_marked_idx ON bookings (source, booking_id) WHERE marked_seq > seen_seq;
CREATE INDEX bookings_due_idx ON bookings (due_at) WHERE due_at IS NOT NULL;
