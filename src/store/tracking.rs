//! Tracking links: a hash to find the order by token, and the token sealed so operators can
//! see the link again. At most one link per order is active; revoked ones are kept.

use super::{Db, Tx, on_read, on_tx};

/// SQL storing `n` new active links: order, token hash, sealed token, time per link.
fn insert_sql(tx: &Tx, n: usize) -> String {
    format!("INSERT INTO tracking_links (order_id, token_hash, token_enc, created_at) VALUES {}", tx.values(n, 4))
}

/// Stores a new active link for an order.
pub async fn insert(tx: &mut Tx, order_id: i64, hash: &str, sealed: &str, now: i64) -> Result<(), sqlx::Error> {
    insert_all(tx, &[(order_id, hash, sealed, now)]).await
}

/// Most links in one statement (four parameters each).
const MAX_PER_STATEMENT: usize = 1000;

/// Stores new active links for several orders: `(order_id, token hash, sealed token, ms)`.
pub async fn insert_all(tx: &mut Tx, links: &[(i64, &str, &str, i64)]) -> Result<(), sqlx::Error> {
    for chunk in links.chunks(MAX_PER_STATEMENT) {
        let sql = insert_sql(tx, chunk.len());
        on_tx!(tx, |conn| {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (order_id, hash, sealed, now) in chunk {
                q = q.bind(*order_id).bind(*hash).bind(*sealed).bind(*now);
            }
            q.execute(conn).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

/// Revokes the order's active link; `false` if it had none.
pub async fn revoke_active(tx: &mut Tx, order_id: i64, now: i64) -> Result<bool, sqlx::Error> {
    const SQL: &str = "UPDATE tracking_links SET revoked_at = $1 WHERE order_id = $2 AND revoked_at IS NULL";
    let done =
        on_tx!(tx, |conn| sqlx::query(SQL).bind(now).bind(order_id).execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(done > 0)
}

/// The sealed token of the order's active link.
pub async fn active_sealed(db: &Db, order_id: i64) -> Result<Option<String>, sqlx::Error> {
    const SQL: &str = "SELECT token_enc FROM tracking_links WHERE order_id = $1 AND revoked_at IS NULL";
    on_read!(db, |conn| sqlx::query_scalar(SQL).bind(order_id).fetch_optional(conn).await)
}

/// The hash of the order's active link.
pub async fn active_hash(db: &Db, order_id: i64) -> Result<Option<String>, sqlx::Error> {
    const SQL: &str = "SELECT token_hash FROM tracking_links WHERE order_id = $1 AND revoked_at IS NULL";
    on_read!(db, |conn| sqlx::query_scalar(SQL).bind(order_id).fetch_optional(conn).await)
}

/// The order an active token hash belongs to.
pub async fn order_for_hash(db: &Db, hash: &str) -> Result<Option<i64>, sqlx::Error> {
    const SQL: &str = "SELECT order_id FROM tracking_links WHERE token_hash = $1 AND revoked_at IS NULL";
    on_read!(db, |conn| sqlx::query_scalar(SQL).bind(hash).fetch_optional(conn).await)
}
