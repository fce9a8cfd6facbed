-- Notifications: the outbox also carries one delivery job per message (kind 'deliver'),
-- with its channel, recipient and the rendered message; every attempt is kept; opt-outs are
-- per order (scope 'order:<id>') or per address (scope 'address:<email or phone>').

ALTER TABLE outbox ADD COLUMN channel TEXT;
ALTER TABLE outbox ADD COLUMN recipient TEXT;
ALTER TABLE outbox ADD COLUMN locked_until INTEGER;
ALTER TABLE outbox ADD COLUMN sent_at INTEGER;
ALTER TABLE outbox ADD COLUMN parent_id INTEGER;
CREATE INDEX outbox_order_idx ON outbox (order_id, id);

CREATE TABLE outbox_attempts (
    id         INTEGER PRIMARY KEY,
    job_id     INTEGER NOT NULL REFERENCES outbox (id),
    attempt    INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    outcome    TEXT    NOT NULL,
    detail     TEXT    NOT NULL
);
CREATE INDEX outbox_attempts_job_idx ON outbox_attempts (job_id, id);

CREATE TABLE opt_outs (
    scope      TEXT    PRIMARY KEY,
    created_at INTEGER NOT NULL
);
