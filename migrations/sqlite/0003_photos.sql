-- Photos from the bench: the renditions live in the media store under random keys; this is
-- what the database knows about them. A photo shows on the timeline through the event that
-- lists its id, and only when both are customer-visible.

CREATE TABLE photos (
    id           INTEGER PRIMARY KEY,
    order_id     INTEGER NOT NULL REFERENCES orders (id),
    visibility   TEXT    NOT NULL,
    caption      TEXT,
    source_type  TEXT    NOT NULL,
    web_key      TEXT    NOT NULL,
    web_width    INTEGER NOT NULL,
    web_height   INTEGER NOT NULL,
    thumb_key    TEXT    NOT NULL,
    thumb_width  INTEGER NOT NULL,
    thumb_height INTEGER NOT NULL,
    bytes        INTEGER NOT NULL,
    uploaded_by  TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX photos_order_idx ON photos (order_id, id);
