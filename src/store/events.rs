//! The append-only audit log of each order.

use std::sync::LazyLock;

use sqlx::FromRow;

use super::columns::{self, EVENT};
use super::{Db, Tx, corrupt, from_ms, on_read, on_tx};
use crate::domain::model::{Event, NewEvent};
use crate::domain::order::{Source, Visibility};
use crate::domain::transition::EventKind;

/// Appends one event, returning its id: `order_id`, then the columns of [`EVENT`].
pub(crate) static INSERT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO order_events (order_id, {}) VALUES ({}) RETURNING id",
        columns::event_names(),
        columns::placeholders(1, EVENT.len() + 1)
    )
});

/// Binds an event's columns after `order_id`, in the order of [`EVENT`], to any query type.
macro_rules! bind_event {
    ($query:expr, $event:expr, $at_ms:expr) => {{
        let event: &NewEvent = $event;
        $query
            .bind(event.kind.as_str().to_owned())
            .bind(event.from_stage.clone())
            .bind(event.to_stage.clone())
            .bind(event.actor.clone())
            .bind(event.source.as_str().to_owned())
            .bind(event.note.clone())
            .bind(event.internal_note.clone())
            .bind(event.visibility.as_str().to_owned())
            .bind(serde_json::Value::from(event.photo_ids.clone()).to_string())
            .bind(event.data.to_string())
            .bind($at_ms)
    }};
}

/// Binds an event's columns after `order_id`, in the order of [`EVENT`].
pub(crate) fn bind_more<'q, DB, O>(
    query: sqlx::query::QueryScalar<'q, DB, O, <DB as sqlx::Database>::Arguments>,
    event: &NewEvent,
    at_ms: i64,
) -> sqlx::query::QueryScalar<'q, DB, O, <DB as sqlx::Database>::Arguments>
where
    DB: sqlx::Database,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    bind_event!(query, event, at_ms)
}

/// Binds an event to [`INSERT`] for any backend.
pub(crate) fn bind_insert<'q, DB, O>(
    query: sqlx::query::QueryScalar<'q, DB, O, <DB as sqlx::Database>::Arguments>,
    order_id: i64,
    event: &NewEvent,
    at_ms: i64,
) -> sqlx::query::QueryScalar<'q, DB, O, <DB as sqlx::Database>::Arguments>
where
    DB: sqlx::Database,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    bind_more(query.bind(order_id), event, at_ms)
}

/// Appends an event and returns its id.
pub async fn insert(tx: &mut Tx, order_id: i64, event: &NewEvent, at_ms: i64) -> Result<i64, sqlx::Error> {
    on_tx!(tx, |conn| {
        bind_insert(sqlx::query_scalar(sqlx::AssertSqlSafe(INSERT.as_str())), order_id, event, at_ms)
            .fetch_one(conn)
            .await
    })
}

/// Most events in one statement (12 parameters each: within SQLite's 32,766).
const MAX_PER_STATEMENT: usize = 1000;

/// Appends events to several orders in as few statements as the engines allow: each of
/// `new` is `(order_id, event, time in ms)`. Returns `(event id, order id)` pairs, in no
/// particular order (neither engine orders what `RETURNING` gives back).
pub async fn insert_all(tx: &mut Tx, new: &[(i64, &NewEvent, i64)]) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    let mut ids = Vec::with_capacity(new.len());
    for chunk in new.chunks(MAX_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO order_events (order_id, {}) VALUES {} RETURNING id, order_id",
            columns::event_names(),
            tx.values(chunk.len(), EVENT.len() + 1)
        );
        let more: Vec<(i64, i64)> = on_tx!(tx, |conn| {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
            for (order_id, event, at_ms) in chunk {
                q = bind_event!(q.bind(*order_id), event, *at_ms);
            }
            q.fetch_all(conn).await
        })?;
        ids.extend(more);
    }
    Ok(ids)
}

#[derive(FromRow)]
struct EventRow {
    id: i64,
    order_id: i64,
    kind: String,
    from_stage: Option<String>,
    to_stage: Option<String>,
    actor: String,
    source: String,
    note: Option<String>,
    internal_note: Option<String>,
    visibility: String,
    photo_ids: String,
    data: String,
    created_at: i64,
}

impl TryFrom<EventRow> for Event {
    type Error = sqlx::Error;

    fn try_from(r: EventRow) -> Result<Self, Self::Error> {
        Ok(Event {
            id: r.id,
            order_id: r.order_id,
            kind: EventKind::parse(&r.kind).map_err(|e| corrupt("event kind", e))?,
            from_stage: r.from_stage,
            to_stage: r.to_stage,
            actor: r.actor,
            source: Source::parse(&r.source).map_err(|e| corrupt("event source", e))?,
            note: r.note,
            internal_note: r.internal_note,
            visibility: Visibility::parse(&r.visibility).map_err(|e| corrupt("event visibility", e))?,
            photo_ids: serde_json::from_str(&r.photo_ids).map_err(|e| corrupt("photo_ids", e))?,
            data: serde_json::from_str(&r.data).map_err(|e| corrupt("event data", e))?,
            created_at: from_ms(r.created_at),
        })
    }
}

const COLUMNS: &str = "id, order_id, kind, from_stage, to_stage, actor, source, note, internal_note, \
    visibility, photo_ids, data, created_at";

/// An order's events, oldest first; `customer_only` keeps the customer-visible ones.
pub async fn for_order(db: &Db, order_id: i64, customer_only: bool) -> Result<Vec<Event>, sqlx::Error> {
    let filter = if customer_only { " AND visibility = 'customer'" } else { "" };
    let sql = format!("SELECT {COLUMNS} FROM order_events WHERE order_id = $1{filter} ORDER BY id");
    let rows: Vec<EventRow> =
        on_read!(db, |conn| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(order_id).fetch_all(conn).await)?;
    rows.into_iter().map(Event::try_from).collect()
}

/// One event by id.
pub async fn by_id(db: &Db, id: i64) -> Result<Option<Event>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM order_events WHERE id = $1");
    let row: Option<EventRow> =
        on_read!(db, |conn| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(conn).await)?;
    row.map(Event::try_from).transpose()
}

/// How many events an order has (used by tests and the benchmark).
pub async fn count_for_order(db: &Db, order_id: i64) -> Result<i64, sqlx::Error> {
    const SQL: &str = "SELECT COUNT(*) FROM order_events WHERE order_id = $1";
    on_read!(db, |conn| sqlx::query_scalar(SQL).bind(order_id).fetch_one(conn).await)
}
