-- Fragment search through keys that say both what an order's search text contains and when
-- the order was made (see `search::in_periods` in src/store/orders/search.rs, which
-- asks for the same keys).
--
-- pg_trgm's index answered "which orders contain these trigrams" for the whole history: a
-- fragment found in 0.2% of a million orders meant fetching ~2,000 rows, and ten times as
-- many candidates that held the trigrams apart, to sort them and keep the newest 50. Here a
-- key is a 3- or 4-character piece of the text prefixed with the order's period of creation
-- (created_at >> 31: about 25 days), so a search asks for the newest period first and fetches
-- only that period's matches. 4-character pieces make a longer fragment's candidates nearly
-- exact; 3-character ones serve three-character fragments.
--
-- Computing an order's ~130 keys costs ~40 us, and queries must never do it per row walked:
-- the cost tells the planner so. A SQL function with a FROM clause is never inlined, so
-- queries that name this expression match the index.
CREATE FUNCTION search_keys(body text, created_at bigint) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE COST 1000
AS $$
    SELECT coalesce(array_agg((created_at >> 31) || ' ' || piece), '{}')
    FROM (
        SELECT substr(body, i, 3) FROM generate_series(1, length(body) - 2) AS i
        UNION ALL
        SELECT substr(body, i, 4) FROM generate_series(1, length(body) - 3) AS i
    ) AS pieces (piece)
$$;

-- The keys live beside the orders, as SQLite's FTS5 table does: a stage move writes a new
-- version of the order's row, which would insert every key again into an index on `orders`
-- (~0.3 ms of a move's ~1 ms), while this row changes only with the text.
CREATE TABLE order_search (
    order_id    BIGINT PRIMARY KEY REFERENCES orders (id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    search_text TEXT   NOT NULL
);
INSERT INTO order_search (order_id, created_at, search_text) SELECT id, created_at, search_text FROM orders;

-- Without the pending list, a search never reads a list of recent insertions sequentially
-- (once per key it looks up); each new order pays for its keys at once instead.
CREATE INDEX order_search_keys_idx ON order_search USING gin (search_keys(search_text, created_at))
    WITH (fastupdate = off);

CREATE FUNCTION order_search_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO order_search (order_id, created_at, search_text)
    SELECT id, created_at, search_text FROM new_orders;
    RETURN NULL;
END;
$$;
CREATE TRIGGER orders_search_insert AFTER INSERT ON orders
    REFERENCING NEW TABLE AS new_orders FOR EACH STATEMENT EXECUTE FUNCTION order_search_add();

-- Every change rewrites search_text with the rest of the mutable columns; the keys are
-- touched only when the text (or, by hand, the creation time) really changed.
CREATE FUNCTION order_search_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE order_search SET created_at = NEW.created_at, search_text = NEW.search_text WHERE order_id = NEW.id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER orders_search_update AFTER UPDATE OF search_text, created_at ON orders
    FOR EACH ROW WHEN (OLD.search_text IS DISTINCT FROM NEW.search_text OR OLD.created_at IS DISTINCT FROM NEW.created_at)
    EXECUTE FUNCTION order_search_change();

DROP INDEX orders_search_trgm_idx;
