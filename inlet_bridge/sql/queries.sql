-- Every statement the service runs, by name. Each has a `-- name:` header and a one-line
-- description; inlet_bridge/store/queries.py loads them once.

-- ---------------------------------------------------------------- migrations

-- name: schema_migrations_exists
-- Whether the migrations table has been created yet.
SELECT to_regclass('schema_migrations') IS NOT NULL;

-- name: create_schema_migrations
-- The table that records which migrations ran.
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: lock_migrations
-- Serialize migrations between replicas starting together (transaction-scoped advisory lock).
SELECT pg_advisory_xact_lock($1);

-- name: migration_applied
-- Whether one migration version is already recorded.
SELECT 1 FROM schema_migrations WHERE version = $1;

-- name: record_migration
-- Record a migration as applied.
INSERT INTO schema_migrations (version, name) VALUES ($1, $2);

-- name: list_migrations
-- The versions applied so far.
SELECT version FROM schema_migrations ORDER BY version;

-- ---------------------------------------------------------------- event log

-- name: ping
-- Whether a connection answers (a group-commit writer checks its connection before taking work).
SELECT 1;

-- name: find_events
-- The stored events with these (source, event_id) keys, to answer repeats like the first delivery.
SELECT e.source, e.event_id, e.position, e.received_at, e.body_sha256
FROM events e
JOIN unnest($1::text[], $2::text[]) AS k(source, event_id)
  ON e.source = k.source AND e.event_id = k.event_id;

-- name: insert_events
-- Append events in key order, received at :received_at (the service's clock, the one
-- `occurred_at` is checked against); a key another writer stored meanwhile is skipped (the
-- caller retries).
INSERT INTO events (source, event_id, booking_id, property_id, occurred_at, body_sha256, event,
                    warnings, received_at, schema_version)
SELECT k.*, :received_at::timestamptz, :schema_version::smallint
FROM unnest(:sources::text[], :event_ids::text[], :booking_ids::text[], :property_ids::text[],
            :occurred_ats::timestamptz[], :digests::bytea[], :events::jsonb[],
            :warnings::jsonb[]) AS k
ORDER BY 1, 2
ON CONFLICT (source, event_id) DO NOTHING
RETURNING source, event_id, position, received_at;

-- name: mark_bookings
-- Mark bookings as needing the reconciler's look, in the same transaction as their events,
-- and wake the reconcilers of every replica (the NOTIFY is delivered at commit).
WITH marked AS (
    INSERT INTO bookings AS b (source, booking_id, property_id)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ORDER BY 1, 2
    ON CONFLICT (source, booking_id) DO UPDATE
    SET marked_seq = b.marked_seq + 1,
        property_id = EXCLUDED.property_id,
        marked_at = CASE WHEN b.marked_seq > b.seen_seq THEN b.marked_at ELSE now() END
    RETURNING 1
)
SELECT pg_notify('inlet_bridge_marked', '') WHERE EXISTS (SELECT 1 FROM marked);

-- name: append_events
-- A group's events appended in one statement, which commits on its own (one round trip): insert
-- in key order, mark the bookings of the events inserted (each with the property of its last
-- event in the group, as mark_bookings) and wake the reconcilers of every replica. One row per
-- event: `stored` when inserted now, else the stored row it repeats. A key not inserted must be
-- stored already with the same digest, as this statement's snapshot sees it; if not (a changed
-- body, or a key another writer stored meanwhile) the statement refuses itself
-- (events_refuse_append, SQLSTATE IB409) and none of it stays. A stored key is probed by its
-- key and booking (an equal digest means an equal booking), with either index, and only when it
-- was not inserted (a subquery in CASE, which no plan turns into a join): no plan scans the log.
WITH input AS (
    SELECT *
    FROM unnest(:sources::text[], :event_ids::text[], :booking_ids::text[],
                :property_ids::text[], :occurred_ats::timestamptz[], :digests::bytea[],
                :events::jsonb[], :warnings::jsonb[])
         WITH ORDINALITY AS k(source, event_id, booking_id, property_id, occurred_at, body_sha256,
                              event, warnings, ord)
), inserted AS (
    INSERT INTO events (source, event_id, booking_id, property_id, occurred_at, body_sha256,
                        event, warnings, received_at, schema_version)
    SELECT source, event_id, booking_id, property_id, occurred_at, body_sha256, event, warnings,
           :received_at::timestamptz, :schema_version::smallint
    FROM input
    ORDER BY source, event_id
    ON CONFLICT (source, event_id) DO NOTHING
    RETURNING source, event_id, position, received_at
), marked AS (
    INSERT INTO bookings AS b (source, booking_id, property_id)
    SELECT DISTINCT ON (i.source, i.booking_id) i.source, i.booking_id, i.property_id
    FROM input i
    JOIN inserted n ON n.source = i.source AND n.event_id = i.event_id
    ORDER BY i.source, i.booking_id, i.ord DESC
    ON CONFLICT (source, booking_id) DO UPDATE
    SET marked_seq = b.marked_seq + 1,
        property_id = EXCLUDED.property_id,
        marked_at = CASE WHEN b.marked_seq > b.seen_seq THEN b.marked_at ELSE now() END
    RETURNING 1
), woken AS (
    SELECT count(pg_notify('inlet_bridge_marked', '')) AS notified
    FROM (SELECT 1 FROM marked LIMIT 1) AS m
)
SELECT i.source, i.event_id, n.position IS NOT NULL AS stored,
       CASE WHEN n.position IS NOT NULL THEN n.position
            ELSE coalesce((SELECT s.position FROM events s
                           WHERE s.source = i.source AND s.event_id = i.event_id
                             AND s.booking_id = i.booking_id AND s.body_sha256 = i.body_sha256),
                          events_refuse_append(i.source, i.event_id)) END AS position,
       CASE WHEN n.position IS NOT NULL THEN n.received_at
            ELSE (SELECT s.received_at FROM events s
                  WHERE s.source = i.source AND s.event_id = i.event_id
                    AND s.booking_id = i.booking_id) END AS received_at
FROM input i
CROSS JOIN woken
LEFT JOIN inserted n ON n.source = i.source AND n.event_id = i.event_id
ORDER BY i.ord;

-- name: booking_events
-- One booking's events in log order, for the fold (and their contact warnings, for the timeline).
SELECT position, occurred_at, received_at, event_id, event, warnings, schema_version
FROM events
WHERE source = $1 AND booking_id = $2
ORDER BY position;

-- ---------------------------------------------------------------- gauges

-- name: gauge_calls
-- Pending calls per operation: count, oldest age, failing count and longest failing time.
SELECT operation,
       count(*) AS pending,
       coalesce(extract(epoch FROM $1::timestamptz - min(created_at)), 0)::float8 AS oldest_age,
       count(*) FILTER (WHERE last_outcome IN ('temporary', 'permanent')) AS failing,
       coalesce(extract(epoch FROM $1::timestamptz - min(first_attempt_at)
                FILTER (WHERE last_outcome IN ('temporary', 'permanent'))), 0)::float8
           AS failing_for
FROM inlet_calls
WHERE state = 'pending'
GROUP BY operation;

-- name: gauge_escalations
-- Open escalations per operation, severity and hotel.
SELECT coalesce(operation, 'none') AS operation, severity, property_id, count(*) AS open
FROM escalations
WHERE resolved_at IS NULL
GROUP BY 1, 2, 3;

-- name: gauge_revocations
-- Per hotel, how long its longest-failing pending revocation has been failing.
SELECT property_id,
       coalesce(extract(epoch FROM $1::timestamptz - min(first_attempt_at)), 0)::float8
           AS failing_for
FROM inlet_calls
WHERE state = 'pending' AND operation = 'revoke' AND last_outcome IN ('temporary', 'permanent')
GROUP BY property_id;

-- name: gauge_grants
-- Grants per grant state, as inlet_bridge/domain/states.py derives it: a pending call (granting,
-- updating, revoking) before an open escalation of a failed call (grant_failed, update_failed,
-- revoke_failed; a failed re-sync is an update that failed) before what Inlet holds. What Inlet
-- holds is counted by grant_counts (a trigger keeps it); only the grants with an unsettled call
-- are read, so a scrape costs the size of the queue, not of the history.
WITH calls AS (
    SELECT grant_key,
           CASE WHEN operation = 'revoke' OR reason = 'recover' THEN 'revoking'
                WHEN operation = 'update' THEN 'updating'
                ELSE 'granting' END AS state
    FROM inlet_calls
    WHERE state = 'pending'
), failed AS (
    SELECT DISTINCT ON (grant_key) grant_key,
           CASE operation WHEN 'revoke' THEN 'revoke_failed'
                          WHEN 'grant' THEN 'grant_failed'
                          ELSE 'update_failed' END AS state
    FROM escalations
    WHERE resolved_at IS NULL AND call_id IS NOT NULL
      AND operation IN ('grant', 'update', 'revoke', 'resync')
    ORDER BY grant_key, id DESC
), unsettled AS (
    SELECT coalesce(c.grant_key, f.grant_key) AS grant_key, coalesce(c.state, f.state) AS state
    FROM calls c
    FULL JOIN failed f USING (grant_key)
), held AS (
    SELECT state, sum(n)::bigint AS n FROM grant_counts GROUP BY state
), overridden AS (
    SELECT g.state, count(*) AS n
    FROM unsettled u JOIN grants g ON g.grant_key = u.grant_key
    GROUP BY g.state
)
SELECT state, count(*) AS n FROM unsettled GROUP BY state
UNION ALL
SELECT h.state, h.n - coalesce(o.n, 0) FROM held h LEFT JOIN overridden o USING (state);

-- name: gauge_reconcile_lag
-- How long the oldest booking marked for a look (or overdue) has waited: two look-ups through
-- the partial indexes of marked and due bookings, never a scan of the table.
SELECT coalesce(extract(epoch FROM $1::timestamptz - least(
           (SELECT min(least(marked_at, coalesce(due_at, marked_at))) FROM bookings
            WHERE marked_seq > seen_seq),
           (SELECT min(due_at) FROM bookings WHERE due_at <= $1))), 0)::float8;

-- ---------------------------------------------------------------- reconciler

-- name: claim_marked_bookings
-- Lease bookings marked for a look (fresh events, a finished call), oldest mark first, through
-- the partial index on marked_at; rows another worker holds are skipped.
WITH picked AS (
    SELECT source, booking_id
    FROM bookings
    WHERE marked_seq > seen_seq AND (lease_until IS NULL OR lease_until < :now)
    ORDER BY marked_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
UPDATE bookings b
SET lease_owner = :owner, lease_until = :now + make_interval(secs => :lease_seconds)
FROM picked
WHERE b.source = picked.source AND b.booking_id = picked.booking_id
RETURNING b.source, b.booking_id, b.property_id, b.marked_seq, 'marked' AS kind;

-- name: claim_due_bookings
-- Lease bookings whose next look is due (a send window opening, access ending), earliest first,
-- through the partial index on due_at.
WITH picked AS (
    SELECT source, booking_id
    FROM bookings
    WHERE due_at <= :now AND (lease_until IS NULL OR lease_until < :now)
    ORDER BY due_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
UPDATE bookings b
SET lease_owner = :owner, lease_until = :now + make_interval(secs => :lease_seconds)
FROM picked
WHERE b.source = picked.source AND b.booking_id = picked.booking_id
RETURNING b.source, b.booking_id, b.property_id, b.marked_seq, 'due' AS kind;

-- name: claim_swept_bookings
-- Lease bookings the sweep marked, first marked first, through the partial index on swept_at:
-- claimed only when no marked or due booking is left (the reconciler asks in that order).
WITH picked AS (
    SELECT source, booking_id
    FROM bookings
    WHERE swept_at <= :now AND (lease_until IS NULL OR lease_until < :now)
    ORDER BY swept_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
UPDATE bookings b
SET lease_owner = :owner, lease_until = :now + make_interval(secs => :lease_seconds)
FROM picked
WHERE b.source = picked.source AND b.booking_id = picked.booking_id
RETURNING b.source, b.booking_id, b.property_id, b.marked_seq, 'swept' AS kind;

-- name: lock_booking
-- Lock a leased booking's row for one reconcile: the call worker records outcomes under the same
-- lock, so the grants and pending calls read after it are one consistent state (no read skew).
-- `plans`: how many plans it has had (the calls this plan queues remember the next number).
SELECT property_id, plans FROM bookings
WHERE source = $1 AND booking_id = $2 AND lease_owner = $3
FOR UPDATE;

-- name: lock_bookings
-- Lock a claimed batch's rows in key order, as lock_booking does one; a row locked right now (a
-- call's outcome being recorded) is skipped, and reconciled on its own after the batch.
--
-- The batch reads below look each booking up by its key in a LATERAL subquery that the planner
-- cannot merge into the outer query (FOR UPDATE, or OFFSET 0): a join of the keys with the
-- table let it pick, from missing or stale statistics, a hash join over a scan of the whole
-- table, or the index in the output's order filtered row by row (every other booking's rows
-- read for a batch of 50, tests/integration/test_query_plans.py). A locking read takes its locks
-- one key after the other, so the keys are sorted first: every batch locks in key order.
SELECT b.source, b.booking_id, b.plans
FROM (SELECT * FROM unnest(:sources::text[], :booking_ids::text[]) AS u(source, booking_id)
      ORDER BY source, booking_id) AS k
CROSS JOIN LATERAL (
    SELECT source, booking_id, plans FROM bookings
    WHERE source = k.source AND booking_id = k.booking_id AND lease_owner = :owner
    FOR UPDATE SKIP LOCKED
) AS b
ORDER BY b.source, b.booking_id;

-- name: bookings_events
-- The events of a batch of bookings in log order, for the fold.
SELECT e.source, e.booking_id, e.position, e.occurred_at, e.received_at, e.event_id, e.event,
       e.warnings, e.schema_version
FROM unnest(:sources::text[], :booking_ids::text[]) AS k(source, booking_id)
JOIN events e ON e.source = k.source AND e.booking_id = k.booking_id
ORDER BY e.source, e.booking_id, e.position;

-- name: bookings_grants
-- What Inlet holds for the grants of a batch of bookings.
SELECT g.grant_key, g.source, g.booking_id, g.property_id, g.state, g.reference_id,
       g.fingerprint, g.generation
FROM unnest(:sources::text[], :booking_ids::text[]) AS k(source, booking_id)
JOIN grants g ON g.source = k.source AND g.booking_id = k.booking_id
ORDER BY g.grant_key;

-- name: lock_bookings_pending_calls
-- The pending calls of a batch of bookings, locked so no worker claims them while the plans are
-- written.
SELECT c.id, c.source, c.booking_id, c.grant_key, c.operation, c.reason, c.fingerprint,
       c.lease_until
FROM (SELECT * FROM unnest(:sources::text[], :booking_ids::text[]) AS u(source, booking_id)
      ORDER BY source, booking_id) AS k
CROSS JOIN LATERAL (  -- a look-up per booking (see lock_bookings)
    SELECT id, source, booking_id, grant_key, operation, reason, fingerprint, lease_until
    FROM inlet_calls
    -- Written `coalesce(state, '')` (state is never null) so that only the index made for it,
    -- inlet_calls_pending_by_booking_idx (migration 0016), serves it: with statistics that
    -- count no pending call, the planner walked another index of pending calls whole for each
    -- booking, through every entry a wave left there until vacuum (10 ms per batch of 50 after
    -- 100,000 answered calls).
    WHERE source = k.source AND booking_id = k.booking_id AND coalesce(state, '') = 'pending'
    FOR UPDATE
) AS c
ORDER BY c.id;

-- name: bookings_escalated_calls
-- The failed calls of a batch of bookings still waiting for a person, newest per grant.
SELECT DISTINCT ON (c.grant_key) c.id, c.source, c.booking_id, c.grant_key, c.operation,
       c.reason, c.fingerprint
FROM unnest(:sources::text[], :booking_ids::text[]) AS k(source, booking_id)
JOIN escalations e ON e.source = k.source AND e.booking_id = k.booking_id
                  AND e.resolved_at IS NULL AND e.call_id IS NOT NULL
JOIN inlet_calls c ON c.id = e.call_id AND c.state = 'failed'
ORDER BY c.grant_key, c.id DESC;

-- name: bookings_grant_history
-- The GrantAccess calls of a batch of bookings since Inlet last confirmed each grant's
-- revocation, with their attempts (an attempt started but never recorded has a null outcome).
-- Every look-up is by index: the booking's calls, the grant's last confirmed revocation, each
-- attempt by its key; the history of other bookings is never read.
SELECT c.source, c.booking_id, c.grant_key, c.id AS call_id, c.request::text AS request,
       c.fingerprint, n.attempt, a.outcome, a.http_status, coalesce(c.generation, 1) AS generation
FROM unnest(:sources::text[], :booking_ids::text[]) AS k(source, booking_id)
CROSS JOIN LATERAL (  -- a look-up per booking (see lock_bookings)
    SELECT g.source, g.booking_id, g.grant_key, g.id, g.request, g.fingerprint, g.attempts,
           g.generation
    FROM inlet_calls g
    WHERE g.source = k.source AND g.booking_id = k.booking_id AND g.operation = 'grant'
      AND g.id > coalesce((SELECT max(r.id) FROM inlet_calls r
                           WHERE r.grant_key = g.grant_key AND r.operation = 'revoke'
                             AND r.state = 'succeeded' AND r.last_http_status IS NOT NULL), 0)
    OFFSET 0
) AS c
CROSS JOIN LATERAL generate_series(1, c.attempts) AS n (attempt)
LEFT JOIN LATERAL (
    SELECT x.outcome, x.http_status FROM call_attempts x
    WHERE x.call_id = c.id AND x.attempt = n.attempt
    LIMIT 1  -- one row by key; the LIMIT keeps this a look-up by key (see call_attempt_outcomes)
) AS a ON true
ORDER BY c.grant_key, c.id, n.attempt;

-- name: lock_bookings_for_outcomes
-- Lock the booking rows of several calls' outcomes, in key order (as every batch locks them, so
-- two batches never wait for each other in a circle), before they are recorded together; as
-- lock_booking_for_outcome for each.
SELECT b.source, b.booking_id, b.plans, b.reconciled_at
FROM (SELECT * FROM unnest(:sources::text[], :booking_ids::text[]) AS u(source, booking_id)
      ORDER BY source, booking_id) AS k
CROSS JOIN LATERAL (  -- a look-up per booking, locked in key order (see lock_bookings)
    SELECT source, booking_id, plans, reconciled_at FROM bookings
    WHERE source = k.source AND booking_id = k.booking_id
    FOR UPDATE
) AS b
ORDER BY b.source, b.booking_id;

-- name: lock_booking_for_outcome
-- Lock a booking's row before a call's outcome is recorded (see lock_booking); its plan count and
-- last reconcile say whether a plan came after the call's (`needs_look_after_success`).
SELECT plans, reconciled_at FROM bookings WHERE source = $1 AND booking_id = $2 FOR UPDATE;

-- name: write_plans
-- Everything a batch's plans write, in one statement: the calls they queue (each remembering the
-- plan that queued it and whether its success as sent settles its grant), the stay escalations
-- they raise, those whose problem is gone, and each booking's converged mark and next look.
WITH queued AS (
    INSERT INTO inlet_calls (grant_key, source, booking_id, property_id, operation, reason,
                             request, fingerprint, priority, next_attempt_at, deadline, created_at,
                             resync_id, generation, external_id, settles, planned_in)
    SELECT k.grant_key, k.source, k.booking_id, k.property_id, k.operation, k.reason, k.request,
           k.fingerprint, k.priority, :now, k.deadline, :now, k.resync_id, k.generation,
           k.external_id, k.settles, k.planned_in
    FROM unnest(:call_grant_keys::text[], :call_sources::text[], :call_booking_ids::text[],
                :call_property_ids::text[], :call_operations::text[], :call_reasons::text[],
                :call_requests::jsonb[], :call_fingerprints::text[], :call_priorities::smallint[],
                :call_deadlines::timestamptz[], :call_resync_ids::bigint[],
                :call_generations::integer[], :call_external_ids::text[],
                :call_settles::boolean[], :call_planned_in::bigint[])
         WITH ORDINALITY AS k(grant_key, source, booking_id, property_id, operation, reason,
                              request, fingerprint, priority, deadline, resync_id, generation,
                              external_id, settles, planned_in, n)
    ORDER BY k.n
    RETURNING id
), raised AS (
    INSERT INTO escalations (grant_key, source, booking_id, property_id, call_id, operation,
                             severity, reason, message, created_at)
    SELECT k.grant_key, k.source, k.booking_id, k.property_id, NULL, NULL, 'high', k.reason,
           k.message, :now
    FROM unnest(:issue_grant_keys::text[], :issue_sources::text[], :issue_booking_ids::text[],
                :issue_property_ids::text[], :issue_reasons::text[], :issue_messages::text[])
         AS k(grant_key, source, booking_id, property_id, reason, message)
    ON CONFLICT (grant_key, reason) WHERE resolved_at IS NULL DO NOTHING
    RETURNING id
), resolved AS (
    UPDATE escalations e
    SET resolved_at = :now,
        resolved_note = 'resolved automatically: the booking no longer has this problem'
    FROM unnest(:sources::text[], :booking_ids::text[]) AS k(source, booking_id)
    WHERE e.source = k.source AND e.booking_id = k.booking_id AND e.resolved_at IS NULL
      AND e.call_id IS NULL AND NOT (e.grant_key || '/' || e.reason = ANY (:open_issues::text[]))
    RETURNING e.id
), finished AS (
    UPDATE bookings b
    SET seen_seq = greatest(b.seen_seq, k.seen_seq), due_at = k.due_at, reconciled_at = :now,
        lease_owner = NULL, lease_until = NULL, swept_at = NULL, plans = b.plans + 1
    FROM unnest(:sources::text[], :booking_ids::text[], :seen_seqs::bigint[],
                :due_ats::timestamptz[]) AS k(source, booking_id, seen_seq, due_at)
    WHERE b.source = k.source AND b.booking_id = k.booking_id AND b.lease_owner = :owner
    RETURNING 1
)
SELECT (SELECT count(*) FROM finished) AS finished, (SELECT count(*) FROM queued) AS queued;

-- name: release_booking
-- Give a booking back after a failed reconcile, to be tried again after a pause.
UPDATE bookings
SET lease_owner = NULL, lease_until = $3
WHERE source = $1 AND booking_id = $2 AND lease_owner = $4;

-- name: mark_booking
-- Ask the reconciler to look at one booking again (after a call finished, or an operator asked).
UPDATE bookings
SET marked_seq = marked_seq + 1,
    marked_at = CASE WHEN marked_seq > seen_seq THEN marked_at ELSE $3 END
WHERE source = $1 AND booking_id = $2;

-- name: sweep_mark_bookings
-- Mark the next chunk of bookings (in key order, after the given key) that have access at Inlet
-- or a look to come, for the sweep: one statement per chunk. Returns how many it marked and the
-- last key it read (where the next chunk starts; null at the end of the table). The chunk is
-- marked as the key range it spans, read through the primary key: a join with the chunk's rows
-- let the planner hash the whole table for every chunk.
WITH chunk AS (
    SELECT source, booking_id
    FROM bookings
    WHERE (source, booking_id) > (:after_source, :after_booking_id)
    ORDER BY source, booking_id
    LIMIT :limit
), last AS (
    SELECT source, booking_id FROM chunk ORDER BY source DESC, booking_id DESC LIMIT 1
), marked AS (
    UPDATE bookings b
    SET swept_at = coalesce(b.swept_at, :now)
    FROM last
    WHERE (b.source, b.booking_id) > (:after_source, :after_booking_id)
      AND (b.source, b.booking_id) <= (last.source, last.booking_id)
      AND (b.due_at IS NOT NULL
           OR EXISTS (SELECT 1 FROM grants g
                      WHERE g.source = b.source AND g.booking_id = b.booking_id
                        AND g.state = 'active'))
    RETURNING 1
)
SELECT (SELECT count(*) FROM marked) AS marked, (SELECT count(*) FROM chunk) AS read,
       (SELECT source FROM last) AS last_source, (SELECT booking_id FROM last) AS last_booking_id;

-- name: count_bookings
-- How many bookings there are (the sweep spreads its chunks over its interval by it).
SELECT count(*) FROM bookings;

-- name: sweep_waiting
-- How many bookings the sweep marked are still waiting for their look.
SELECT count(*) FROM bookings WHERE swept_at IS NOT NULL;

-- name: booking_grants
-- What Inlet holds for a booking's grants.
SELECT grant_key, source, booking_id, stay_id, property_id, state, reference_id, code,
       code_formatted, link, access_points, valid_from, valid_to, fingerprint, message,
       created_at, updated_at, generation, coalesce(external_id, grant_key) AS external_id
FROM grants
WHERE source = $1 AND booking_id = $2
ORDER BY grant_key;

-- name: bookings_unsettled_call_attempts
-- The attempts of the unsettled updates and revocations of a batch of bookings (pending, or
-- failed and still escalated), as unsettled_call_attempts reads one booking's.
SELECT c.id AS call_id, c.fingerprint, n.attempt, a.outcome, a.http_status
FROM unnest(:sources::text[], :booking_ids::text[]) AS k(source, booking_id)
JOIN inlet_calls c ON c.source = k.source AND c.booking_id = k.booking_id
                  AND c.operation IN ('update', 'revoke')
CROSS JOIN LATERAL generate_series(1, c.attempts) AS n (attempt)
LEFT JOIN LATERAL (
    SELECT x.outcome, x.http_status FROM call_attempts x
    WHERE x.call_id = c.id AND x.attempt = n.attempt
    LIMIT 1  -- one row by key; the LIMIT keeps this a look-up by key (see call_attempt_outcomes)
) AS a ON true
WHERE c.state = 'pending'
   OR (c.state = 'failed' AND EXISTS (SELECT 1 FROM escalations e
                                      WHERE e.call_id = c.id AND e.resolved_at IS NULL))
ORDER BY c.id, n.attempt;

-- name: call_attempt_outcomes
-- One call's attempts before attempt $2, as far as their outcomes are known (null: never
-- recorded), for what a call that gives up may have left at Inlet.
--
-- Each attempt is looked up by its key in a LATERAL subquery with LIMIT 1 (so are the attempts
-- of the other history reads): a plain join would let the planner, which expects a thousand
-- rows from generate_series whatever c.attempts is, hash-join a scan of every attempt stored.
SELECT c.fingerprint, n.attempt, a.outcome, a.http_status
FROM inlet_calls c
CROSS JOIN LATERAL generate_series(1, c.attempts) AS n (attempt)
LEFT JOIN LATERAL (
    SELECT x.outcome, x.http_status FROM call_attempts x
    WHERE x.call_id = c.id AND x.attempt = n.attempt
    LIMIT 1
) AS a ON true
WHERE c.id = $1 AND n.attempt < $2
ORDER BY n.attempt;

-- name: doubt_grant
-- Record that an active grant's content ('unverified') or existence ('revocation-doubt') is in
-- doubt: a call that may have changed it was withdrawn or gave up without an answer.
UPDATE grants SET fingerprint = $2 WHERE grant_key = $1 AND state = 'active';

-- name: supersede_calls
-- Withdraw pending calls that are not in flight (newer desired states replace them).
UPDATE inlet_calls
SET state = 'superseded', finished_at = :now, lease_owner = NULL, lease_until = NULL
WHERE id = ANY (:call_ids::bigint[]) AND state = 'pending'
  AND (lease_until IS NULL OR lease_until < :now)
RETURNING id, reason, resync_id;

-- name: raise_escalation
-- Open an escalation, or, when the same one is already open for this grant, make it about the
-- call that failed last (its operation and Inlet's message), as severe as the worse of the two:
-- the plan reads the escalated call to avoid repeating it, and a revocation failing after an
-- update must still page. A stay problem (no call) already open is left as it is.
INSERT INTO escalations (grant_key, source, booking_id, property_id, call_id, operation, severity,
                         reason, message, created_at)
VALUES (:grant_key, :source, :booking_id, :property_id, :call_id, :operation, :severity, :reason,
        :message, :now)
ON CONFLICT (grant_key, reason) WHERE resolved_at IS NULL DO UPDATE
SET call_id = EXCLUDED.call_id,
    operation = EXCLUDED.operation,
    message = EXCLUDED.message,
    severity = CASE WHEN 'critical' IN (escalations.severity, EXCLUDED.severity) THEN 'critical'
                    WHEN 'high' IN (escalations.severity, EXCLUDED.severity) THEN 'high'
                    ELSE 'warning' END
WHERE EXCLUDED.call_id IS NOT NULL
RETURNING id;

-- ---------------------------------------------------------------- call worker

-- name: claim_calls
-- Lease due calls, revocations first; an expired lease is taken over; the attempt counts at claim.
-- The order is the one inlet_calls_claim_idx keeps, so no claim sorts the queue.
-- `earlier_grants`: whether the grant had any GrantAccess before this call (if not, its success
-- needs no look at the history: ids only grow, so none can appear later).
-- An update or revoke queued without its own externalId (by an earlier release) goes to the
-- grant's generation.
WITH picked AS (
    SELECT id, grant_key
    FROM inlet_calls
    WHERE state = 'pending' AND next_attempt_at <= $1
      AND (lease_until IS NULL OR lease_until < $1)
    ORDER BY priority, next_attempt_at, id
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
UPDATE inlet_calls c
SET lease_owner = $2,
    lease_until = $1 + make_interval(secs => $4),
    attempts = c.attempts + 1,
    first_attempt_at = coalesce(c.first_attempt_at, $1)
FROM picked
LEFT JOIN grants g ON g.grant_key = picked.grant_key
WHERE c.id = picked.id
RETURNING c.id, c.grant_key, c.source, c.booking_id, c.property_id, c.operation, c.reason,
          c.request::text AS request, c.fingerprint, c.attempts, c.first_attempt_at, c.deadline,
          coalesce(c.generation, CASE WHEN c.operation <> 'grant' THEN g.generation END, 1)
              AS generation,
          coalesce(c.external_id, CASE WHEN c.operation <> 'grant' THEN g.external_id END,
                   c.grant_key) AS external_id,
          g.reference_id, g.account AS grant_account, c.settles, c.planned_in, c.created_at,
          EXISTS (SELECT 1 FROM inlet_calls e
                  WHERE e.grant_key = c.grant_key AND e.operation = 'grant' AND e.id < c.id)
              AS earlier_grants;

-- name: finish_call
-- Record a call's final outcome and its last attempt (one statement), only if this worker still
-- holds this attempt's lease (else nothing changes: the caller rolls the attempt back too).
WITH attempt AS (
    INSERT INTO call_attempts (call_id, attempt, started_at, finished_at, outcome, http_status,
                               message)
    VALUES (:call_id, :attempt, :started_at, :now, :outcome, :http_status, :message)
    ON CONFLICT (call_id, attempt) DO NOTHING
)
UPDATE inlet_calls
SET state = :state, finished_at = :now, last_outcome = :outcome, last_http_status = :http_status,
    last_message = :message,
    lease_owner = NULL, lease_until = NULL
WHERE id = :call_id AND state = 'pending' AND lease_owner = :owner AND attempts = :attempt;

-- name: schedule_retry
-- Put a failed call back in the queue for its next attempt, only if this worker holds the lease.
UPDATE inlet_calls
SET next_attempt_at = :retry_at, last_outcome = :outcome, last_http_status = :http_status,
    last_message = :message,
    lease_owner = NULL, lease_until = NULL
WHERE id = :call_id AND state = 'pending' AND lease_owner = :owner AND attempts = :attempt;

-- name: release_calls
-- Give back the leases this worker holds (graceful shutdown): the calls are retried at once.
UPDATE inlet_calls
SET lease_owner = NULL, lease_until = NULL, attempts = greatest(attempts - 1, 0)
WHERE state = 'pending' AND lease_owner = $1;

-- name: release_claimed_calls
-- Give back calls claimed ahead of a free slot that waited too long for one (their leases would
-- run short during the call): not called, so the attempt claimed for each is not counted.
UPDATE inlet_calls
SET lease_owner = NULL, lease_until = NULL, attempts = greatest(attempts - 1, 0)
WHERE id = ANY($2::bigint[]) AND state = 'pending' AND lease_owner = $1;

-- name: record_attempt
-- One attempt's outcome, for the timeline.
INSERT INTO call_attempts (call_id, attempt, started_at, finished_at, outcome, http_status, message)
VALUES (:call_id, :attempt, :started_at, :finished_at, :outcome, :http_status, :message)
ON CONFLICT (call_id, attempt) DO NOTHING;

-- name: record_grant_successes
-- GrantAccess and UpdateAccess successes, several together, in one statement (a JSON object
-- per call, as `store/successes.py` writes it). Every row is looked up by its key (`= ANY`), so
-- no plan, even one made for a few calls when the tables were small, scans a table: each call succeeded only if this worker still holds
-- this attempt's lease, and only for those (the ids returned; nothing is written for the others)
-- the attempt, what Inlet now holds (a code or link Inlet did not return is kept), the grant's
-- call escalations resolved, and the booking marked for another look when `look`. At most one
-- call per booking and grant (a grant's row is written once per statement).
WITH o AS (
    SELECT o.*
    FROM unnest(:outcomes::text[]) AS x (doc), jsonb_to_record(x.doc::jsonb) AS o (
        call_id bigint, owner text, attempt integer, started_at timestamptz, now timestamptz,
        outcome text, http_status integer, message text, grant_key text, source text,
        booking_id text, look boolean, stay_id text, property_id text, reference_id text,
        code text, code_formatted text, link text, access_points text[],
        valid_from timestamptz, valid_to timestamptz, fingerprint text, resource_id text,
        applied jsonb, generation integer, external_id text, account text)
), finished AS (
    UPDATE inlet_calls c
    SET state = 'succeeded', finished_at = o.now, last_outcome = o.outcome,
        last_http_status = o.http_status, last_message = o.message,
        lease_owner = NULL, lease_until = NULL
    FROM o
    WHERE c.id = ANY (:call_ids::bigint[]) AND c.id = o.call_id
      -- (SELECT ...): a value the planner cannot see, so no partial index on pending calls
      -- (it would scan every pending call of a wave) looks cheaper than the primary key.
      AND c.state = (SELECT 'pending'::text) AND c.lease_owner = o.owner
      AND c.attempts = o.attempt
    RETURNING c.id
), done AS (
    SELECT o.* FROM o JOIN finished f ON f.id = o.call_id
), attempt AS (
    INSERT INTO call_attempts (call_id, attempt, started_at, finished_at, outcome, http_status,
                               message)
    SELECT call_id, attempt, started_at, now, outcome, http_status, message FROM done
    ON CONFLICT (call_id, attempt) DO NOTHING
), granted AS (
    INSERT INTO grants AS g (grant_key, source, booking_id, stay_id, property_id, state, reference_id,
                             code, code_formatted, link, access_points, valid_from, valid_to,
                             fingerprint, message, created_at, updated_at, resource_id, applied,
                             generation, external_id, account)
    SELECT grant_key, source, booking_id, stay_id, property_id, 'active', reference_id, code,
           code_formatted, link, access_points, valid_from, valid_to, fingerprint, message,
           now, now, resource_id, applied, generation, external_id, account
    FROM done
    ON CONFLICT (grant_key) DO UPDATE
    SET state = EXCLUDED.state,
        property_id = EXCLUDED.property_id,
        generation = EXCLUDED.generation,
        external_id = EXCLUDED.external_id,
        account = EXCLUDED.account,
        resource_id = EXCLUDED.resource_id,
        applied = EXCLUDED.applied,
        reference_id = CASE WHEN g.generation = EXCLUDED.generation
                            THEN coalesce(EXCLUDED.reference_id, g.reference_id)
                            ELSE EXCLUDED.reference_id END,
        code = CASE WHEN g.generation = EXCLUDED.generation THEN coalesce(EXCLUDED.code, g.code)
                    ELSE EXCLUDED.code END,
        code_formatted = CASE WHEN g.generation = EXCLUDED.generation
                              THEN coalesce(EXCLUDED.code_formatted, g.code_formatted)
                              ELSE EXCLUDED.code_formatted END,
        link = CASE WHEN g.generation = EXCLUDED.generation THEN coalesce(EXCLUDED.link, g.link)
                    ELSE EXCLUDED.link END,
        access_points = EXCLUDED.access_points,
        valid_from = EXCLUDED.valid_from,
        valid_to = EXCLUDED.valid_to,
        fingerprint = EXCLUDED.fingerprint,
        message = EXCLUDED.message,
        updated_at = EXCLUDED.updated_at
), resolved AS (
    UPDATE escalations e
    SET resolved_at = d.now, resolved_note = 'resolved automatically: a later call succeeded'
    FROM done d
    WHERE e.grant_key = ANY (ARRAY(SELECT grant_key FROM done)) AND e.grant_key = d.grant_key
      AND e.resolved_at IS NULL AND e.call_id IS NOT NULL
), marked AS (
    UPDATE bookings b
    SET marked_seq = b.marked_seq + 1,
        marked_at = CASE WHEN b.marked_seq > b.seen_seq THEN b.marked_at ELSE d.now END
    FROM done d
    WHERE b.source = ANY (ARRAY(SELECT source FROM done WHERE look))
      AND b.booking_id = ANY (ARRAY(SELECT booking_id FROM done WHERE look))
      AND b.source = d.source AND b.booking_id = d.booking_id AND d.look
)
SELECT id FROM finished;

-- name: record_revoke_successes
-- RevokeAccess successes, several together, as record_grant_successes: each grant is revoked (its
-- codes are kept for the timeline).
WITH o AS (
    SELECT o.*
    FROM unnest(:outcomes::text[]) AS x (doc), jsonb_to_record(x.doc::jsonb) AS o (
        call_id bigint, owner text, attempt integer, started_at timestamptz, now timestamptz,
        outcome text, http_status integer, message text, grant_key text, source text,
        booking_id text, look boolean)
), finished AS (
    UPDATE inlet_calls c
    SET state = 'succeeded', finished_at = o.now, last_outcome = o.outcome,
        last_http_status = o.http_status, last_message = o.message,
        lease_owner = NULL, lease_until = NULL
    FROM o
    WHERE c.id = ANY (:call_ids::bigint[]) AND c.id = o.call_id
      -- (SELECT ...): a value the planner cannot see, so no partial index on pending calls
      -- (it would scan every pending call of a wave) looks cheaper than the primary key.
      AND c.state = (SELECT 'pending'::text) AND c.lease_owner = o.owner
      AND c.attempts = o.attempt
    RETURNING c.id
), done AS (
    SELECT o.* FROM o JOIN finished f ON f.id = o.call_id
), attempt AS (
    INSERT INTO call_attempts (call_id, attempt, started_at, finished_at, outcome, http_status,
                               message)
    SELECT call_id, attempt, started_at, now, outcome, http_status, message FROM done
    ON CONFLICT (call_id, attempt) DO NOTHING
), revoked AS (
    UPDATE grants g
    SET state = 'revoked', fingerprint = '', message = d.message, updated_at = d.now
    FROM done d
    WHERE g.grant_key = ANY (ARRAY(SELECT grant_key FROM done)) AND g.grant_key = d.grant_key
), resolved AS (
    UPDATE escalations e
    SET resolved_at = d.now, resolved_note = 'resolved automatically: a later call succeeded'
    FROM done d
    WHERE e.grant_key = ANY (ARRAY(SELECT grant_key FROM done)) AND e.grant_key = d.grant_key
      AND e.resolved_at IS NULL AND e.call_id IS NOT NULL
), marked AS (
    UPDATE bookings b
    SET marked_seq = b.marked_seq + 1,
        marked_at = CASE WHEN b.marked_seq > b.seen_seq THEN b.marked_at ELSE d.now END
    FROM done d
    WHERE b.source = ANY (ARRAY(SELECT source FROM done WHERE look))
      AND b.booking_id = ANY (ARRAY(SELECT booking_id FROM done WHERE look))
      AND b.source = d.source AND b.booking_id = d.booking_id AND d.look
)
SELECT id FROM finished;

-- name: earlier_grant_attempts
-- The attempts of one grant's GrantAccess calls before call :before_call, since Inlet last
-- confirmed the grant's revocation (for what a success shows: `fingerprint_after_grant`). By
-- index on the grant key: flat however long the history of other grants.
SELECT c.grant_key, c.id AS call_id, c.request::text AS request, c.fingerprint, n.attempt,
       a.outcome, a.http_status, coalesce(c.generation, 1) AS generation
FROM inlet_calls c
CROSS JOIN LATERAL generate_series(1, c.attempts) AS n (attempt)
LEFT JOIN LATERAL (
    SELECT x.outcome, x.http_status FROM call_attempts x
    WHERE x.call_id = c.id AND x.attempt = n.attempt
    LIMIT 1  -- one row by key; the LIMIT keeps this a look-up by key (see call_attempt_outcomes)
) AS a ON true
WHERE c.grant_key = :grant_key AND c.operation = 'grant' AND c.id < :before_call
  AND c.id > coalesce((SELECT max(r.id) FROM inlet_calls r
                       WHERE r.grant_key = :grant_key AND r.operation = 'revoke'
                         AND r.state = 'succeeded' AND r.last_http_status IS NOT NULL), 0)
ORDER BY c.id, n.attempt;

-- name: next_call_due
-- When the earliest pending call becomes due (to sleep until then).
SELECT min(greatest(next_attempt_at, coalesce(lease_until, next_attempt_at)))
FROM inlet_calls
WHERE state = 'pending';

-- name: next_booking_due
-- When the earliest booking look is due.
SELECT min(due_at) FROM bookings WHERE due_at IS NOT NULL;

-- ---------------------------------------------------------------- timeline and operators

-- name: booking_row
-- The reconciler's bookkeeping for one booking.
SELECT source, booking_id, property_id, marked_seq, seen_seq, due_at, reconciled_at
FROM bookings
WHERE source = $1 AND booking_id = $2;

-- name: booking_calls
-- A booking's Inlet calls, oldest first.
SELECT id, grant_key, operation, reason, state, attempts, next_attempt_at, first_attempt_at,
       deadline, last_outcome, last_http_status, last_message, created_at, finished_at
FROM inlet_calls
WHERE source = $1 AND booking_id = $2
ORDER BY id;

-- name: booking_attempts
-- Every attempt of a booking's calls.
SELECT a.call_id, a.attempt, a.started_at, a.finished_at, a.outcome, a.http_status, a.message
FROM call_attempts a
JOIN inlet_calls c ON c.id = a.call_id
WHERE c.source = $1 AND c.booking_id = $2
ORDER BY a.call_id, a.attempt;

-- name: booking_escalations
-- A booking's escalations, open and resolved.
SELECT id, grant_key, call_id, delivery_id, operation, severity, reason, message, created_at,
       resolved_at, resolved_note
FROM escalations
WHERE source = $1 AND booking_id = $2
ORDER BY id;

-- name: lock_property_doors
-- Plan the bookings of one property with capped doors one at a time, across replicas too (held
-- until the transaction ends): each sees the places the one before it took.
SELECT pg_advisory_xact_lock(hashtext('doors:' || $1));

-- name: door_use_bound
-- At most how many grants may hold any door of a property: its active grants (grant_counts) and
-- its pending grants and updates. Far below a door's capacity, no plan can reach it.
SELECT (SELECT coalesce(sum(n), 0) FROM grant_counts
        WHERE property_id = $1 AND state = 'active')
     + (SELECT count(*) FROM inlet_calls
        WHERE property_id = $1 AND state = 'pending' AND operation IN ('grant', 'update'));

-- name: capped_door_holders
-- Which grants hold each of these doors of a property, and how: an active grant ('grant') or a
-- pending grant or update (the call's id), as door_usage counts them; a batch computes each
-- booking's usage from these rows as it plans the batch in turn.
SELECT g.grant_key, g.source, g.booking_id, door, NULL::bigint AS call_id
FROM grants g, unnest(g.access_points) AS door
WHERE g.property_id = :property_id AND g.state = 'active' AND door = ANY (:doors::text[])
UNION ALL
SELECT c.grant_key, c.source, c.booking_id, door, c.id
FROM inlet_calls c, jsonb_array_elements_text(c.request -> 'access_points') AS door
WHERE c.property_id = :property_id AND c.state = 'pending' AND c.operation IN ('grant', 'update')
  AND door = ANY (:doors::text[]);

-- name: lock_property_doors_shared
-- The property's door lock, shared: revocations that free places do not wait for each other,
-- only for a plan counting the places (which takes it alone, lock_property_doors).
SELECT pg_advisory_xact_lock_shared(hashtext('doors:' || $1));

-- name: booking_deliveries
-- A booking's deliveries of access changes to the PMS, oldest first.
SELECT d.id, d.sink, d.grant_key, c.kind, d.state, d.attempts, d.last_status, d.last_message,
       d.created_at, d.finished_at
FROM deliveries d
JOIN access_changes c ON c.id = d.change_id
WHERE c.source = $1 AND c.booking_id = $2
ORDER BY d.id;

-- name: door_usage
-- How many grants of other bookings hold each of these doors: active, or on their way (a
-- pending grant or update), so two bookings reconciled in turn never both take the last place.
SELECT door, count(*) AS used
FROM (
    SELECT g.grant_key, door
    FROM grants g, unnest(g.access_points) AS door
    WHERE g.property_id = $1 AND g.state = 'active' AND NOT (g.source = $2 AND g.booking_id = $3)
    UNION
    SELECT c.grant_key, door
    FROM inlet_calls c, jsonb_array_elements_text(c.request -> 'access_points') AS door
    WHERE c.property_id = $1 AND c.state = 'pending' AND c.operation IN ('grant', 'update')
      AND NOT (c.source = $2 AND c.booking_id = $3)
) AS held
WHERE door = ANY ($4::text[])
GROUP BY door;

-- name: mark_waiting_for_doors
-- Look again at a few bookings of a property left without a full door (a place may be free),
-- in key order, skipping rows locked right now (those are being planned under the property's
-- door lock, which the caller holds, so they see the free place); the sweep covers the rest.
UPDATE bookings b
SET marked_seq = b.marked_seq + 1,
    marked_at = CASE WHEN b.marked_seq > b.seen_seq THEN b.marked_at ELSE $2 END
FROM (SELECT w.source, w.booking_id
      FROM bookings w
      WHERE (w.source, w.booking_id) IN (SELECT source, booking_id FROM escalations
                                         WHERE property_id = $1 AND reason = 'door_capacity'
                                           AND resolved_at IS NULL)
      ORDER BY w.source, w.booking_id
      LIMIT 5
      FOR UPDATE OF w SKIP LOCKED) AS w
WHERE b.source = w.source AND b.booking_id = w.booking_id;

-- ---------------------------------------------------------------- re-sync

-- name: resync_candidates
-- Active grants matching a re-sync selector (each filter applies only when given), a page at a
-- time after :after in key order: the primary key keeps that order, so nothing is sorted.
SELECT g.grant_key, g.source, g.booking_id, g.property_id, g.applied::text AS applied,
       g.fingerprint, g.valid_from, g.generation, coalesce(g.external_id, g.grant_key) AS external_id
FROM grants g
WHERE g.grant_key > :after AND g.state = 'active' AND g.applied IS NOT NULL
  AND (:property_id::text IS NULL OR g.property_id = :property_id)
  AND (:access_points::text[] IS NULL OR g.access_points && :access_points)
  AND (:resource_ids::text[] IS NULL OR g.resource_id = ANY (:resource_ids))
  AND (:bookings::text[] IS NULL OR (g.source || ':' || g.booking_id) = ANY (:bookings))
ORDER BY g.grant_key
LIMIT :limit;

-- name: insert_resync
-- Record one re-sync request.
INSERT INTO resyncs (requested_at, requested_by, selector, matched, queued, note)
VALUES (:now, :requested_by, :selector::jsonb, :matched, 0, :note)
RETURNING id;

-- name: queue_resync_call
-- Queue a regenerating UpdateAccess for a grant with no pending call, to the grant's property
-- and generation.
INSERT INTO inlet_calls (grant_key, source, booking_id, property_id, operation, reason, request,
                         fingerprint, priority, next_attempt_at, deadline, created_at, resync_id,
                         generation, external_id)
VALUES (:grant_key, :source, :booking_id, :property_id, 'update', 'resync', :request::jsonb,
        :fingerprint, 1, :now, :deadline, :now, :resync_id, :generation, :external_id)
ON CONFLICT (grant_key) WHERE state = 'pending' DO NOTHING
RETURNING id;

-- name: join_resync
-- Make a grant's queued (not in flight) grant or update call regenerate the code too.
UPDATE inlet_calls
SET reason = 'resync', resync_id = $2
WHERE grant_key = $1 AND state = 'pending' AND operation IN ('grant', 'update')
  AND (lease_until IS NULL OR lease_until < $3)
RETURNING id;

-- name: set_resync_queued
-- Record how many calls a re-sync queued.
UPDATE resyncs SET queued = $2 WHERE id = $1;

-- name: resync_progress
-- A re-sync's calls by state.
SELECT r.id, r.requested_at, r.requested_by, r.selector::text AS selector, r.matched, r.queued,
       count(c.id) FILTER (WHERE c.state = 'succeeded') AS succeeded,
       count(c.id) FILTER (WHERE c.state = 'pending') AS pending,
       count(c.id) FILTER (WHERE c.state = 'failed') AS failed,
       count(c.id) FILTER (WHERE c.state = 'superseded') AS superseded
FROM resyncs r
LEFT JOIN inlet_calls c ON c.resync_id = r.id
WHERE r.id = $1
GROUP BY r.id;

-- ---------------------------------------------------------------- outbox and deliveries

-- name: previous_access
-- What the service held for a grant before this change: its code (a replaced code is disabled
-- in the PMS), and its doors and times (what may still work when a call gave up).
SELECT reference_id, code, code_formatted, link, state = 'active' AS active, access_points,
       valid_from, valid_to, generation
FROM grants WHERE grant_key = $1 FOR UPDATE;

-- name: insert_access_change
-- Record that a grant's access changed (in the same transaction as the change).
INSERT INTO access_changes (grant_key, source, booking_id, stay_id, property_id, kind, payload,
                            created_at)
VALUES (:grant_key, :source, :booking_id, :stay_id, :property_id, :kind, :payload::jsonb, :now)
RETURNING id;

-- name: insert_deliveries
-- Queue one delivery of a change per sink.
INSERT INTO deliveries (change_id, sink, grant_key, next_attempt_at, created_at)
SELECT $1, sink, $2, $3, $3 FROM unnest($4::text[]) AS sink;

-- name: claim_deliveries
-- Lease due deliveries that are first in line for their sink and grant.
WITH picked AS (
    SELECT d.id
    FROM deliveries d
    WHERE d.state = 'pending' AND d.next_attempt_at <= $1
      AND (d.lease_until IS NULL OR d.lease_until < $1)
      AND NOT EXISTS (
          SELECT 1 FROM deliveries e
          WHERE e.sink = d.sink AND e.grant_key = d.grant_key AND e.state = 'pending' AND e.id < d.id
      )
    ORDER BY d.next_attempt_at, d.id
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
UPDATE deliveries d
SET lease_owner = $2, lease_until = $1 + make_interval(secs => $4), attempts = d.attempts + 1,
    first_attempt_at = coalesce(d.first_attempt_at, $1),
    webhook_id = coalesce(d.webhook_id, uuid_v7())  -- rows from before ids were stored
FROM picked, access_changes c
WHERE d.id = picked.id AND c.id = d.change_id
RETURNING d.id, d.change_id, d.sink, d.grant_key, d.attempts, d.first_attempt_at, d.webhook_id,
          c.kind,
          c.source, c.booking_id, c.stay_id, c.property_id, c.payload::text AS payload,
          c.created_at;

-- name: finish_delivery
-- Record a delivery's final state, only if this worker still holds its lease.
UPDATE deliveries
SET state = :state, finished_at = :now, last_status = :status, last_message = :message,
    lease_owner = NULL,
    lease_until = NULL
WHERE id = :delivery_id AND state = 'pending' AND lease_owner = :owner AND attempts = :attempt;

-- name: retry_delivery
-- Put a failed delivery back for a later attempt, only if this worker still holds its lease.
UPDATE deliveries
SET next_attempt_at = :retry_at, last_status = :status, last_message = :message, lease_owner = NULL,
    lease_until = NULL
WHERE id = :delivery_id AND state = 'pending' AND lease_owner = :owner AND attempts = :attempt;

-- name: raise_delivery_escalation
-- Open an escalation for a delivery that gave up.
INSERT INTO escalations (grant_key, source, booking_id, property_id, delivery_id, operation,
                         severity, reason, message, created_at)
VALUES (:grant_key, :source, :booking_id, :property_id, :delivery_id, :operation, 'high', :reason,
        :message, :now)
ON CONFLICT (grant_key, reason) WHERE resolved_at IS NULL DO NOTHING
RETURNING id;

-- name: next_delivery_due
-- When the earliest pending delivery becomes due.
SELECT min(greatest(next_attempt_at, coalesce(lease_until, next_attempt_at)))
FROM deliveries
WHERE state = 'pending';

-- ---------------------------------------------------------------- pollers

-- name: get_cursor
-- Where a poller has read up to, and the reservations it holds back (e.g. unpaid).
SELECT connection, sync_time, held, last_success_at, last_error
FROM poll_cursors
WHERE connection = $1;

-- name: save_cursor
-- Advance a poller's cursor after the events up to it were committed.
INSERT INTO poll_cursors (connection, sync_time, held, last_success_at, last_error, updated_at)
VALUES ($1, $2, $3, $4, NULL, $4)
ON CONFLICT (connection) DO UPDATE
SET sync_time = EXCLUDED.sync_time, held = EXCLUDED.held,
    last_success_at = EXCLUDED.last_success_at, last_error = NULL, updated_at = EXCLUDED.updated_at;

-- name: cursor_error
-- Record a failed poll (the cursor does not move).
INSERT INTO poll_cursors (connection, last_error, updated_at)
VALUES ($1, $2, $3)
ON CONFLICT (connection) DO UPDATE
SET last_error = EXCLUDED.last_error, updated_at = EXCLUDED.updated_at;

-- name: try_leader_lock
-- Become the one poller of a connection (session-level advisory lock, freed if the process dies).
SELECT pg_try_advisory_lock(hashtext($1));

-- name: release_leader_lock
-- Step down as a connection's poller.
SELECT pg_advisory_unlock(hashtext($1));

-- name: holds_leader_lock
-- Whether this session still holds a connection's poller lock (pg_try_advisory_lock's key split in two).
SELECT EXISTS (
    SELECT 1 FROM pg_locks
    WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted AND objsubid = 1
      AND classid = ((hashtext($1)::bigint >> 32) & 4294967295)::oid
      AND objid = (hashtext($1)::bigint & 4294967295)::oid
);

-- name: stays_with_access
-- The stays of a source whose access is active at Inlet or has a call pending (a backfill re-reads them).
SELECT booking_id, stay_id
FROM grants
WHERE source = $1 AND state = 'active'
UNION
SELECT booking_id, substr(grant_key, length(source) + length(booking_id) + 3) AS stay_id
FROM inlet_calls
WHERE source = $1 AND state = 'pending'
ORDER BY booking_id, stay_id;

-- name: last_event_for_stay
-- The latest event of a source that mentions a stay (to delete a booking the PMS deleted).
SELECT event::text AS event
FROM events
WHERE source = $1 AND event -> 'booking' -> 'stays' @> jsonb_build_array(jsonb_build_object('stay_id', $2::text))
ORDER BY occurred_at DESC, position DESC
LIMIT 1;

-- ---------------------------------------------------------------- escalations

-- name: list_escalations
-- Escalations, newest first, filtered by open/resolved, severity and operation when given.
SELECT id, grant_key, source, booking_id, property_id, call_id, delivery_id, operation, severity,
       reason, message, created_at, resolved_at, resolved_note
FROM escalations
WHERE (:open_only::boolean IS NULL OR (resolved_at IS NULL) = :open_only)
  AND (:severity::text IS NULL OR severity = :severity)
  AND (:operation::text IS NULL OR operation = :operation)
  AND (:properties::text[] IS NULL OR property_id = ANY (:properties))
ORDER BY id DESC
LIMIT :limit;

-- name: lock_escalation
-- One open escalation, locked while an operator acts on it.
SELECT e.id, e.grant_key, e.source, e.booking_id, e.property_id, e.call_id, e.delivery_id,
       e.operation,
       c.reason AS call_reason, c.request::text AS call_request, c.fingerprint AS call_fingerprint,
       c.operation AS call_operation, c.property_id AS call_property_id, c.deadline AS call_deadline,
       c.resync_id AS call_resync_id, c.generation AS call_generation,
       c.external_id AS call_external_id
FROM escalations e
LEFT JOIN inlet_calls c ON c.id = e.call_id
WHERE e.id = $1 AND e.resolved_at IS NULL
FOR UPDATE OF e;

-- name: resolve_escalation
-- Close an escalation with an operator's note.
UPDATE escalations SET resolved_at = $2, resolved_note = $3 WHERE id = $1 AND resolved_at IS NULL;

-- name: requeue_call
-- Queue a failed call again with fresh attempts (an operator's retry of a re-sync), to the
-- same property and grant generation.
INSERT INTO inlet_calls (grant_key, source, booking_id, property_id, operation, reason, request,
                         fingerprint, priority, next_attempt_at, deadline, created_at, resync_id,
                         generation, external_id)
VALUES (:grant_key, :source, :booking_id, :property_id, :operation, :reason, :request::jsonb,
        :fingerprint, :priority, :now, :deadline, :now, :resync_id, :generation, :external_id)
ON CONFLICT (grant_key) WHERE state = 'pending' DO NOTHING
RETURNING id;

-- name: requeue_delivery
-- Try a failed delivery again from scratch.
UPDATE deliveries
SET state = 'pending', attempts = 0, first_attempt_at = NULL, next_attempt_at = $2,
    finished_at = NULL, lease_owner = NULL, lease_until = NULL
WHERE id = $1 AND state = 'failed';

-- name: release_deliveries
-- Give back the delivery leases this worker holds (graceful shutdown).
UPDATE deliveries
SET lease_owner = NULL, lease_until = NULL, attempts = greatest(attempts - 1, 0)
WHERE state = 'pending' AND lease_owner = $1;

-- name: release_bookings
-- Give back the booking leases this reconciler holds (graceful shutdown).
UPDATE bookings SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1;

-- ---------------------------------------------------------------- trust boundaries

-- name: claim_webhook_id
-- Record a signed request's webhook-id for its source; no row back: seen and not yet expired.
INSERT INTO seen_webhook_ids (source, webhook_id, seen_at, expires_at)
VALUES ($1, $2, $3, $4)
ON CONFLICT (source, webhook_id) DO UPDATE
SET seen_at = EXCLUDED.seen_at, expires_at = EXCLUDED.expires_at
WHERE seen_webhook_ids.expires_at <= EXCLUDED.seen_at
RETURNING 1;

-- name: release_webhook_id
-- Forget a webhook-id whose request was refused, so the sender may retry it.
DELETE FROM seen_webhook_ids WHERE source = $1 AND webhook_id = $2 AND seen_at = $3;

-- name: purge_webhook_ids
-- Forget webhook-ids whose timestamps are too old to be accepted anyway.
DELETE FROM seen_webhook_ids WHERE expires_at <= $1;

-- name: insert_audit
-- One operator action or reveal, appended to the audit trail.
INSERT INTO audit_log (at, operator, role, action, source, booking_id, property_id,
                       escalation_id, resync_id, note, detail, request_id)
VALUES (:at, :operator, :role, :action, :source, :booking_id, :property_id, :escalation_id,
        :resync_id, :note, :detail::jsonb, :request_id)
RETURNING id;

-- name: list_audit
-- The audit trail, newest first, filtered by booking, operator, action and properties.
SELECT id, at, operator, role, action, source, booking_id, property_id, escalation_id,
       resync_id, note, detail::text AS detail, request_id
FROM audit_log
WHERE (:source::text IS NULL OR source = :source)
  AND (:booking_id::text IS NULL OR booking_id = :booking_id)
  AND (:operator::text IS NULL OR operator = :operator)
  AND (:action::text IS NULL OR action = :action)
  AND (:properties::text[] IS NULL OR property_id = ANY (:properties))
  AND (:before_id::bigint IS NULL OR id < :before_id)
ORDER BY id DESC
LIMIT :limit;

-- name: purge_calls
-- Forget up to :limit calls finished before :cutoff, with their attempts (the timeline's detail),
-- except what is still needed: a call an escalation points at, a GrantAccess since its grant's
-- last confirmed revocation (the recovery history, rule 6), and that revocation itself (it ends
-- the history). Pending calls are never touched. Rows another session holds are left for later.
WITH doomed AS (
    SELECT c.id
    FROM inlet_calls c
    WHERE c.state <> 'pending' AND c.finished_at < :cutoff
      AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.call_id = c.id)
      AND (CASE WHEN c.operation = 'grant' THEN
                    c.id < coalesce((SELECT max(r.id) FROM inlet_calls r
                                     WHERE r.grant_key = c.grant_key AND r.operation = 'revoke'
                                       AND r.state = 'succeeded'
                                       AND r.last_http_status IS NOT NULL), 0)
                WHEN c.operation = 'revoke' AND c.state = 'succeeded'
                     AND c.last_http_status IS NOT NULL THEN
                    c.id < (SELECT max(r.id) FROM inlet_calls r
                            WHERE r.grant_key = c.grant_key AND r.operation = 'revoke'
                              AND r.state = 'succeeded' AND r.last_http_status IS NOT NULL)
                ELSE true END)
    ORDER BY c.finished_at
    LIMIT :limit
    FOR UPDATE OF c SKIP LOCKED
), attempts AS (
    DELETE FROM call_attempts a USING doomed WHERE a.call_id = doomed.id
)
DELETE FROM inlet_calls c USING doomed WHERE c.id = doomed.id;

-- name: purge_deliveries
-- Forget up to :limit deliveries finished before :cutoff that no escalation points at.
WITH doomed AS (
    SELECT d.id
    FROM deliveries d
    WHERE d.state <> 'pending' AND d.finished_at < :cutoff
      AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.delivery_id = d.id)
    ORDER BY d.finished_at
    LIMIT :limit
    FOR UPDATE OF d SKIP LOCKED
)
DELETE FROM deliveries d USING doomed WHERE d.id = doomed.id;

-- name: purge_access_changes
-- Forget up to :limit access changes made before :cutoff that no delivery still holds.
WITH doomed AS (
    SELECT c.id
    FROM access_changes c
    WHERE c.created_at < :cutoff
      AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.change_id = c.id)
    ORDER BY c.id
    LIMIT :limit
    FOR UPDATE OF c SKIP LOCKED
)
DELETE FROM access_changes c USING doomed WHERE c.id = doomed.id;

-- name: escalation_scope
-- The property of one escalation (which operators may see it).
SELECT property_id FROM escalations WHERE id = $1;

-- ---------------------------------------------------------------- operator console

-- name: insert_console_session
-- A new console session (the SHA-256 of its id), signed in with a token of this digest.
INSERT INTO console_sessions (id_sha256, operator, token_sha256, created_at, last_seen_at,
                              expires_at)
VALUES (:id_sha256, :operator, :token_sha256, :now, :now, :expires_at);

-- name: console_session
-- A live console session: not expired ($2 is now) and used within the idle limit ($3 seconds).
SELECT operator, token_sha256, created_at, last_seen_at, expires_at
FROM console_sessions
WHERE id_sha256 = $1 AND expires_at > $2
  AND last_seen_at > $2::timestamptz - make_interval(secs => $3);

-- name: touch_console_session
-- Record that a session was used (at most once a minute, so reads stay reads).
UPDATE console_sessions SET last_seen_at = $2
WHERE id_sha256 = $1 AND last_seen_at < $2::timestamptz - interval '1 minute';

-- name: delete_console_session
-- Sign a session out.
DELETE FROM console_sessions WHERE id_sha256 = $1;

-- name: purge_console_sessions
-- Forget sessions past their end or idle for longer than the limit ($2 seconds).
DELETE FROM console_sessions
WHERE expires_at <= $1 OR last_seen_at <= $1::timestamptz - make_interval(secs => $2);

-- name: console_bookings
-- Bookings matching an operator's search, most recently changed first, one page at a time:
-- source, booking id (prefix), property, resource and stay status (from the booking's latest
-- event), only those with an open escalation, only the operator's properties (:properties, all if null).
SELECT b.source, b.booking_id, b.property_id, b.marked_at, b.reconciled_at, last.statuses,
       last.resources,
       (SELECT count(*) FROM escalations e
        WHERE e.source = b.source AND e.booking_id = b.booking_id AND e.resolved_at IS NULL)
           AS open_escalations
FROM bookings b
CROSS JOIN LATERAL (
    SELECT ARRAY(SELECT DISTINCT s ->> 'status'
                 FROM jsonb_array_elements(ev.event -> 'booking' -> 'stays') AS s) AS statuses,
           ARRAY(SELECT DISTINCT s ->> 'resource_id'
                 FROM jsonb_array_elements(ev.event -> 'booking' -> 'stays') AS s
                 WHERE s ->> 'resource_id' IS NOT NULL) AS resources
    FROM events ev
    WHERE ev.source = b.source AND ev.booking_id = b.booking_id
    ORDER BY ev.occurred_at DESC, ev.position DESC
    LIMIT 1
) AS last
WHERE (:source::text IS NULL OR b.source = :source)
  AND (:booking_prefix::text IS NULL OR starts_with(b.booking_id, :booking_prefix))
  AND (:property_id::text IS NULL OR b.property_id = :property_id)
  AND (:resource_id::text IS NULL OR :resource_id = ANY (last.resources))
  AND (:status::text IS NULL OR :status = ANY (last.statuses))
  AND (NOT :escalated_only::boolean OR EXISTS (
      SELECT 1 FROM escalations e
      WHERE e.source = b.source AND e.booking_id = b.booking_id AND e.resolved_at IS NULL))
  AND (:properties::text[] IS NULL OR b.property_id = ANY (:properties))
ORDER BY b.marked_at DESC, b.source, b.booking_id
LIMIT :limit OFFSET :offset;

-- name: escalations_in_detail
-- Escalations for a person on call, open first, then critical before high before warning, then
-- oldest first: the hotel, the booking, the doors and validity (what Inlet holds, else what the
-- call asked for), Inlet's reference and its last message; one escalation when :escalation_id is given.
SELECT e.id, e.grant_key, e.source, e.booking_id, e.property_id, e.call_id, e.delivery_id,
       e.operation, e.severity, e.reason, e.message, e.created_at, e.resolved_at,
       e.resolved_note, g.reference_id,
       coalesce(g.access_points,
                ARRAY(SELECT jsonb_array_elements_text(c.request -> 'access_points')))
           AS access_points,
       coalesce(g.valid_from, (c.request ->> 'valid_from')::timestamptz) AS valid_from,
       coalesce(g.valid_to, (c.request ->> 'valid_to')::timestamptz) AS valid_to,
       coalesce(c.last_message, e.message) AS last_message
FROM escalations e
LEFT JOIN grants g ON g.grant_key = e.grant_key
LEFT JOIN inlet_calls c ON c.id = e.call_id
WHERE (:open_only::boolean IS NULL OR (e.resolved_at IS NULL) = :open_only)
  AND (:severity::text IS NULL OR e.severity = :severity)
  AND (:property_id::text IS NULL OR e.property_id = :property_id)
  AND (:properties::text[] IS NULL OR e.property_id = ANY (:properties))
  AND (:escalation_id::bigint IS NULL OR e.id = :escalation_id)
ORDER BY e.resolved_at IS NOT NULL,
         CASE e.severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 ELSE 2 END,
         e.created_at, e.id
LIMIT :limit;

-- name: escalation_followed
-- One escalation and what a retry of it led to: when and by whom it was retried (its audit
-- row), the grant's newest call after the one that gave up, the retried delivery's state, an
-- escalation raised again for either, and whether the booking was planned after the retry.
SELECT e.id, e.property_id, e.call_id, e.delivery_id,
       r.at AS retried_at, r.operator AS retried_by,
       c.id AS next_call_id, c.operation AS next_operation, c.reason AS next_reason,
       c.state AS next_state, c.attempts AS next_attempts, c.last_outcome AS next_outcome,
       c.last_message AS next_message,
       d.state AS delivery_state,
       (SELECT n.id FROM escalations n
        WHERE n.grant_key = e.grant_key AND n.id > e.id
          AND (n.call_id = c.id OR (e.delivery_id IS NOT NULL AND n.delivery_id = e.delivery_id))
        ORDER BY n.id DESC LIMIT 1) AS again_id,
       coalesce(b.seen_seq >= b.marked_seq AND b.reconciled_at >= r.at, false) AS looked_at_since
FROM escalations e
LEFT JOIN LATERAL (
    SELECT a.at, a.operator FROM audit_log a
    WHERE a.escalation_id = e.id AND a.action = 'retry'
    ORDER BY a.id DESC LIMIT 1
) AS r ON true
LEFT JOIN LATERAL (
    SELECT * FROM inlet_calls x
    WHERE e.call_id IS NOT NULL AND x.grant_key = e.grant_key AND x.id > e.call_id
    ORDER BY x.id DESC LIMIT 1
) AS c ON true
LEFT JOIN deliveries d ON d.id = e.delivery_id
LEFT JOIN bookings b ON b.source = e.source AND b.booking_id = e.booking_id
WHERE e.id = $1;

-- name: console_pollers
-- Every PMS poller's cursor: its last success and error, and how far it has read.
SELECT connection, sync_time, last_success_at, last_error
FROM poll_cursors
ORDER BY connection;

-- name: console_backlog
-- What waits: pending calls (and those overdue by more than $2 seconds), deliveries waiting.
SELECT (SELECT count(*) FROM inlet_calls WHERE state = 'pending') AS calls_pending,
       (SELECT count(*) FROM inlet_calls
        WHERE state = 'pending' AND next_attempt_at < $1::timestamptz - make_interval(secs => $2))
           AS calls_overdue,
       (SELECT count(*) FROM inlet_calls
        WHERE state = 'pending' AND last_outcome IN ('temporary', 'permanent')) AS calls_failing,
       (SELECT count(*) FROM deliveries WHERE state = 'pending') AS deliveries_pending;

-- name: console_open_escalations
-- Open escalations by hotel and severity.
SELECT property_id, severity, count(*) AS open
FROM escalations
WHERE resolved_at IS NULL
GROUP BY 1, 2
ORDER BY 1, 2;

-- name: resync_preview
-- The bookings whose active grants a re-sync selector matches (as resync_candidates), with
-- how many grants each, the first :limit.
SELECT g.source, g.booking_id, g.property_id, count(DISTINCT g.grant_key) AS grants,
       coalesce(array_agg(DISTINCT door ORDER BY door) FILTER (WHERE door IS NOT NULL),
                '{}') AS access_points
FROM grants g
LEFT JOIN LATERAL unnest(g.access_points) AS door ON true
WHERE g.state = 'active' AND g.applied IS NOT NULL
  AND (:property_id::text IS NULL OR g.property_id = :property_id)
  AND (:access_points::text[] IS NULL OR g.access_points && :access_points)
  AND (:resource_ids::text[] IS NULL OR g.resource_id = ANY (:resource_ids))
  AND (:bookings::text[] IS NULL OR (g.source || ':' || g.booking_id) = ANY (:bookings))
GROUP BY g.source, g.booking_id, g.property_id
ORDER BY g.source, g.booking_id
LIMIT :limit;
-- ---------------------------------------------------------------- apaleo notifications

-- name: insert_apaleo_notification
-- Store one apaleo notification once per (connection, apaleo's id); true when it is new.
INSERT INTO apaleo_notifications (connection, notification_id, topic, type, entity_id, sent_at,
                                  received_at, next_attempt_at)
VALUES (:connection, :notification_id, :topic, :type, :entity_id, :sent_at, :received_at, :received_at)
ON CONFLICT (connection, notification_id) DO NOTHING
RETURNING id;

-- name: claim_apaleo_notifications
-- Lease due notifications (SKIP LOCKED); the attempt is counted when claimed.
WITH picked AS (
    SELECT id
    FROM apaleo_notifications
    WHERE state = 'pending' AND next_attempt_at <= $1
      AND (lease_until IS NULL OR lease_until < $1)
    ORDER BY next_attempt_at, id
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
UPDATE apaleo_notifications n
SET lease_owner = $2, lease_until = $1 + make_interval(secs => $4), attempts = n.attempts + 1,
    first_attempt_at = coalesce(n.first_attempt_at, $1)
FROM picked
WHERE n.id = picked.id
RETURNING n.id, n.connection, n.notification_id, n.type, n.entity_id, n.received_at,
          n.attempts, n.first_attempt_at;

-- name: finish_apaleo_notification
-- Record a notification's outcome, only if this worker still holds its lease.
UPDATE apaleo_notifications
SET state = :state, finished_at = :now, event_id = :event_id, last_error = :error, lease_owner = NULL,
    lease_until = NULL
WHERE id = :notification AND state = 'pending' AND lease_owner = :owner AND attempts = :attempt;

-- name: settle_apaleo_notifications
-- Close the other pending notifications of a reservation received before a fetch that read it.
UPDATE apaleo_notifications
SET state = :state, finished_at = :now, event_id = :event_id, lease_owner = NULL, lease_until = NULL
WHERE connection = :connection AND entity_id = :entity_id AND state = 'pending' AND received_at <= :fetched_at
  AND (lease_until IS NULL OR lease_until < :now);

-- name: retry_apaleo_notification
-- Put a notification whose fetch failed back for a later attempt, if this worker holds it.
UPDATE apaleo_notifications
SET next_attempt_at = :retry_at, last_error = :error, lease_owner = NULL, lease_until = NULL
WHERE id = :notification AND state = 'pending' AND lease_owner = :owner AND attempts = :attempt;

-- name: release_apaleo_notifications
-- Give back this worker's leases (shutdown); the attempt is not counted again.
UPDATE apaleo_notifications
SET lease_owner = NULL, lease_until = NULL, attempts = greatest(attempts - 1, 0)
WHERE state = 'pending' AND lease_owner = $1;

-- name: next_apaleo_notification_due
-- When the earliest pending notification becomes due.
SELECT min(greatest(next_attempt_at, coalesce(lease_until, next_attempt_at)))
FROM apaleo_notifications
WHERE state = 'pending';
