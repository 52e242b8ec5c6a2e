-- Retention of the lookup audit: the policy service deletes rows older than
-- retention.lookups in bounded batches (retention.py), oldest first.
CREATE INDEX lookups_by_at ON policy.lookups (at);
