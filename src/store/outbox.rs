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

/// SQL inserting `n` jobs, each due at its own time (kind, order, event, time per job);
/// empty when there are none.
pub(crate) fn insert_sql(n: usize) -> String {
    if n == 0 {
        return String::new();
    }
    let rows: Vec<String> = (0..n)
        .map(|i| {
            let p = |k: usize| format!("${}", i * 4 + k);
            format!("({})", outbox_values(&p(1), &p(2), &p(3), &p(4)))
        })
        .collect();
    format!("INSERT INTO outbox ({OUTBOX_INSERT}) VALUES {}", rows.join(", "))
}

/// Binds jobs, each with its time (ms), to [`insert_sql`] for any backend.
pub(crate) fn bind_insert<'q, DB>(
    query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>,
    jobs: &[(JobRow, i64)],
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>
where
    DB: sqlx::Database,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'static str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut q = query;
    for (job, at_ms) in jobs {
        q = q.bind(job.kind).bind(job.order_id).bind(job.event_id).bind(*at_ms);
    }
    q
}

/// Most jobs in one statement: the placeholders are named (each time is used three times),
/// which costs SQLite's binding n² steps for n parameters (see [`super::sqlite::values`]), so
/// keep statements short.
const MAX_PER_STATEMENT: usize = 100;

/// Enqueues jobs, due now.
pub async fn enqueue(tx: &mut Tx, jobs: &[JobRow], now_ms: i64) -> Result<(), sqlx::Error> {
    let timed: Vec<(JobRow, i64)> = jobs.iter().map(|j| (j.clone(), now_ms)).collect();
    enqueue_at(tx, &timed).await
}

/// Enqueues jobs, each due at its own time (ms), in as few statements as the engines allow.
pub async fn enqueue_at(tx: &mut Tx, jobs: &[(JobRow, i64)]) -> Result<(), sqlx::Error> {
    for chunk in jobs.chunks(MAX_PER_STATEMENT) {
        let sql = insert_sql(chunk.len());
        on_tx!(tx, |conn| {
            bind_insert(sqlx::query(sqlx::AssertSqlSafe(sql)), chunk).execute(conn).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

/// Jobs of an order as `(kind, event_id, status)`, oldest first.
pub async fn for_order(db: &Db, order_id: i64) -> Result<Vec<(String, i64, String)>, sqlx::Error> {
    const SQL: &str = "SELECT kind, event_id, status FROM outbox WHERE order_id = $1 ORDER BY id";
    on_read!(db, |conn| sqlx::query_as(SQL).bind(order_id).fetch_all(conn).await)
}
