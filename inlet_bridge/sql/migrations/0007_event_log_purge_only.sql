-- The event log stays append-only for every session: a DELETE passes only when
-- purge_events_before() issues it, and only for a row that purge could remove with the shortest
-- legal retention (30 days). UPDATE and TRUNCATE are always refused. The session setting that
-- used to open the log (inlet_bridge.retention) no longer does anything.
-- Safe while the previous release runs: the service itself never deletes events, and both
-- functions keep their names and signatures (the triggers stay as they are).

CREATE OR REPLACE FUNCTION events_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    stack text;
    caller text;
    statement_end integer;
BEGIN
    IF TG_OP = 'DELETE' THEN
        -- The call stack, innermost first: this trigger, the DELETE statement, and the PL/pgSQL
        -- function that issued it. A DELETE sent by a client has no statement frame at all.
        GET DIAGNOSTICS stack = PG_CONTEXT;
        stack := substr(stack, position(E'\n' IN stack) + 1);
        IF starts_with(stack, 'SQL statement "DELETE FROM events ') THEN
            statement_end := position(E'"\nPL/pgSQL function ' IN stack);
            IF statement_end > 0 THEN
                caller := split_part(substr(stack, statement_end + 2), E'\n', 1);
                caller := regexp_replace(caller, ' line [0-9]+ at SQL statement$', '');
            END IF;
        END IF;
        IF caller IN (
               'PL/pgSQL function purge_events_before(timestamp with time zone)',
               'PL/pgSQL function ' || quote_ident(TG_TABLE_SCHEMA)
                   || '.purge_events_before(timestamp with time zone)')
           -- and whatever the stack says: only what purge itself may remove
           AND OLD.received_at < now() - interval '30 days'
           AND NOT EXISTS (
               SELECT 1 FROM events n
               WHERE n.source = OLD.source AND n.booking_id = OLD.booking_id
                 AND n.received_at >= now() - interval '30 days')
        THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'events is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;

-- Delete the events of bookings that have been quiet since before `cutoff`; at least 30 days ago,
-- so a live booking's history is never cut short. The trigger above recognizes this function
-- on the call stack; it needs no setting.
CREATE OR REPLACE FUNCTION purge_events_before(cutoff timestamptz) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    removed bigint;
BEGIN
    IF cutoff > now() - interval '30 days' THEN
        RAISE EXCEPTION 'retention cutoff % is less than 30 days ago', cutoff
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM events e
    WHERE e.received_at < cutoff
      AND NOT EXISTS (
          SELECT 1 FROM events n
          WHERE n.source = e.source AND n.booking_id = e.booking_id AND n.received_at >= cutoff
      );
    GET DIAGNOSTICS removed = ROW_COUNT;
    RETURN removed;
END
$$;
