-- Core schema: orders, their line items, the append-only audit log, the outbox,
-- tracking links, API tokens and idempotency keys. Times are Unix epoch milliseconds
-- and JSON is stored as TEXT so that the same SQL runs on SQLite and PostgreSQL.

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('order_reference', 0);

CREATE TABLE orders (
    id                INTEGER PRIMARY KEY,
    reference         TEXT    NOT NULL,
    workflow          TEXT    NOT NULL,
    stage             TEXT    NOT NULL,
    status            TEXT    NOT NULL,
    priority          TEXT    NOT NULL,
    resume_priority   TEXT,
    customer_name     TEXT    NOT NULL,
    customer_email    TEXT,
    customer_phone    TEXT,
    customer_telegram TEXT,
    customer_channels TEXT    NOT NULL,
    customer_language TEXT    NOT NULL,
    customer_timezone TEXT,
    due_date          TEXT,
    notes             TEXT    NOT NULL,
    customer_note     TEXT    NOT NULL,
    external_ids      TEXT    NOT NULL,
    metadata          TEXT    NOT NULL,
    search_text       TEXT    NOT NULL,
    version           INTEGER NOT NULL,
    stage_entered_at  INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    CONSTRAINT orders_reference_key UNIQUE (reference)
);
CREATE INDEX orders_workflow_stage_idx ON orders (workflow, stage, id);
CREATE INDEX orders_created_idx ON orders (created_at, id);

CREATE TABLE order_items (
    id          INTEGER PRIMARY KEY,
    order_id    INTEGER NOT NULL REFERENCES orders (id),
    position    INTEGER NOT NULL,
    description TEXT    NOT NULL,
    variant     TEXT,
    quantity    INTEGER NOT NULL CHECK (quantity >= 1),
    material    TEXT,
    metadata    TEXT    NOT NULL
);
CREATE INDEX order_items_order_idx ON order_items (order_id, position);

CREATE TABLE order_events (
    id            INTEGER PRIMARY KEY,
    order_id      INTEGER NOT NULL REFERENCES orders (id),
    kind          TEXT    NOT NULL,
    from_stage    TEXT,
    to_stage      TEXT,
    actor         TEXT    NOT NULL,
    source        TEXT    NOT NULL,
    note          TEXT,
    internal_note TEXT,
    visibility    TEXT    NOT NULL,
    photo_ids     TEXT    NOT NULL,
    data          TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX order_events_order_idx ON order_events (order_id, id);

-- History is never rewritten: the audit log refuses updates and deletes.
CREATE TRIGGER order_events_no_update BEFORE UPDATE ON order_events
BEGIN SELECT RAISE(ABORT, 'order_events is append-only'); END;
CREATE TRIGGER order_events_no_delete BEFORE DELETE ON order_events
BEGIN SELECT RAISE(ABORT, 'order_events is append-only'); END;

CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY,
    kind       TEXT    NOT NULL,
    order_id   INTEGER REFERENCES orders (id),
    event_id   INTEGER REFERENCES order_events (id),
    payload    TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    attempts   INTEGER NOT NULL,
    run_at     INTEGER NOT NULL,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX outbox_due_idx ON outbox (status, run_at, id);

CREATE TABLE tracking_links (
    id         INTEGER PRIMARY KEY,
    order_id   INTEGER NOT NULL REFERENCES orders (id),
    token_hash TEXT    NOT NULL,
    token_enc  TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    CONSTRAINT tracking_links_token_key UNIQUE (token_hash)
);
CREATE UNIQUE INDEX tracking_links_active_idx ON tracking_links (order_id) WHERE revoked_at IS NULL;

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL,
    scope        TEXT    NOT NULL,
    prefix       TEXT    NOT NULL,
    token_hash   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    CONSTRAINT api_tokens_hash_key UNIQUE (token_hash)
);

CREATE TABLE idempotency_keys (
    token_id     INTEGER NOT NULL REFERENCES api_tokens (id),
    key          TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    status       INTEGER NOT NULL,
    body         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (token_id, key)
);
