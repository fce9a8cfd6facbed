-- Every webhook delivered to kiln, verified and recorded before it is acted on. A sender's
-- event id is unique per source, so a retry or a concurrent copy is recorded once. `subject`
-- is what the event is about (a Stripe Checkout Session): one subject's events are applied
-- one at a time, in the order they arrived. `occurred_at` is when the sender says the event
-- happened (the workshop system's moves), to tell a late event from a newer one.
CREATE TABLE inbox (
    id           INTEGER PRIMARY KEY,
    source       TEXT    NOT NULL,
    event_id     TEXT    NOT NULL,
    delivery_id  TEXT,
    topic        TEXT    NOT NULL,
    subject      TEXT,
    occurred_at  INTEGER,
    payload      TEXT    NOT NULL,
    received_at  INTEGER NOT NULL,
    outcome      TEXT    NOT NULL,
    reason       TEXT,
    order_id     INTEGER REFERENCES orders (id),
    attempts     INTEGER NOT NULL,
    run_at       INTEGER NOT NULL,
    locked_until INTEGER,
    updated_at   INTEGER NOT NULL,
    CONSTRAINT inbox_event_key UNIQUE (source, event_id)
);
-- The applier claims from two small partial indexes, each read in order (an OR of the two
-- made SQLite scan the whole table): due deliveries, and ones whose applier's lease ran out.
CREATE INDEX inbox_due_idx ON inbox (run_at, id) WHERE outcome = 'pending';
CREATE INDEX inbox_lease_idx ON inbox (locked_until, id) WHERE outcome = 'running';
-- One subject's deliveries, whatever their outcome: the claim's head-of-line check and waking
-- parked ones read a handful of rows through it.
CREATE INDEX inbox_subject_idx ON inbox (source, subject, id);
CREATE INDEX inbox_order_idx ON inbox (order_id, id);

-- Which order stands for an object in another system (a Stripe Checkout Session): one
-- order per object, however many events name it.
CREATE TABLE order_links (
    source      TEXT    NOT NULL,
    external_id TEXT    NOT NULL,
    order_id    INTEGER NOT NULL REFERENCES orders (id),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (source, external_id)
);
