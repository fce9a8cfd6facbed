-- The worker claims from two small partial indexes, each read in order with a LIMIT: the
-- jobs that are due, and the ones whose worker's lease ran out. One index over every status
-- kept each claim walking the entries of all the jobs already sent.
CREATE INDEX outbox_ready_idx ON outbox (run_at, id) WHERE status IN ('pending', 'retrying');
CREATE INDEX outbox_lease_idx ON outbox (locked_until, id) WHERE status = 'running';
DROP INDEX outbox_due_idx;
