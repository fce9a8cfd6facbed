//! API tokens, stored as SHA-256 hashes.

use sqlx::FromRow;

use super::{Db, Tx, from_ms, on_read, on_tx};

/// A stored API token (never the token itself).
#[derive(Debug, Clone, FromRow)]
pub struct TokenRow {
    /// Id.
    pub id: i64,
    /// Who or what uses it.
    pub name: String,
    /// `read` or `write`.
    pub scope: String,
    /// First characters of the token, to recognise it in listings.
    pub prefix: String,
    /// Creation time (epoch ms).
    pub created_at: i64,
    /// Revocation time, if revoked.
    pub revoked_at: Option<i64>,
}

impl TokenRow {
    /// Creation time.
    pub fn created(&self) -> chrono::DateTime<chrono::Utc> {
        from_ms(self.created_at)
    }
}

/// Stores a new token's hash.
pub async fn insert(
    tx: &mut Tx,
    name: &str,
    scope: &str,
    prefix: &str,
    hash: &str,
    now: i64,
) -> Result<i64, sqlx::Error> {
    const SQL: &str = "INSERT INTO api_tokens (name, scope, prefix, token_hash, created_at) \
        VALUES ($1, $2, $3, $4, $5) RETURNING id";
    on_tx!(tx, |conn| {
        sqlx::query_scalar(SQL).bind(name).bind(scope).bind(prefix).bind(hash).bind(now).fetch_one(conn).await
    })
}

/// The unrevoked token with this hash.
pub async fn active_by_hash(db: &Db, hash: &str) -> Result<Option<TokenRow>, sqlx::Error> {
    const SQL: &str = "SELECT id, name, scope, prefix, created_at, revoked_at FROM api_tokens \
        WHERE token_hash = $1 AND revoked_at IS NULL";
    on_read!(db, |conn| sqlx::query_as(SQL).bind(hash).fetch_optional(conn).await)
}

/// Every token, newest first.
pub async fn list(db: &Db) -> Result<Vec<TokenRow>, sqlx::Error> {
    const SQL: &str = "SELECT id, name, scope, prefix, created_at, revoked_at FROM api_tokens ORDER BY id DESC";
    on_read!(db, |conn| sqlx::query_as(SQL).fetch_all(conn).await)
}

/// Revokes the token with this id; `false` if there is no such active token.
pub async fn revoke(tx: &mut Tx, id: i64, now: i64) -> Result<bool, sqlx::Error> {
    const SQL: &str = "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
    let done = on_tx!(tx, |conn| sqlx::query(SQL).bind(now).bind(id).execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// A mark that changes whenever a token is revoked, by this process or another (the CLI on
/// the same SQLite file): how many are revoked, and the latest revocation time.
pub async fn revocation_mark(db: &Db) -> Result<(i64, i64), sqlx::Error> {
    const SQL: &str = "SELECT COUNT(*), COALESCE(MAX(revoked_at), 0) FROM api_tokens WHERE revoked_at IS NOT NULL";
    on_read!(db, |conn| sqlx::query_as(SQL).fetch_one(conn).await)
}
