-- The dashboard's list, search and board (issue 11), each served by an index.
-- Exact lookups: what a person types is compared case-insensitively, so the indexes hold
-- the lowered value (the phone is stored in E.164 form already). The email index is not
-- partial: SQLite cannot tell that `lower(customer_email) = ?` implies a non-NULL email.
CREATE INDEX orders_reference_lower_idx ON orders (lower(reference));
CREATE INDEX orders_email_lower_idx ON orders (lower(customer_email));
CREATE INDEX orders_phone_idx ON orders (customer_phone) WHERE customer_phone IS NOT NULL;

-- Sorting by due date (orders without one last), with keyset pages.
CREATE INDEX orders_due_idx ON orders (coalesce(due_date, '9999-99-99'), id);

-- Open orders are a small part of a shop's history: the board, the late filter and lists
-- of open orders by due date or by time in stage read these partial indexes rather than
-- walk every order ever made (time in stage means little for a finished order, so that
-- sort has no index over all orders).
CREATE INDEX orders_open_idx ON orders (workflow, stage, stage_entered_at, id) WHERE status = 'open';
CREATE INDEX orders_open_due_idx ON orders (coalesce(due_date, '9999-99-99'), id) WHERE status = 'open';
CREATE INDEX orders_open_stage_time_idx ON orders (stage_entered_at, id) WHERE status = 'open';

-- Fragment search: a trigram full-text index over orders.search_text (reference, customer
-- name, email and phone, lowercased), kept in step with orders by triggers. A phrase query
-- of three or more characters matches exactly the rows whose text contains it.
CREATE VIRTUAL TABLE orders_search USING fts5 (
    search_text,
    content = 'orders',
    content_rowid = 'id',
    tokenize = 'trigram'
);
INSERT INTO orders_search (orders_search) VALUES ('rebuild');

CREATE TRIGGER orders_search_insert AFTER INSERT ON orders
BEGIN
    INSERT INTO orders_search (rowid, search_text) VALUES (new.id, new.search_text);
END;

-- Every change rewrites search_text with the rest of the mutable columns; the index is
-- touched only when the text really changed.
CREATE TRIGGER orders_search_update AFTER UPDATE OF search_text ON orders
WHEN old.search_text <> new.search_text
BEGIN
    INSERT INTO orders_search (orders_search, rowid, search_text) VALUES ('delete', old.id, old.search_text);
    INSERT INTO orders_search (rowid, search_text) VALUES (new.id, new.search_text);
END;

CREATE TRIGGER orders_search_delete AFTER DELETE ON orders
BEGIN
    INSERT INTO orders_search (orders_search, rowid, search_text) VALUES ('delete', old.id, old.search_text);
END;
