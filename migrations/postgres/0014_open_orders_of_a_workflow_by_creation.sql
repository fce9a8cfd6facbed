-- One workflow's open orders newest (or oldest) first — a board's list view, a page of its
-- late orders — walk this partial index and stop at a page. Without it the planner takes the
-- workflow's open orders from `orders_open_idx` (by stage) and sorts them all: 5,000 rows for
-- a page of 50.
CREATE INDEX orders_open_workflow_created_idx ON orders (workflow, created_at, id) WHERE status = 'open';
