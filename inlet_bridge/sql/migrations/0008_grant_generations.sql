-- A grant remembers where it was made and which generation it is (docs/architecture.md rule 12).
--
-- generation / external_id: the externalId sent to Inlet. Generation 1 is the grant key itself,
--   as every grant made before this migration; a grant made again after a confirmed revocation
--   is a new generation with its own externalId, so Inlet can never hand back a revoked grant.
-- account: a digest of the Inlet base URL and API key the grant was made with (NULL for rows
--   made before this migration: unknown). A 404 on revoke proves the grant gone only from there.
-- inlet_calls.external_id / generation: what the call sends and for which generation (NULL for
--   calls queued by the previous release: the grant key, generation 1).
-- access_changes.kind: the grant states the PMS hears of; 'access.failed' stays allowed for
--   rows written by the previous release during a rolling deploy.
--
-- Additive only: nullable columns or constant defaults (no table rewrite), a CHECK widened.

ALTER TABLE grants ADD COLUMN generation integer NOT NULL DEFAULT 1;
ALTER TABLE grants ADD COLUMN external_id text;
ALTER TABLE grants ADD COLUMN account text;

ALTER TABLE inlet_calls ADD COLUMN external_id text;
ALTER TABLE inlet_calls ADD COLUMN generation integer;

ALTER TABLE access_changes DROP CONSTRAINT access_changes_kind_check;
ALTER TABLE access_changes ADD CONSTRAINT access_changes_kind_check CHECK (kind IN (
    'access.granted', 'access.updated', 'access.revoked', 'access.grant_failed',
    'access.update_failed', 'access.revoke_failed', 'access.failed'));

-- Open escalations by operation, for the grant-state gauges without a scan of history.
CREATE INDEX escalations_open_idx ON escalations (operation, severity) WHERE resolved_at IS NULL;
