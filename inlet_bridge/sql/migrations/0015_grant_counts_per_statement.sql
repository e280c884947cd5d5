-- grant_counts is kept once per statement instead of once per row, and each transaction adds
-- to the counter rows of its own connection (pg_backend_pid() % 32) instead of the row of each
-- grant key's hash. Before, two transactions recording successes together (store/successes.py)
-- each locked several of a property's counter rows in the order of their grants' hashes, and
-- locked them in opposite orders often enough to deadlock (a stall of deadlock_timeout, then
-- the calls recorded again one by one). Now a statement changes at most two counter rows per
-- property (its states, in order) and no two connections share them unless their process ids
-- meet modulo 32, when one waits for the other.
--
-- The counts stay right: a row's n may go below zero (a grant counted in one row is uncounted
-- in another), and every reader sums the rows (queries.sql: grant_counts readers). Safe for a
-- rolling deploy: the previous release only reads the sums.

DROP TRIGGER grants_count_insert ON grants;
DROP TRIGGER grants_count_update ON grants;
DROP TRIGGER grants_count_delete ON grants;

CREATE FUNCTION count_grant_changes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    mine smallint := pg_backend_pid() % 32;  -- this connection's counter rows
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO grant_counts AS c (property_id, state, shard, n)
        SELECT property_id, state, mine, count(*) FROM inserted_grants
        GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (property_id, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO grant_counts AS c (property_id, state, shard, n)
        SELECT property_id, state, mine, -count(*) FROM deleted_grants
        GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (property_id, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSE
        INSERT INTO grant_counts AS c (property_id, state, shard, n)
        SELECT property_id, state, mine, sum(d) FROM (
            SELECT o.property_id, o.state, -1 AS d
            FROM old_grants o JOIN new_grants g USING (grant_key)
            WHERE (o.state, o.property_id) IS DISTINCT FROM (g.state, g.property_id)
            UNION ALL
            SELECT g.property_id, g.state, 1
            FROM old_grants o JOIN new_grants g USING (grant_key)
            WHERE (o.state, o.property_id) IS DISTINCT FROM (g.state, g.property_id)
        ) AS changed
        GROUP BY 1, 2 HAVING sum(d) <> 0 ORDER BY 1, 2
        ON CONFLICT (property_id, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER grants_count_insert AFTER INSERT ON grants
    REFERENCING NEW TABLE AS inserted_grants
    FOR EACH STATEMENT EXECUTE FUNCTION count_grant_changes();
CREATE TRIGGER grants_count_update AFTER UPDATE ON grants
    REFERENCING OLD TABLE AS old_grants NEW TABLE AS new_grants
    FOR EACH STATEMENT EXECUTE FUNCTION count_grant_changes();
CREATE TRIGGER grants_count_delete AFTER DELETE ON grants
    REFERENCING OLD TABLE AS deleted_grants
    FOR EACH STATEMENT EXECUTE FUNCTION count_grant_changes();
