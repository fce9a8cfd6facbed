-- Tracking-page views for the deflection figures: one row per order per UTC day it was
-- opened (no address, no cookie, nothing about who looked), and an index for listing the
-- questions customers asked on their pages (portal notes in the audit log).

CREATE TABLE tracking_views (
    order_id BIGINT NOT NULL REFERENCES orders (id),
    -- Days since 1970-01-01, UTC.
    day      BIGINT NOT NULL,
    PRIMARY KEY (order_id, day)
);
CREATE INDEX tracking_views_day_idx ON tracking_views (day);
CREATE INDEX order_events_source_kind_idx ON order_events (source, kind, id);
