//! Writing a planned change: the order (if its version is unchanged), its events and their
//! outbox jobs, atomically. On SQLite that is one transaction on the single writer
//! connection, sent as one multi-statement call when the change has one event (every call is
//! a hop to SQLite's worker thread, and the writer is the bottleneck); on PostgreSQL it is
//! one data-modifying statement, written by the group-commit batcher or inside the caller's
//! transaction when one is open.

use std::sync::{Arc, LazyLock};

use super::orders::{MUTABLE_SET, MutableColumns, bind_mutable, update_if_version};
use super::outbox::{self, JobRow};
use super::pg_batch::{self, PlannedWrite, WriteResult};
use super::{Db, Tx, events};
use crate::domain::model::NewEvent;

/// Writes `write` if the stored order version is still `write.order.version`: returns the
/// new event ids, or `None` if someone changed the order first. Commits `tx` when given one.
pub async fn apply(db: &Db, tx: Option<Tx>, write: Arc<PlannedWrite>) -> WriteResult {
    match (db, tx) {
        (Db::Postgres { batcher, .. }, None) => batcher.write(write).await,
        (Db::Postgres { .. }, Some(Tx::Postgres(mut tx))) => {
            let mut results = pg_batch::write_all(&mut tx, std::slice::from_ref(&write)).await?;
            tx.commit().await?;
            Ok(results.pop().flatten())
        }
        (Db::Sqlite { writer, .. }, None) => {
            let mut conn = writer.acquire().await?;
            let written = write_sqlite(&mut conn, &write).await;
            if written.as_ref().is_err() {
                // Leave the writer connection as we found it: outside any transaction.
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            }
            written
        }
        (db, tx) => {
            let mut tx = match tx {
                Some(tx) => tx,
                None => db.begin().await?,
            };
            let order = &write.order;
            if !update_if_version(&mut tx, order).await? {
                tx.rollback().await?;
                return Ok(None);
            }
            let mut ids = Vec::with_capacity(write.events.len());
            for event in &write.events {
                ids.push(events::insert(&mut tx, order.id, event, write.at_ms).await?);
            }
            let rows: Vec<_> = write
                .jobs
                .iter()
                .map(|j| JobRow { kind: j.kind, order_id: order.id, event_id: ids[j.event] })
                .collect();
            outbox::enqueue(&mut tx, &rows, write.at_ms).await?;
            tx.commit().await?;
            Ok(Some(ids))
        }
    }
}

/// The SQLite fast path; the caller rolls back if this fails part-way.
async fn write_sqlite(conn: &mut sqlx::SqliteConnection, write: &PlannedWrite) -> WriteResult {
    if let [event] = write.events.as_slice() {
        return write_sqlite_one(conn, write, event).await;
    }
    let order = &write.order;
    let cols = MutableColumns::of(order);
    let updated: Vec<i64> = bind_mutable!(sqlx::query_scalar(sqlx::AssertSqlSafe(BEGIN_AND_UPDATE.as_str())), cols)
        .bind(order.id)
        .bind(order.version)
        .fetch_all(&mut *conn)
        .await?;
    if updated.is_empty() {
        sqlx::query("ROLLBACK").execute(&mut *conn).await?;
        return Ok(None);
    }
    let mut ids = Vec::with_capacity(write.events.len());
    for event in &write.events {
        ids.push(
            events::bind_insert(sqlx::query_scalar(events::INSERT), order.id, event, write.at_ms)
                .fetch_one(&mut *conn)
                .await?,
        );
    }
    let rows: Vec<_> =
        write.jobs.iter().map(|j| JobRow { kind: j.kind, order_id: order.id, event_id: ids[j.event] }).collect();
    if rows.is_empty() {
        sqlx::query("COMMIT").execute(&mut *conn).await?;
    } else {
        let sql = format!("{}; COMMIT", outbox::insert_sql(rows.len()));
        outbox::bind_insert(sqlx::query(sqlx::AssertSqlSafe(sql)), &rows, write.at_ms).execute(&mut *conn).await?;
    }
    Ok(Some(ids))
}

static BEGIN_AND_UPDATE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "BEGIN IMMEDIATE; UPDATE orders SET {MUTABLE_SET}, version = version + 1 WHERE id = $20 AND version = $21 RETURNING id"
    )
});

/// One change with one event in a single call: `BEGIN`, the guarded update, the event
/// (inserted only if the update changed a row: `changes()` still reports the update), its
/// jobs (pointing at the order's newest event, which is ours: we hold SQLite's only write
/// lock) and `COMMIT`. Returns the order and event ids, or nothing if the version moved on.
async fn write_sqlite_one(conn: &mut sqlx::SqliteConnection, write: &PlannedWrite, event: &NewEvent) -> WriteResult {
    let order = &write.order;
    let cols = MutableColumns::of(order);
    let kinds: Vec<&str> = write.jobs.iter().map(|j| j.kind).collect();
    let query = bind_mutable!(sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(ONE_EVENT.as_str())), cols)
        .bind(order.id)
        .bind(order.version);
    let ids = events::bind_more(query, event, write.at_ms)
        .bind(serde_json::Value::from(kinds).to_string())
        .fetch_all(&mut *conn)
        .await?;
    match ids.as_slice() {
        [_order, event_id] => Ok(Some(vec![*event_id])),
        [] => Ok(None),
        _ => Err(sqlx::Error::Protocol(format!("unexpected result of a change: {ids:?}"))),
    }
}

static ONE_EVENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "BEGIN IMMEDIATE; \
         UPDATE orders SET {MUTABLE_SET}, version = version + 1 WHERE id = $20 AND version = $21 RETURNING id; \
         INSERT INTO order_events (order_id, kind, from_stage, to_stage, actor, source, note, internal_note, \
             visibility, photo_ids, data, created_at) \
         SELECT $20, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32 WHERE changes() = 1 RETURNING id; \
         INSERT INTO outbox (kind, order_id, event_id, payload, status, attempts, run_at, created_at, updated_at) \
         SELECT j.value, $20, (SELECT max(id) FROM order_events WHERE order_id = $20), '{{}}', 'pending', 0, \
             $32, $32, $32 \
         FROM json_each($33) AS j WHERE changes() = 1; \
         COMMIT"
    )
});
