-- Fragment search through keys that say both what an order's search text contains and when
-- the order was made (see `search::keys` in src/store/orders/search.rs, which computes the
-- same keys for a search).
--
-- pg_trgm's index answered "which orders contain these trigrams" for the whole history: a
-- fragment found in 0.2% of a million orders meant fetching ~2,000 rows, and ten times as
-- many candidates that held the trigrams apart, to sort them and keep the newest 50. Here a
-- key is a 3- or 4-character piece of the text prefixed with the order's period of creation
-- (created_at >> 31: about 25 days), so a search asks for the newest period first and fetches
-- only that period's matches. 4-character pieces make a longer fragment's candidates nearly
-- exact; 3-character ones serve three-character fragments.
--
-- A SQL function with a FROM clause is never inlined, so queries name this expression and
-- the planner matches it to the index.
CREATE FUNCTION search_keys(body text, created_at bigint) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT coalesce(array_agg((created_at >> 31) || ' ' || piece), '{}')
    FROM (
        SELECT substr(body, i, 3) FROM generate_series(1, length(body) - 2) AS i
        UNION ALL
        SELECT substr(body, i, 4) FROM generate_series(1, length(body) - 3) AS i
    ) AS pieces (piece)
$$;

-- Without the pending list, a search never reads a list of recent insertions sequentially
-- (once per key it looks up); each write pays for its keys at once instead.
CREATE INDEX orders_search_keys_idx ON orders USING gin (search_keys(search_text, created_at)) WITH (fastupdate = off);
DROP INDEX orders_search_trgm_idx;
