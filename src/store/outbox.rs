//! The transactional outbox: jobs written in the same transaction as the change that causes
//! them, picked up by the worker after commit.

use super::columns::{OUTBOX_INSERT, outbox_values};
use super::{Db, Tx, on_read, on_tx};

/// A job ready to insert: kind, order and event it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    /// Job kind (see `domain::model::jobs`).
    pub kind: &'static str,
    /// The order.
    pub order_id: i64,
    /// The event.
    pub event_id: i64,
}

/// SQL inserting `n` jobs due now (`$1` is the time); empty when there are none.
pub(crate) fn insert_sql(n: usize) -> String {
    if n == 0 {
        return String::new();
    }
    let rows: Vec<String> = (0..n)
        .map(|i| {
            let b = i * 3;
            format!("({})", outbox_values(&format!("${}", b + 2), &format!("${}", b + 3), &format!("${}", b + 4), "$1"))
        })
        .collect();
    format!("INSERT INTO outbox ({OUTBOX_INSERT}) VALUES {}", rows.join(", "))
}

/// Binds jobs to [`insert_sql`] for any backend.
pub(crate) fn bind_insert<'q, DB>(
    query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>,
    jobs: &[JobRow],
    now_ms: i64,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>
where
    DB: sqlx::Database,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'static str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut q = query.bind(now_ms);
    for job in jobs {
        q = q.bind(job.kind).bind(job.order_id).bind(job.event_id);
    }
    q
}

/// Enqueues jobs, due now, in one statement.
pub async fn enqueue(tx: &mut Tx, jobs: &[JobRow], now_ms: i64) -> Result<(), sqlx::Error> {
    if jobs.is_empty() {
        return Ok(());
    }
    let sql = insert_sql(jobs.len());
    on_tx!(tx, |conn| {
        bind_insert(sqlx::query(sqlx::AssertSqlSafe(sql)), jobs, now_ms).execute(conn).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Jobs of an order as `(kind, event_id, status)`, oldest first.
pub async fn for_order(db: &Db, order_id: i64) -> Result<Vec<(String, i64, String)>, sqlx::Error> {
    const SQL: &str = "SELECT kind, event_id, status FROM outbox WHERE order_id = $1 ORDER BY id";
    on_read!(db, |conn| sqlx::query_as(SQL).bind(order_id).fetch_all(conn).await)
}
