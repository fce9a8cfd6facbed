//! Staff users, their sessions and the shop-floor display links.

use sqlx::FromRow;

use super::{Db, Tx, on_read, on_tx, on_writer};

/// A stored user (the password only as its Argon2id PHC string).
#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    /// Id.
    pub id: i64,
    /// Sign-in email, lower case.
    pub email: String,
    /// Display name (the actor in the audit log).
    pub name: String,
    /// `owner`, `operator` or `viewer`.
    pub role: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Creation time (epoch ms).
    pub created_at: i64,
    /// When disabled, if disabled.
    pub disabled_at: Option<i64>,
}

/// A session together with its user, as one lookup returns them.
#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    /// Session id.
    pub id: i64,
    /// The user.
    pub user_id: i64,
    /// Last request (epoch ms).
    pub last_seen_at: i64,
    /// Absolute end (epoch ms).
    pub expires_at: i64,
    /// Revocation time.
    pub revoked_at: Option<i64>,
    /// The user's email.
    pub email: String,
    /// The user's name.
    pub name: String,
    /// The user's role.
    pub role: String,
    /// When the user was disabled.
    pub disabled_at: Option<i64>,
}

/// A stored shop-floor display link.
#[derive(Debug, Clone, FromRow)]
pub struct DisplayRow {
    /// Id.
    pub id: i64,
    /// Where the screen hangs, e.g. "Workshop TV".
    pub name: String,
    /// Only this workflow's board, or every workflow.
    pub workflow: Option<String>,
    /// The token, sealed, so the owner can open the link again.
    pub token_enc: String,
    /// Who created it.
    pub created_by: String,
    /// Creation time.
    pub created_at: i64,
    /// Revocation time.
    pub revoked_at: Option<i64>,
}

/// Adds a user; `None` if the email is taken.
pub async fn insert_user(
    db: &Db,
    email: &str,
    name: &str,
    role: &str,
    password_hash: &str,
    now: i64,
) -> Result<Option<i64>, sqlx::Error> {
    const SQL: &str = "INSERT INTO users (email, name, role, password_hash, created_at, updated_at) \
        VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (email) DO NOTHING RETURNING id";
    on_writer!(db, |conn| {
        sqlx::query_scalar(SQL)
            .bind(email)
            .bind(name)
            .bind(role)
            .bind(password_hash)
            .bind(now)
            .fetch_optional(conn)
            .await
    })
}

/// The user with this (normalised) email.
pub async fn user_by_email(db: &Db, email: &str) -> Result<Option<UserRow>, sqlx::Error> {
    const SQL: &str =
        "SELECT id, email, name, role, password_hash, created_at, disabled_at FROM users WHERE email = $1";
    on_read!(db, |conn| sqlx::query_as(SQL).bind(email).fetch_optional(conn).await)
}

/// The user with this id.
pub async fn user_by_id(db: &Db, id: i64) -> Result<Option<UserRow>, sqlx::Error> {
    const SQL: &str = "SELECT id, email, name, role, password_hash, created_at, disabled_at FROM users WHERE id = $1";
    on_read!(db, |conn| sqlx::query_as(SQL).bind(id).fetch_optional(conn).await)
}

/// Every user, by email.
pub async fn users(db: &Db) -> Result<Vec<UserRow>, sqlx::Error> {
    const SQL: &str = "SELECT id, email, name, role, password_hash, created_at, disabled_at FROM users ORDER BY email";
    on_read!(db, |conn| sqlx::query_as(SQL).fetch_all(conn).await)
}

/// How many enabled owners there are (the last one may not be demoted or disabled).
pub async fn active_owners(tx: &mut Tx) -> Result<i64, sqlx::Error> {
    const SQL: &str = "SELECT COUNT(*) FROM users WHERE role = 'owner' AND disabled_at IS NULL";
    on_tx!(tx, |conn| sqlx::query_scalar(SQL).fetch_one(conn).await)
}

/// Locks and reads a user inside a transaction.
pub async fn user_for_update(tx: &mut Tx, id: i64) -> Result<Option<UserRow>, sqlx::Error> {
    // SQLite's one writer already serialises transactions; PostgreSQL needs the row lock.
    const SQLITE: &str =
        "SELECT id, email, name, role, password_hash, created_at, disabled_at FROM users WHERE id = $1";
    const POSTGRES: &str =
        "SELECT id, email, name, role, password_hash, created_at, disabled_at FROM users WHERE id = $1 FOR UPDATE";
    match tx {
        Tx::Sqlite(tx) => sqlx::query_as(SQLITE).bind(id).fetch_optional(&mut **tx).await,
        Tx::Postgres(tx) => sqlx::query_as(POSTGRES).bind(id).fetch_optional(&mut **tx).await,
    }
}

/// Changes a user's role.
pub async fn set_role(tx: &mut Tx, id: i64, role: &str, now: i64) -> Result<(), sqlx::Error> {
    const SQL: &str = "UPDATE users SET role = $1, updated_at = $2 WHERE id = $3";
    on_tx!(tx, |conn| sqlx::query(SQL).bind(role).bind(now).bind(id).execute(conn).await.map(|_| ()))?;
    Ok(())
}

/// Disables (or, with `None`, re-enables) a user.
pub async fn set_disabled(tx: &mut Tx, id: i64, at: Option<i64>, now: i64) -> Result<(), sqlx::Error> {
    const SQL: &str = "UPDATE users SET disabled_at = $1, updated_at = $2 WHERE id = $3";
    on_tx!(tx, |conn| sqlx::query(SQL).bind(at).bind(now).bind(id).execute(conn).await.map(|_| ()))?;
    Ok(())
}

/// Replaces a user's password hash.
pub async fn set_password(tx: &mut Tx, id: i64, hash: &str, now: i64) -> Result<(), sqlx::Error> {
    const SQL: &str = "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3";
    on_tx!(tx, |conn| sqlx::query(SQL).bind(hash).bind(now).bind(id).execute(conn).await.map(|_| ()))?;
    Ok(())
}

/// Starts a session.
pub async fn insert_session(
    db: &Db,
    token_hash: &str,
    user_id: i64,
    now: i64,
    expires: i64,
    address: Option<&str>,
    user_agent: Option<&str>,
) -> Result<i64, sqlx::Error> {
    const SQL: &str = "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at, address, user_agent) \
        VALUES ($1, $2, $3, $3, $4, $5, $6) RETURNING id";
    on_writer!(db, |conn| {
        sqlx::query_scalar(SQL)
            .bind(token_hash)
            .bind(user_id)
            .bind(now)
            .bind(expires)
            .bind(address)
            .bind(user_agent)
            .fetch_one(conn)
            .await
    })
}

/// The session with this token hash, with its user.
pub async fn session_by_hash(db: &Db, token_hash: &str) -> Result<Option<SessionRow>, sqlx::Error> {
    const SQL: &str = "SELECT s.id, s.user_id, s.last_seen_at, s.expires_at, s.revoked_at, \
        u.email, u.name, u.role, u.disabled_at \
        FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1";
    on_read!(db, |conn| sqlx::query_as(SQL).bind(token_hash).fetch_optional(conn).await)
}

/// Records a request on a session (for the idle timeout).
pub async fn touch_session(db: &Db, id: i64, now: i64) -> Result<(), sqlx::Error> {
    const SQL: &str = "UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND last_seen_at < $1";
    on_writer!(db, |conn| sqlx::query(SQL).bind(now).bind(id).execute(conn).await.map(|_| ()))?;
    Ok(())
}

/// Ends one session.
pub async fn revoke_session(db: &Db, id: i64, now: i64) -> Result<(), sqlx::Error> {
    const SQL: &str = "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
    on_writer!(db, |conn| sqlx::query(SQL).bind(now).bind(id).execute(conn).await.map(|_| ()))?;
    Ok(())
}

/// Ends every session of a user; returns how many were open.
pub async fn revoke_user_sessions(tx: &mut Tx, user_id: i64, now: i64) -> Result<u64, sqlx::Error> {
    const SQL: &str = "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL";
    on_tx!(tx, |conn| sqlx::query(SQL).bind(now).bind(user_id).execute(conn).await.map(|r| r.rows_affected()))
}

/// Adds a display link.
pub async fn insert_display(
    db: &Db,
    name: &str,
    workflow: Option<&str>,
    token_hash: &str,
    token_enc: &str,
    created_by: &str,
    now: i64,
) -> Result<i64, sqlx::Error> {
    const SQL: &str = "INSERT INTO display_links (name, workflow, token_hash, token_enc, created_by, created_at) \
        VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";
    on_writer!(db, |conn| {
        sqlx::query_scalar(SQL)
            .bind(name)
            .bind(workflow)
            .bind(token_hash)
            .bind(token_enc)
            .bind(created_by)
            .bind(now)
            .fetch_one(conn)
            .await
    })
}

/// The active display link with this token hash.
pub async fn display_by_hash(db: &Db, token_hash: &str) -> Result<Option<DisplayRow>, sqlx::Error> {
    const SQL: &str = "SELECT id, name, workflow, token_enc, created_by, created_at, revoked_at FROM display_links WHERE token_hash = $1 AND revoked_at IS NULL";
    on_read!(db, |conn| sqlx::query_as(SQL).bind(token_hash).fetch_optional(conn).await)
}

/// Every display link, newest first.
pub async fn displays(db: &Db) -> Result<Vec<DisplayRow>, sqlx::Error> {
    const SQL: &str =
        "SELECT id, name, workflow, token_enc, created_by, created_at, revoked_at FROM display_links ORDER BY id DESC";
    on_read!(db, |conn| sqlx::query_as(SQL).fetch_all(conn).await)
}

/// Revokes a display link; `false` if there was no such active link.
pub async fn revoke_display(db: &Db, id: i64, now: i64) -> Result<bool, sqlx::Error> {
    const SQL: &str = "UPDATE display_links SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
    let n = on_writer!(db, |conn| sqlx::query(SQL).bind(now).bind(id).execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// One entry of the staff audit log.
#[derive(Debug, Clone, FromRow)]
pub struct AuditRow {
    /// Id.
    pub id: i64,
    /// Who (a user's email, or `cli`).
    pub actor: String,
    /// What, e.g. `user.disabled`.
    pub action: String,
    /// To what, e.g. the user's email.
    pub subject: String,
    /// Extra facts.
    pub detail: String,
    /// When.
    pub created_at: i64,
}

/// Appends to the staff audit log.
pub async fn audit(
    db: &Db,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    const SQL: &str =
        "INSERT INTO staff_audit (actor, action, subject, detail, created_at) VALUES ($1, $2, $3, $4, $5)";
    on_writer!(db, |conn| sqlx::query(SQL)
        .bind(actor)
        .bind(action)
        .bind(subject)
        .bind(detail)
        .bind(now)
        .execute(conn)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// Appends to the staff audit log inside a transaction.
pub async fn audit_in(
    tx: &mut Tx,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    const SQL: &str =
        "INSERT INTO staff_audit (actor, action, subject, detail, created_at) VALUES ($1, $2, $3, $4, $5)";
    on_tx!(tx, |conn| sqlx::query(SQL)
        .bind(actor)
        .bind(action)
        .bind(subject)
        .bind(detail)
        .bind(now)
        .execute(conn)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// The newest entries of the staff audit log.
pub async fn audit_log(db: &Db, limit: i64) -> Result<Vec<AuditRow>, sqlx::Error> {
    const SQL: &str =
        "SELECT id, actor, action, subject, detail, created_at FROM staff_audit ORDER BY id DESC LIMIT $1";
    on_read!(db, |conn| sqlx::query_as(SQL).bind(limit).fetch_all(conn).await)
}
