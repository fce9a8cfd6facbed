//! Idempotency keys: the first request with a key claims it inside its own transaction and
//! saves its response there; later requests with the key replay that response.

use sqlx::FromRow;

use super::{Db, Tx, on_read, on_tx};

/// A saved response.
#[derive(Debug, Clone, FromRow)]
pub struct Saved {
    /// Hash of the request body that produced it.
    pub request_hash: String,
    /// HTTP status.
    pub status: i64,
    /// JSON body.
    pub body: String,
}

/// Claims `key` for this token; `false` if another request already holds it. On PostgreSQL
/// a concurrent claim waits here until the first transaction commits or rolls back.
pub async fn claim(tx: &mut Tx, token_id: i64, key: &str, request_hash: &str, now: i64) -> Result<bool, sqlx::Error> {
    const SQL: &str = "INSERT INTO idempotency_keys (token_id, key, request_hash, status, body, created_at) \
        VALUES ($1, $2, $3, 0, '', $4) ON CONFLICT DO NOTHING";
    let done = on_tx!(tx, |conn| {
        sqlx::query(SQL)
            .bind(token_id)
            .bind(key)
            .bind(request_hash)
            .bind(now)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

/// Saves the response for a claimed key, in the same transaction as the work.
pub async fn save(tx: &mut Tx, token_id: i64, key: &str, status: u16, body: &str) -> Result<(), sqlx::Error> {
    const SQL: &str = "UPDATE idempotency_keys SET status = $1, body = $2 WHERE token_id = $3 AND key = $4";
    on_tx!(tx, |conn| {
        sqlx::query(SQL)
            .bind(i64::from(status))
            .bind(body)
            .bind(token_id)
            .bind(key)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// The saved response for a key.
pub async fn find(db: &Db, token_id: i64, key: &str) -> Result<Option<Saved>, sqlx::Error> {
    const SQL: &str = "SELECT request_hash, status, body FROM idempotency_keys WHERE token_id = $1 AND key = $2";
    on_read!(db, |conn| sqlx::query_as(SQL).bind(token_id).bind(key).fetch_optional(conn).await)
}
