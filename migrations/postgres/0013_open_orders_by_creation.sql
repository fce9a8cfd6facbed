-- Lists of open orders newest (or oldest) first — the dashboard's late filter, "open only" —
-- walk this partial index and stop at a page, instead of sorting every open order or walking
-- the creation index over every order ever made. The late test is evaluated on the rows
-- walked, so a page of late orders reads about a page's worth of open orders when many are
-- late, and at most the open orders when none are.
CREATE INDEX orders_open_created_idx ON orders (created_at, id) WHERE status = 'open';

-- The creation index carries the search text, so that a fragment search walks the newest
-- orders in an index-only scan (see `FRAGMENT_WINDOW` in src/store/orders/list.rs). It
-- replaces the plain (created_at, id) index, which it serves in every way.
CREATE INDEX orders_created_search_idx ON orders (created_at, id) INCLUDE (search_text);
DROP INDEX orders_created_idx;
