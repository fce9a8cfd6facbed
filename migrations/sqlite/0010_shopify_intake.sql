-- Shopify names a delivery twice: `X-Shopify-Webhook-Id` (one per delivery, kept on retries)
-- and `X-Shopify-Event-Id` (one per event, shared by the deliveries of one event to several
-- subscriptions). The event id is the inbox's `event_id` (with the topic); the webhook id is
-- `delivery_id`, unique too, so either repeated is recorded once. NULLs (senders without a
-- delivery id) never collide.
CREATE UNIQUE INDEX inbox_delivery_key ON inbox (source, delivery_id);

-- Erasing a customer's personal data (Shopify's `customers/redact`) while keeping the audit
-- trail whole. A redaction is recorded here and, while it is in progress inside its
-- transaction, the audit log of that order accepts rewrites of its free text and recorded
-- data only; its kind, stages, actor, photos and times never change, and nothing is deleted.
CREATE TABLE redactions (
    id          INTEGER PRIMARY KEY,
    order_id    INTEGER NOT NULL REFERENCES orders (id),
    pseudonym   TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    in_progress INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX redactions_order_idx ON redactions (order_id, in_progress);
CREATE TRIGGER redactions_no_delete BEFORE DELETE ON redactions
BEGIN SELECT RAISE(ABORT, 'redactions are kept'); END;

DROP TRIGGER order_events_no_update;
CREATE TRIGGER order_events_no_update BEFORE UPDATE ON order_events
WHEN NOT (
    EXISTS (SELECT 1 FROM redactions r WHERE r.order_id = OLD.order_id AND r.in_progress = 1)
    AND NEW.id = OLD.id AND NEW.order_id = OLD.order_id AND NEW.kind = OLD.kind
    AND NEW.from_stage IS OLD.from_stage AND NEW.to_stage IS OLD.to_stage
    AND NEW.actor = OLD.actor AND NEW.source = OLD.source AND NEW.visibility = OLD.visibility
    AND NEW.photo_ids = OLD.photo_ids AND NEW.created_at = OLD.created_at
)
BEGIN SELECT RAISE(ABORT, 'order_events is append-only'); END;

-- A customer's data as kiln holds it, exported for a `customers/data_request`, for an
-- operator to download and hand to the shop.
CREATE TABLE data_exports (
    id         INTEGER PRIMARY KEY,
    source     TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
