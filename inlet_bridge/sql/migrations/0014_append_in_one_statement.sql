-- A group of events is appended by one statement (queries.sql: append_events), which commits
-- on its own: one round trip per group commit instead of four. Such a statement cannot roll
-- itself back after the fact, so it refuses itself instead, with this function, when a key it
-- did not insert is not already stored with the same body (a changed body, or a key another
-- writer stored meanwhile): the error undoes the whole statement, and the caller takes the
-- careful path in a transaction of its own. Additive: the previous release never calls it.
CREATE FUNCTION events_refuse_append(source text, event_id text) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'event %:% is stored with another body, or was stored meanwhile', source, event_id
        USING ERRCODE = 'IB409', HINT = 'append the group in a transaction with a look-up first';
END
$$;
