//! The new-order write: orders with their line items, links to other systems' objects,
//! tracking links, `created` events and those events' outbox jobs — one multi-row statement
//! per table however many orders are written together (an API create is a batch of one).
//! On SQLite every statement is a hop to the single writer's thread and back, and those hops,
//! not SQLite's own work, dominated an import written order by order.

use std::collections::HashMap;

use super::super::columns::ORDER_MUTABLE;
use super::super::outbox::{self, JobRow};
use super::super::{Tx, events, inbox, on_tx, tracking};
use super::{MutableColumns, bind_mutable};
use crate::domain::model::{LineItem, NewEvent, Order};

/// A new order, ready to write.
#[derive(Debug)]
pub struct NewOrderWrite<'a> {
    /// The order; its `id` and `version` are ignored (a new order is version 1).
    pub order: Order,
    /// Its line items, in order.
    pub items: &'a [LineItem],
    /// The object of another system it stands for, as `(source, external_id)`.
    pub link: Option<(&'a str, &'a str)>,
    /// Hash of its tracking token, to find the order by token.
    pub tracking_hash: String,
    /// Its tracking token sealed, so that operators can show the link again.
    pub tracking_sealed: String,
    /// Its `created` event: a new order has exactly one, which its jobs are about.
    pub event: NewEvent,
    /// The kinds of the jobs the event causes.
    pub jobs: Vec<&'static str>,
    /// Time of the write (ms) for the event, jobs and links.
    pub at_ms: i64,
}

/// The ids a written new order was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// The order's id.
    pub order_id: i64,
    /// Its `created` event's id.
    pub event_id: i64,
}

/// Most rows in one statement: orders take 23 parameters each, which keeps a statement
/// within SQLite's 32,766 parameters (PostgreSQL allows 65,535).
const MAX_PER_STATEMENT: usize = 1000;

/// Writes new orders inside `tx` (the caller commits); returns their ids in the order given.
/// A refused row (a reference or link already taken, a constraint) fails the whole call;
/// on PostgreSQL that also ends the transaction, so the caller rolls back either way.
pub async fn create_all(tx: &mut Tx, writes: &[NewOrderWrite<'_>]) -> Result<Vec<Written>, sqlx::Error> {
    let order_ids = insert_orders(tx, writes).await?;

    let items: Vec<(i64, i64, &LineItem)> = writes
        .iter()
        .zip(&order_ids)
        .flat_map(|(w, id)| (0_i64..).zip(w.items).map(move |(position, item)| (*id, position, item)))
        .collect();
    insert_items(tx, &items).await?;

    let links: Vec<(&str, &str, i64, i64)> = writes
        .iter()
        .zip(&order_ids)
        .filter_map(|(w, id)| w.link.map(|(source, external_id)| (source, external_id, *id, w.at_ms)))
        .collect();
    inbox::link_all(tx, &links).await?;

    let tokens: Vec<(i64, &str, &str, i64)> = writes
        .iter()
        .zip(&order_ids)
        .map(|(w, id)| (*id, w.tracking_hash.as_str(), w.tracking_sealed.as_str(), w.at_ms))
        .collect();
    tracking::insert_all(tx, &tokens).await?;

    let new_events: Vec<(i64, &NewEvent, i64)> =
        writes.iter().zip(&order_ids).map(|(w, id)| (*id, &w.event, w.at_ms)).collect();
    // One event per order, so the order id says which event an id belongs to.
    let event_of: HashMap<i64, i64> =
        events::insert_all(tx, &new_events).await?.into_iter().map(|(event, order)| (order, event)).collect();
    let mut written = Vec::with_capacity(writes.len());
    let mut jobs = Vec::new();
    for (w, order_id) in writes.iter().zip(order_ids) {
        let event_id = event_of
            .get(&order_id)
            .copied()
            .ok_or_else(|| sqlx::Error::Protocol(format!("no event id came back for new order {order_id}")))?;
        jobs.extend(w.jobs.iter().map(|kind| (JobRow { kind, order_id, event_id }, w.at_ms)));
        written.push(Written { order_id, event_id });
    }
    outbox::enqueue_at(tx, &jobs).await?;
    Ok(written)
}

/// Inserts the orders; returns their ids in the order given.
async fn insert_orders(tx: &mut Tx, writes: &[NewOrderWrite<'_>]) -> Result<Vec<i64>, sqlx::Error> {
    let mut ids = Vec::with_capacity(writes.len());
    for chunk in writes.chunks(MAX_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO orders ({}, reference, workflow, created_at, version) VALUES {} RETURNING id, reference",
            ORDER_MUTABLE.join(", "),
            tx.values(chunk.len(), ORDER_MUTABLE.len() + 4),
        );
        let returned: Vec<(i64, String)> = on_tx!(tx, |conn| {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
            for w in chunk {
                let cols = MutableColumns::of(&w.order);
                q = bind_mutable!(q, cols)
                    .bind(w.order.reference.as_str())
                    .bind(w.order.workflow.as_str())
                    .bind(w.order.created_at.timestamp_millis())
                    .bind(1_i64);
            }
            q.fetch_all(conn).await
        })?;
        // References are unique, and `RETURNING` promises no order: match ids by reference.
        let by_reference: HashMap<String, i64> = returned.into_iter().map(|(id, r)| (r, id)).collect();
        for w in chunk {
            let id = by_reference
                .get(w.order.reference.as_str())
                .copied()
                .ok_or_else(|| sqlx::Error::Protocol(format!("no id came back for new order {}", w.order.reference)))?;
            ids.push(id);
        }
    }
    Ok(ids)
}

/// Inserts line items, each `(order_id, position, item)`.
async fn insert_items(tx: &mut Tx, items: &[(i64, i64, &LineItem)]) -> Result<(), sqlx::Error> {
    for chunk in items.chunks(MAX_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO order_items (order_id, position, description, variant, quantity, material, metadata) \
             VALUES {}",
            tx.values(chunk.len(), 7)
        );
        on_tx!(tx, |conn| {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (order_id, position, item) in chunk {
                q = q
                    .bind(*order_id)
                    .bind(*position)
                    .bind(item.description.as_str())
                    .bind(item.variant.as_deref())
                    .bind(i64::from(item.quantity))
                    .bind(item.material.as_deref())
                    .bind(item.metadata.to_string());
            }
            q.execute(conn).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}
