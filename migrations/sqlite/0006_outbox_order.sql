-- A delivery waits while an earlier message of its order (same channel and recipient), or an
-- earlier event still to be expanded, is pending, retrying or being sent: the claim looks for
-- such a job by order through this small partial index.
CREATE INDEX outbox_order_open_idx ON outbox (order_id, event_id) WHERE status IN ('pending', 'retrying', 'running');
