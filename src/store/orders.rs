//! Orders and their line items.

mod board;
mod create;
mod cursor;
mod late;
mod list;
mod search;

use chrono::NaiveDate;
use sqlx::FromRow;

use std::sync::LazyLock;

use super::columns::{self, ORDER_MUTABLE, ORDER_MUTABLE_TEXT};
use super::{Db, Tx, corrupt, from_ms, on_read, on_tx};
use crate::domain::model::{Customer, LineItem, Order};
use crate::domain::order::{Channel, EmailAddress, Language, OrderRef, PhoneNumber, Priority, Status, TimeZone};
use crate::domain::transition::OrderState;

/// Columns of `orders`, in the order [`OrderRow`] reads them.
pub(super) const ORDER_COLUMNS: &str = "id, reference, workflow, stage, status, priority, resume_priority, \
    customer_name, customer_email, customer_phone, customer_telegram, customer_channels, customer_language, \
    customer_timezone, due_date, notes, customer_note, external_ids, metadata, version, stage_entered_at, \
    created_at, updated_at";

/// A row of `orders` as stored.
#[derive(Debug, FromRow)]
pub(super) struct OrderRow {
    id: i64,
    reference: String,
    workflow: String,
    stage: String,
    status: String,
    priority: String,
    resume_priority: Option<String>,
    customer_name: String,
    customer_email: Option<String>,
    customer_phone: Option<String>,
    customer_telegram: Option<String>,
    customer_channels: String,
    customer_language: String,
    customer_timezone: Option<String>,
    due_date: Option<String>,
    notes: String,
    customer_note: String,
    external_ids: String,
    metadata: String,
    version: i64,
    stage_entered_at: i64,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<OrderRow> for Order {
    type Error = sqlx::Error;

    fn try_from(r: OrderRow) -> Result<Self, Self::Error> {
        let channel_names: Vec<String> =
            serde_json::from_str(&r.customer_channels).map_err(|e| corrupt("customer_channels", e))?;
        let channels = channel_names
            .iter()
            .map(|c| Channel::parse(c))
            .collect::<Result<_, _>>()
            .map_err(|e| corrupt("customer_channels", e))?;
        Ok(Order {
            id: r.id,
            reference: OrderRef::parse(&r.reference).map_err(|e| corrupt("reference", e))?,
            workflow: r.workflow,
            state: OrderState {
                stage: r.stage,
                status: Status::parse(&r.status).map_err(|e| corrupt("status", e))?,
                priority: Priority::parse(&r.priority).map_err(|e| corrupt("priority", e))?,
                resume_priority: r
                    .resume_priority
                    .map(|p| Priority::parse(&p))
                    .transpose()
                    .map_err(|e| corrupt("resume_priority", e))?,
            },
            customer: Customer {
                name: r.customer_name,
                email: r
                    .customer_email
                    .map(|e| EmailAddress::parse(&e))
                    .transpose()
                    .map_err(|e| corrupt("customer_email", e))?,
                phone: r
                    .customer_phone
                    .map(|p| PhoneNumber::parse(&p))
                    .transpose()
                    .map_err(|e| corrupt("customer_phone", e))?,
                telegram_chat_id: r.customer_telegram,
                channels,
                language: Language::parse(&r.customer_language).map_err(|e| corrupt("customer_language", e))?,
                timezone: r
                    .customer_timezone
                    .map(|z| TimeZone::parse(&z))
                    .transpose()
                    .map_err(|e| corrupt("customer_timezone", e))?,
            },
            due_date: r
                .due_date
                .map(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d"))
                .transpose()
                .map_err(|e| corrupt("due_date", e))?,
            notes: r.notes,
            customer_note: r.customer_note,
            external_ids: serde_json::from_str(&r.external_ids).map_err(|e| corrupt("external_ids", e))?,
            metadata: serde_json::from_str(&r.metadata).map_err(|e| corrupt("metadata", e))?,
            version: r.version,
            stage_entered_at: from_ms(r.stage_entered_at),
            created_at: from_ms(r.created_at),
            updated_at: from_ms(r.updated_at),
        })
    }
}

/// The order's mutable columns in binding order (`$1`..`$19`), shared by insert and update.
pub(crate) struct MutableColumns {
    values: [Option<String>; ORDER_MUTABLE_TEXT],
    stage_entered_at: i64,
    updated_at: i64,
}

impl MutableColumns {
    /// The text columns `$1`..`$17`.
    pub(crate) fn values(&self) -> &[Option<String>; ORDER_MUTABLE_TEXT] {
        &self.values
    }

    /// `$18`.
    pub(crate) fn stage_entered_at(&self) -> i64 {
        self.stage_entered_at
    }

    /// `$19`.
    pub(crate) fn updated_at(&self) -> i64 {
        self.updated_at
    }

    pub(crate) fn of(o: &Order) -> Self {
        let c = &o.customer;
        let channels: Vec<&str> = c.channels.iter().map(|ch| ch.as_str()).collect();
        let search = [
            Some(o.reference.as_str()),
            Some(c.name.as_str()),
            c.email.as_ref().map(|e| e.as_str()),
            c.phone.as_ref().map(|p| p.as_str()),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
        Self {
            values: [
                Some(o.state.stage.clone()),
                Some(o.state.status.as_str().to_owned()),
                Some(o.state.priority.as_str().to_owned()),
                o.state.resume_priority.map(|p| p.as_str().to_owned()),
                Some(c.name.clone()),
                c.email.as_ref().map(|e| e.to_string()),
                c.phone.as_ref().map(|p| p.to_string()),
                c.telegram_chat_id.clone(),
                Some(serde_json::Value::from(channels).to_string()),
                Some(c.language.to_string()),
                c.timezone.map(|z| z.as_str().to_owned()),
                o.due_date.map(|d| d.format("%Y-%m-%d").to_string()),
                Some(o.notes.clone()),
                Some(o.customer_note.clone()),
                Some(serde_json::to_string(&o.external_ids).unwrap_or_else(|_| "{}".to_owned())),
                Some(o.metadata.to_string()),
                Some(search),
            ],
            stage_entered_at: o.stage_entered_at.timestamp_millis(),
            updated_at: o.updated_at.timestamp_millis(),
        }
    }
}

/// Binds [`MutableColumns`] as `$1`..`$19`.
macro_rules! bind_mutable {
    ($query:expr, $cols:expr) => {{
        let mut q = $query;
        for v in $cols.values() {
            q = q.bind(v.clone());
        }
        q.bind($cols.stage_entered_at()).bind($cols.updated_at())
    }};
}
pub(crate) use bind_mutable;

/// `stage = $1, …, updated_at = $19`: the mutable columns bound as [`bind_mutable`] does.
pub(crate) static MUTABLE_SET: LazyLock<String> = LazyLock::new(|| columns::assignments(&ORDER_MUTABLE, 1));

/// The order's id and expected version follow the mutable columns.
pub(crate) const GUARD_ID: usize = ORDER_MUTABLE.len() + 1;

/// The version-guarded update of an order: its mutable columns, then `id` and `version` as
/// `$20` and `$21`. Changes nothing if someone else changed the order first.
pub(crate) static GUARDED_UPDATE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE orders SET {}, version = version + 1 WHERE id = ${GUARD_ID} AND version = ${}",
        *MUTABLE_SET,
        GUARD_ID + 1
    )
});

/// Takes the next `n` numbers for generated references; returns the first (the others
/// follow it). One statement however many orders are created together.
pub async fn take_reference_numbers(tx: &mut Tx, n: i64) -> Result<i64, sqlx::Error> {
    const SQL: &str = "UPDATE counters SET value = value + $1 WHERE name = 'order_reference' RETURNING value";
    let last: i64 = on_tx!(tx, |conn| sqlx::query_scalar(SQL).bind(n).fetch_one(conn).await)?;
    Ok(last - n + 1)
}

/// Which of `references` some order already has (one chosen through the API or an import
/// can sit where the counter is heading).
pub async fn references_taken(tx: &mut Tx, references: &[String]) -> Result<Vec<String>, sqlx::Error> {
    let mut taken = Vec::new();
    // Well within both engines' limits on parameters per statement.
    for chunk in references.chunks(500) {
        let sql =
            format!("SELECT reference FROM orders WHERE reference IN ({})", columns::placeholders(1, chunk.len()));
        let found: Vec<String> = on_tx!(tx, |conn| {
            let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql));
            for r in chunk {
                q = q.bind(r.as_str());
            }
            q.fetch_all(conn).await
        })?;
        taken.extend(found);
    }
    Ok(taken)
}

/// Writes an order's mutable columns if its version is still `order.version`; `false`
/// means someone else changed it first.
pub async fn update_if_version(tx: &mut Tx, order: &Order) -> Result<bool, sqlx::Error> {
    let cols = MutableColumns::of(order);
    let done = on_tx!(tx, |conn| {
        bind_mutable!(sqlx::query(sqlx::AssertSqlSafe(GUARDED_UPDATE.as_str())), cols)
            .bind(order.id)
            .bind(order.version)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

/// Finds an order by reference.
pub async fn by_reference(db: &Db, reference: &str) -> Result<Option<Order>, sqlx::Error> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE reference = $1");
    let row: Option<OrderRow> =
        on_read!(db, |conn| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(reference).fetch_optional(conn).await)?;
    row.map(Order::try_from).transpose()
}

/// Finds an order by reference inside a write transaction, locking its row until commit
/// (SQLite's `BEGIN IMMEDIATE` already holds the only write lock; PostgreSQL needs
/// `FOR UPDATE`).
pub async fn by_reference_for_update(tx: &mut Tx, reference: &str) -> Result<Option<Order>, sqlx::Error> {
    let lock = match tx {
        Tx::Sqlite(_) => "",
        Tx::Postgres(_) => " FOR UPDATE",
    };
    let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE reference = $1{lock}");
    let row: Option<OrderRow> =
        on_tx!(tx, |conn| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(reference).fetch_optional(conn).await)?;
    row.map(Order::try_from).transpose()
}

/// The id of the order with this reference.
pub async fn id_for_reference(db: &Db, reference: &str) -> Result<Option<i64>, sqlx::Error> {
    const SQL: &str = "SELECT id FROM orders WHERE reference = $1";
    on_read!(db, |conn| sqlx::query_scalar(SQL).bind(reference).fetch_optional(conn).await)
}

/// Finds an order by id.
pub async fn by_id(db: &Db, id: i64) -> Result<Option<Order>, sqlx::Error> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1");
    let row: Option<OrderRow> =
        on_read!(db, |conn| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(conn).await)?;
    row.map(Order::try_from).transpose()
}

#[derive(FromRow)]
struct ItemRow {
    description: String,
    variant: Option<String>,
    quantity: i64,
    material: Option<String>,
    metadata: String,
}

/// The line items of an order, in the order they were given.
pub async fn items(db: &Db, order_id: i64) -> Result<Vec<LineItem>, sqlx::Error> {
    const SQL: &str = "SELECT description, variant, quantity, material, metadata FROM order_items \
        WHERE order_id = $1 ORDER BY position";
    let rows: Vec<ItemRow> = on_read!(db, |conn| sqlx::query_as(SQL).bind(order_id).fetch_all(conn).await)?;
    rows.into_iter()
        .map(|r| {
            Ok(LineItem {
                description: r.description,
                variant: r.variant,
                quantity: u32::try_from(r.quantity).map_err(|e| corrupt("quantity", e))?,
                material: r.material,
                metadata: serde_json::from_str(&r.metadata).map_err(|e| corrupt("item metadata", e))?,
            })
        })
        .collect()
}

pub use board::{BOARD_CARDS, Board, Card, Column, board};
pub use create::{NewOrderWrite, Written, create_all};
pub use cursor::{Cursor, Sort};
pub use late::{LateCutoffs, LateInput, StageCutoff, WorkflowCutoffs, is_late};
pub use list::{LateFilter, ListFilter, list, next_cursor};
