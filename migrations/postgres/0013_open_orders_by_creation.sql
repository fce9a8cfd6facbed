-- Lists of open orders newest (or oldest) first — the dashboard's late filter, "open only" —
-- walk this partial index and stop at a page, instead of sorting every open order or walking
-- the creation index over every order ever made. The late test is evaluated on the rows
-- walked, so a page of late orders reads about a page's worth of open orders when many are
-- late, and at most the open orders when none are.
CREATE INDEX orders_open_created_idx ON orders (created_at, id) WHERE status = 'open';
