-- The loop at scale: claims, sweeps, history look-ups and gauges served by indexes; what a
-- call's success may skip; the retention of finished calls and deliveries. Additive: new
-- columns with constant defaults rewrite no row, and code that does not know them keeps working
-- (a call queued without `settles` is looked at again after its success, as before). The indexes
-- these replace (bookings_marked_idx, inlet_calls_due_idx) stay while the previous release runs.

-- The reconciler's work, by kind: marked (fresh events, a finished call), due (a send window
-- opening, access ending), swept (the periodic safety net). Each is claimed through its own
-- partial index, in the order that index keeps, so a claim never sorts the table.
ALTER TABLE bookings ADD COLUMN swept_at timestamptz;
-- How many plans this booking has had: a call remembers the plan that queued it, so its success
-- can tell whether any plan came after it (see inlet_calls.planned_in).
ALTER TABLE bookings ADD COLUMN plans bigint NOT NULL DEFAULT 0;

CREATE INDEX bookings_marked_at_idx ON bookings (marked_at) WHERE marked_seq > seen_seq;
CREATE INDEX bookings_swept_idx ON bookings (swept_at) WHERE swept_at IS NOT NULL;

-- A success as planned leaves nothing more to do for the grant (docs/architecture.md rule 17).
ALTER TABLE inlet_calls ADD COLUMN settles boolean NOT NULL DEFAULT false;
ALTER TABLE inlet_calls ADD COLUMN planned_in bigint;

-- claim_calls orders by (priority, next_attempt_at, id): the index keeps that order.
CREATE INDEX inlet_calls_claim_idx ON inlet_calls (priority, next_attempt_at, id)
    WHERE state = 'pending';
-- A grant's GrantAccess history and its last confirmed revocation, by grant key.
CREATE INDEX inlet_calls_grant_history_idx ON inlet_calls (grant_key, id)
    WHERE operation = 'grant';
CREATE INDEX inlet_calls_confirmed_revoke_idx ON inlet_calls (grant_key, id)
    WHERE operation = 'revoke' AND state = 'succeeded' AND last_http_status IS NOT NULL;
-- Retention finds finished calls and deliveries by age.
CREATE INDEX inlet_calls_finished_idx ON inlet_calls (finished_at) WHERE state <> 'pending';
CREATE INDEX deliveries_finished_idx ON deliveries (finished_at) WHERE state <> 'pending';
-- What an escalation still points at is kept (deliveries by change: deliveries_change_idx, 0011).
CREATE INDEX escalations_call_idx ON escalations (call_id) WHERE call_id IS NOT NULL;
CREATE INDEX escalations_delivery_idx ON escalations (delivery_id) WHERE delivery_id IS NOT NULL;
-- Gauges: pending calls per grant, and the active grants, without reading the history.
CREATE INDEX grants_active_idx ON grants (grant_key) WHERE state = 'active';

-- How many grants each property has in each state Inlet holds (active, revoked), kept by a
-- trigger in up to 16 rows per property and state (a grant adds to the row of its key's hash),
-- so the grants gauge and the reconciler's bound on a door's use never count the table, and two
-- calls' transactions seldom wait on one counter row. Counted once here from the rows already
-- stored; the trigger keeps it from then on, whichever release writes.
CREATE TABLE grant_counts (
    property_id text     NOT NULL,
    state       text     NOT NULL,
    shard       smallint NOT NULL,
    n           bigint   NOT NULL DEFAULT 0,
    PRIMARY KEY (property_id, state, shard)
);

CREATE FUNCTION count_grant_states() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE grant_counts SET n = n - 1
        WHERE property_id = OLD.property_id AND state = OLD.state
          AND shard = abs(hashtext(OLD.grant_key)) % 16;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO grant_counts AS c (property_id, state, shard, n)
        VALUES (NEW.property_id, NEW.state, abs(hashtext(NEW.grant_key)) % 16, 1)
        ON CONFLICT (property_id, state, shard) DO UPDATE SET n = c.n + 1;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER grants_count_insert AFTER INSERT ON grants
    FOR EACH ROW EXECUTE FUNCTION count_grant_states();
CREATE TRIGGER grants_count_update AFTER UPDATE OF state, property_id ON grants
    FOR EACH ROW
    WHEN ((OLD.state, OLD.property_id) IS DISTINCT FROM (NEW.state, NEW.property_id))
    EXECUTE FUNCTION count_grant_states();
CREATE TRIGGER grants_count_delete AFTER DELETE ON grants
    FOR EACH ROW EXECUTE FUNCTION count_grant_states();

-- The rows stored before the trigger (the migration holds the table's lock while it counts).
LOCK TABLE grants IN SHARE ROW EXCLUSIVE MODE;
INSERT INTO grant_counts (property_id, state, shard, n)
SELECT property_id, state, abs(hashtext(grant_key)) % 16, count(*)
FROM grants GROUP BY 1, 2, 3;
