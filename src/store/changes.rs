//! Writing a planned change: the order (if its version is unchanged), its events and their
//! outbox jobs, atomically. There are three forms of that write, all built from the column
//! lists in [`super::columns`]: SQLite's single multi-statement call ([`super::sqlite`]),
//! PostgreSQL's group-commit batch statement ([`super::postgres::batch`]), and the plain
//! statements inside a caller's transaction ([`write_in`]); a test runs all three on the
//! same plans and compares what they stored.

use std::sync::Arc;

use super::orders::update_if_version;
use super::outbox::{self, JobRow};
use super::postgres::batch;
use super::{Db, Engine, Tx, events};
use crate::domain::model::{NewEvent, NewJob, Order};

/// A planned change, ready to write.
#[derive(Debug)]
pub struct PlannedWrite {
    /// The order after the change; `version` is the one it must still have.
    pub order: Order,
    /// Events to append.
    pub events: Vec<NewEvent>,
    /// Jobs about those events.
    pub jobs: Vec<NewJob>,
    /// Time of the change (epoch ms).
    pub at_ms: i64,
}

/// The event ids of a written change, or `None` if its order had changed.
pub type WriteResult = Result<Option<Vec<i64>>, sqlx::Error>;

/// Writes `write` if the stored order version is still `write.order.version`: returns the
/// new event ids, or `None` if someone changed the order first. Commits `tx` when given one.
pub async fn apply(db: &Db, tx: Option<Tx>, write: Arc<PlannedWrite>) -> WriteResult {
    match (db.engine(), tx) {
        (Engine::Postgres(pg), None) => pg.batcher.write(write).await,
        (Engine::Postgres(_), Some(Tx::Postgres(mut tx))) => {
            let mut results = batch::write_all(&mut tx, std::slice::from_ref(&write)).await?;
            tx.commit().await?;
            Ok(results.pop().flatten())
        }
        (Engine::Sqlite(sqlite), None) => sqlite.write(&write).await,
        (_, Some(mut tx)) => match write_in(&mut tx, &write).await? {
            Some(ids) => {
                tx.commit().await?;
                Ok(Some(ids))
            }
            None => {
                tx.rollback().await?;
                Ok(None)
            }
        },
    }
}

/// Writes `write` with plain statements inside `tx` (the caller commits).
pub async fn write_in(tx: &mut Tx, write: &PlannedWrite) -> WriteResult {
    if !update_if_version(tx, &write.order).await? {
        return Ok(None);
    }
    append(tx, write.order.id, &write.events, &write.jobs, write.at_ms).await.map(Some)
}

/// Appends events and their jobs to order `order_id` inside `tx`; returns the event ids.
pub async fn append(
    tx: &mut Tx,
    order_id: i64,
    new_events: &[NewEvent],
    jobs: &[NewJob],
    at_ms: i64,
) -> Result<Vec<i64>, sqlx::Error> {
    let mut ids = Vec::with_capacity(new_events.len());
    for event in new_events {
        ids.push(events::insert(tx, order_id, event, at_ms).await?);
    }
    let rows: Vec<JobRow> = jobs.iter().map(|j| JobRow { kind: j.kind, order_id, event_id: ids[j.event] }).collect();
    outbox::enqueue(tx, &rows, at_ms).await?;
    Ok(ids)
}

/// The outbox rows of `write` once its events have the ids `event_ids`.
pub(super) fn job_rows(write: &PlannedWrite, event_ids: &[i64]) -> Vec<JobRow> {
    write.jobs.iter().map(|j| JobRow { kind: j.kind, order_id: write.order.id, event_id: event_ids[j.event] }).collect()
}
