-- The shop's people and their sessions. Passwords are Argon2id PHC strings; session and
-- display tokens are stored as SHA-256 hashes, so a copy of the database logs nobody in.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    disabled_at   INTEGER,
    CONSTRAINT users_email_key UNIQUE (email)
);

-- One row per sign-in. `last_seen_at` moves with use (for the idle timeout); `expires_at` is
-- the absolute end, fixed at sign-in.
CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY,
    token_hash   TEXT    NOT NULL,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    address      TEXT,
    user_agent   TEXT,
    CONSTRAINT sessions_token_key UNIQUE (token_hash)
);
CREATE INDEX sessions_user_idx ON sessions (user_id) WHERE revoked_at IS NULL;

-- Read-only links for the shop-floor TV: no login, revocable.
CREATE TABLE display_links (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    workflow   TEXT,
    token_hash TEXT    NOT NULL,
    token_enc  TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    CONSTRAINT display_links_token_key UNIQUE (token_hash)
);

-- What staff did outside any order (users, tokens, display links, sign-ins), append-only
-- like order_events; what they did to orders is in order_events with them as the actor.
CREATE TABLE staff_audit (
    id         INTEGER PRIMARY KEY,
    actor      TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    detail     TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TRIGGER staff_audit_no_update BEFORE UPDATE ON staff_audit
BEGIN SELECT RAISE(ABORT, 'staff_audit is append-only'); END;
CREATE TRIGGER staff_audit_no_delete BEFORE DELETE ON staff_audit
BEGIN SELECT RAISE(ABORT, 'staff_audit is append-only'); END;
