-- Every statement the service runs, by name. Each has a `-- name:` header and a one-line
-- description; service/store/queries.py loads them once.

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
