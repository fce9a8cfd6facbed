//! The inbox: every verified webhook delivery, recorded before it is acted on, deduplicated
//! on the sender's event id, and applied after the sender has its answer.

use std::collections::HashMap;

use sqlx::FromRow;

use super::{Backend, Db, columns, is_unique_violation, on_read, on_tx, on_writer};

/// Most values in one statement's `IN` list or multi-row `VALUES` (at most four parameters
/// each: within SQLite's 32,766).
const MAX_PER_STATEMENT: usize = 1000;

/// A verified delivery, about to be recorded.
#[derive(Debug, Clone)]
pub struct NewDelivery<'a> {
    /// `stripe`, `shopify` or `workshop`.
    pub source: &'a str,
    /// The sender's event id.
    pub event_id: &'a str,
    /// The sender's delivery id, if it has one apart from the event id.
    pub delivery_id: Option<&'a str>,
    /// e.g. `checkout.session.completed`.
    pub topic: &'a str,
    /// What the event is about, to apply one subject's events in order.
    pub subject: Option<&'a str>,
    /// When the sender says it happened (ms), if it says.
    pub occurred_at: Option<i64>,
    /// The raw body, as verified.
    pub payload: &'a str,
}

/// A recorded delivery.
#[derive(Debug, Clone, FromRow)]
pub struct Entry {
    /// Id.
    pub id: i64,
    /// Sender.
    pub source: String,
    /// Sender's event id.
    pub event_id: String,
    /// Sender's delivery id.
    pub delivery_id: Option<String>,
    /// Topic.
    pub topic: String,
    /// Subject.
    pub subject: Option<String>,
    /// When the sender says it happened (ms).
    pub occurred_at: Option<i64>,
    /// Raw body.
    pub payload: String,
    /// When it arrived (ms).
    pub received_at: i64,
    /// `pending`, `running`, `applied`, `ignored`, `parked` or `failed`.
    pub outcome: String,
    /// Why it was ignored, parked or failed.
    pub reason: Option<String>,
    /// The order it created or changed.
    pub order_id: Option<i64>,
    /// Attempts to apply it so far.
    pub attempts: i64,
}

const COLUMNS: &str = "id, source, event_id, delivery_id, topic, subject, occurred_at, payload, received_at, \
    outcome, reason, order_id, attempts";

/// Records a delivery as pending; `false` if the sender's event id (or its delivery id) is
/// already recorded (a retry, or a concurrent copy: the unique keys let exactly one in).
pub async fn record(db: &Db, d: &NewDelivery<'_>, now_ms: i64) -> Result<bool, sqlx::Error> {
    const SQL: &str = "INSERT INTO inbox (source, event_id, delivery_id, topic, subject, payload, received_at, \
        outcome, attempts, run_at, updated_at, occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $7, $7, $8) \
        ON CONFLICT DO NOTHING";
    // One statement that commits by itself: a webhook's answer waits for nothing else.
    let inserted = on_writer!(db, |conn| {
        sqlx::query(SQL)
            .bind(d.source)
            .bind(d.event_id)
            .bind(d.delivery_id)
            .bind(d.topic)
            .bind(d.subject)
            .bind(d.payload)
            .bind(now_ms)
            .bind(d.occurred_at)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(inserted == 1)
}

/// Claims up to `limit` deliveries to apply for `lease_ms`: due pending ones, and running ones
/// whose applier's lease ran out, each only if no earlier delivery of its subject is still
/// waiting (one subject's events are applied in arrival order).
pub async fn claim(db: &Db, now_ms: i64, lease_ms: i64, limit: i64) -> Result<Vec<Entry>, sqlx::Error> {
    let lock = if db.backend() == Backend::Postgres { " FOR UPDATE OF i SKIP LOCKED" } else { "" };
    // Two statements rather than one OR, so that each reads its partial index in order.
    let pick = [
        ("i.outcome = 'running' AND i.locked_until <= $1", "i.locked_until, i.id"),
        ("i.outcome = 'pending' AND i.run_at <= $1", "i.run_at, i.id"),
    ];
    let mut tx = db.begin().await?;
    let mut found: Vec<Entry> = Vec::new();
    for (filter, order) in pick {
        let left = limit - i64::try_from(found.len()).unwrap_or(i64::MAX);
        if left <= 0 {
            break;
        }
        let sql = format!(
            "UPDATE inbox SET outcome = 'running', attempts = attempts + 1, locked_until = $2, updated_at = $1 \
             WHERE id IN (SELECT i.id FROM inbox i WHERE {filter} \
                 AND (i.subject IS NULL OR NOT EXISTS (SELECT 1 FROM inbox e WHERE e.source = i.source \
                     AND e.subject = i.subject AND e.id < i.id AND e.outcome IN ('pending', 'running'))) \
                 ORDER BY {order} LIMIT $3{lock}) \
             RETURNING {COLUMNS}"
        );
        let more: Vec<Entry> = on_tx!(&mut tx, |conn| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(now_ms)
                .bind(now_ms + lease_ms)
                .bind(left)
                .fetch_all(conn)
                .await
        })?;
        found.extend(more);
    }
    tx.commit().await?;
    found.sort_by_key(|e| e.id);
    Ok(found)
}

/// How applying a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done; it created or changed this order.
    Applied(Option<i64>),
    /// Done, with what an operator should know (where an export is, how much was erased).
    AppliedWith(Option<i64>, String),
    /// Nothing to do, and why.
    Ignored(String),
    /// Cannot apply yet (it waits for something), and why; applied again later.
    Parked(String),
    /// Failed for now (a peer or the database); tried again at `retry_at`.
    Retry {
        /// What went wrong.
        error: String,
        /// When to try again (ms).
        retry_at: i64,
    },
    /// Failed for good.
    Failed(String),
}

/// Records how applying `entry` (as claimed) ended; `false` if its lease was lost.
pub async fn finish(db: &Db, entry: &Entry, outcome: &Outcome, now_ms: i64) -> Result<bool, sqlx::Error> {
    const SQL: &str = "UPDATE inbox SET outcome = $1, reason = $2, order_id = COALESCE($3, order_id), run_at = $4, \
        locked_until = NULL, updated_at = $5 WHERE id = $6 AND outcome = 'running' AND attempts = $7";
    let (state, reason, order, run_at) = match outcome {
        Outcome::Applied(order) => ("applied", None, *order, now_ms),
        Outcome::AppliedWith(order, note) => ("applied", Some(note.as_str()), *order, now_ms),
        Outcome::Ignored(why) => ("ignored", Some(why.as_str()), None, now_ms),
        Outcome::Parked(why) => ("parked", Some(why.as_str()), None, now_ms),
        Outcome::Retry { error, retry_at } => ("pending", Some(error.as_str()), None, *retry_at),
        Outcome::Failed(error) => ("failed", Some(error.as_str()), None, now_ms),
    };
    let reason: Option<String> = reason.map(|r| r.chars().take(2000).collect());
    let mut tx = db.begin().await?;
    let done = on_tx!(&mut tx, |conn| {
        sqlx::query(SQL)
            .bind(state)
            .bind(reason.as_deref())
            .bind(order)
            .bind(run_at)
            .bind(now_ms)
            .bind(entry.id)
            .bind(entry.attempts)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    tx.commit().await?;
    Ok(done == 1)
}

/// Puts parked deliveries of `subject` back in line (what they waited for has happened).
async fn wake_parked(db: &Db, source: &str, subject: &str, now_ms: i64) -> Result<u64, sqlx::Error> {
    const SQL: &str = "UPDATE inbox SET outcome = 'pending', run_at = $1, updated_at = $1 \
        WHERE source = $2 AND subject = $3 AND outcome = 'parked'";
    let mut tx = db.begin().await?;
    let n = on_tx!(&mut tx, |conn| {
        sqlx::query(SQL).bind(now_ms).bind(source).bind(subject).execute(conn).await.map(|r| r.rows_affected())
    })?;
    tx.commit().await?;
    Ok(n)
}

/// Puts parked deliveries of `source` about any of `subjects` back in line, checking with a
/// read first so that the common case (nothing parked) writes nothing.
pub async fn wake_parked_any(db: &Db, source: &str, subjects: &[String], now_ms: i64) -> Result<u64, sqlx::Error> {
    let mut woken = 0;
    for chunk in subjects.chunks(MAX_PER_STATEMENT) {
        let sql = format!(
            "SELECT DISTINCT subject FROM inbox WHERE source = $1 AND outcome = 'parked' AND subject IN ({})",
            columns::placeholders(2, chunk.len())
        );
        let parked: Vec<String> = on_read!(db, |conn| {
            let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(source);
            for subject in chunk {
                q = q.bind(subject.as_str());
            }
            q.fetch_all(conn).await
        })?;
        for subject in &parked {
            woken += wake_parked(db, source, subject, now_ms).await?;
        }
    }
    Ok(woken)
}

/// Whether a delivery of `source` about `subject`, other than `except`, was applied.
pub async fn applied_about(db: &Db, source: &str, subject: &str, except: i64) -> Result<bool, sqlx::Error> {
    const SQL: &str =
        "SELECT COUNT(*) FROM inbox WHERE source = $1 AND subject = $2 AND outcome = 'applied' AND id <> $3";
    let n: i64 =
        on_read!(db, |conn| sqlx::query_scalar(SQL).bind(source).bind(subject).bind(except).fetch_one(conn).await)?;
    Ok(n > 0)
}

/// The latest time (ms) the sender gave for a delivery of `source` applied to `order_id`.
pub async fn latest_applied(db: &Db, source: &str, order_id: i64) -> Result<Option<i64>, sqlx::Error> {
    const SQL: &str = "SELECT MAX(occurred_at) FROM inbox WHERE source = $1 AND order_id = $2 AND outcome = 'applied'";
    on_read!(db, |conn| sqlx::query_scalar(SQL).bind(source).bind(order_id).fetch_one(conn).await)
}

/// Queues a delivery to be applied again (an operator's replay); `false` if there is none
/// with this id or it is being applied right now.
pub async fn replay(db: &Db, id: i64, now_ms: i64) -> Result<bool, sqlx::Error> {
    const SQL: &str = "UPDATE inbox SET outcome = 'pending', attempts = 0, run_at = $1, updated_at = $1 \
        WHERE id = $2 AND outcome <> 'running'";
    let mut tx = db.begin().await?;
    let n =
        on_tx!(&mut tx, |conn| sqlx::query(SQL).bind(now_ms).bind(id).execute(conn).await.map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(n == 1)
}

/// Filters of [`list`].
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this sender.
    pub source: Option<String>,
    /// Only this outcome.
    pub outcome: Option<String>,
    /// Only deliveries about this order.
    pub order_id: Option<i64>,
    /// Only ids below this (keyset paging, newest first).
    pub before: Option<i64>,
}

/// Recorded deliveries, newest first.
pub async fn list(db: &Db, filter: &Filter, limit: i64) -> Result<Vec<Entry>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM inbox WHERE ($1 IS NULL OR source = $1) AND ($2 IS NULL OR outcome = $2) \
         AND ($3 IS NULL OR order_id = $3) AND ($4 IS NULL OR id < $4) ORDER BY id DESC LIMIT $5"
    );
    on_read!(db, |conn| {
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(filter.source.as_deref())
            .bind(filter.outcome.as_deref())
            .bind(filter.order_id)
            .bind(filter.before)
            .bind(limit)
            .fetch_all(conn)
            .await
    })
}

/// The order linked to object `external_id` of `source`, if any.
pub async fn linked_order(db: &Db, source: &str, external_id: &str) -> Result<Option<i64>, sqlx::Error> {
    const SQL: &str = "SELECT order_id FROM order_links WHERE source = $1 AND external_id = $2";
    on_read!(db, |conn| sqlx::query_scalar(SQL).bind(source).bind(external_id).fetch_optional(conn).await)
}

/// The order linked to object `external_id` of any source (ids of different systems do not
/// collide in practice: `cs_…`, numeric Shopify ids).
pub async fn linked_order_any(db: &Db, external_id: &str) -> Result<Option<i64>, sqlx::Error> {
    const SQL: &str = "SELECT order_id FROM order_links WHERE external_id = $1 ORDER BY created_at LIMIT 1";
    on_read!(db, |conn| sqlx::query_scalar(SQL).bind(external_id).fetch_optional(conn).await)
}

/// SQL linking `n` orders: source, external id, order, time per link.
fn link_sql(tx: &super::Tx, n: usize) -> String {
    format!("INSERT INTO order_links (source, external_id, order_id, created_at) VALUES {}", tx.values(n, 4))
}

/// Links a new order to an object of another system inside the order's creating
/// transaction; `false` if another order already stands for it (the caller rolls back).
pub async fn link(
    tx: &mut super::Tx,
    source: &str,
    external_id: &str,
    order_id: i64,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    match link_all(tx, &[(source, external_id, order_id, now_ms)]).await {
        Ok(()) => Ok(true),
        Err(e) if is_link_taken(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Links several new orders, each `(source, external_id, order_id, ms)`, inside their
/// creating transaction. An object that already stands for an order fails the statement
/// ([`is_link_taken`]); on PostgreSQL that also ends the transaction.
pub async fn link_all(tx: &mut super::Tx, links: &[(&str, &str, i64, i64)]) -> Result<(), sqlx::Error> {
    for chunk in links.chunks(MAX_PER_STATEMENT) {
        let sql = link_sql(tx, chunk.len());
        on_tx!(tx, |conn| {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (source, external_id, order_id, now_ms) in chunk {
                q = q.bind(*source).bind(*external_id).bind(*order_id).bind(*now_ms);
            }
            q.execute(conn).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

/// Whether `err` says that an object of another system already stands for an order.
pub fn is_link_taken(err: &sqlx::Error) -> bool {
    is_unique_violation(err, "order_links") || is_unique_violation(err, "external_id")
}

/// Which of `external_ids` of `source` already stand for an order, read inside a write
/// transaction (so that nothing links them between this look and the caller's inserts on
/// SQLite's single writer; on PostgreSQL a concurrent link fails the caller's insert).
pub async fn linked_among(
    tx: &mut super::Tx,
    source: &str,
    external_ids: &[&str],
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let mut found = HashMap::new();
    for chunk in external_ids.chunks(MAX_PER_STATEMENT) {
        let sql = format!(
            "SELECT external_id, order_id FROM order_links WHERE source = $1 AND external_id IN ({})",
            columns::placeholders(2, chunk.len())
        );
        let rows: Vec<(String, i64)> = on_tx!(tx, |conn| {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(source);
            for id in chunk {
                q = q.bind(*id);
            }
            q.fetch_all(conn).await
        })?;
        found.extend(rows);
    }
    Ok(found)
}
