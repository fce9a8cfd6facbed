-- The dashboard's list, search and board (issue 11), each served by an index.
-- Exact lookups: what a person types is compared case-insensitively, so the indexes hold
-- the lowered value (the phone is stored in E.164 form already). The email index is not
-- partial: SQLite cannot tell that `lower(customer_email) = ?` implies a non-NULL email.
CREATE INDEX orders_reference_lower_idx ON orders (lower(reference));
CREATE INDEX orders_email_lower_idx ON orders (lower(customer_email));
CREATE INDEX orders_phone_idx ON orders (customer_phone) WHERE customer_phone IS NOT NULL;

-- Sorting by due date (orders without one last), with keyset pages.
CREATE INDEX orders_due_idx ON orders ((coalesce(due_date, '9999-99-99')), id);

-- Open orders are a small part of a shop's history: the board, the late filter and lists
-- of open orders by due date or by time in stage read these partial indexes rather than
-- walk every order ever made (time in stage means little for a finished order, so that
-- sort has no index over all orders).
CREATE INDEX orders_open_idx ON orders (workflow, stage, stage_entered_at, id) WHERE status = 'open';
CREATE INDEX orders_open_due_idx ON orders ((coalesce(due_date, '9999-99-99')), id) WHERE status = 'open';
CREATE INDEX orders_open_stage_time_idx ON orders (stage_entered_at, id) WHERE status = 'open';

-- Fragment search: a pg_trgm GIN index over orders.search_text (reference, customer name,
-- email and phone, lowercased) serves `search_text LIKE '%…%'`.
-- An extension exists once per database, whatever schema kiln's tables are in: install it
-- in `public` when there is one (so that dropping one kiln schema never drops it from
-- under another) and name its operator class by the schema it is really in.
DO $$
DECLARE
    ext_schema name;
BEGIN
    SELECT n.nspname INTO ext_schema
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'pg_trgm';
    IF ext_schema IS NULL THEN
        ext_schema := CASE WHEN EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'public')
                           THEN 'public' ELSE current_schema() END;
        EXECUTE format('CREATE EXTENSION pg_trgm WITH SCHEMA %I', ext_schema);
    END IF;
    EXECUTE format('CREATE INDEX orders_search_trgm_idx ON orders USING gin (search_text %I.gin_trgm_ops)', ext_schema);
END;
$$;
