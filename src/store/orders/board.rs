//! A workflow's board: its open orders as cards in a column per stage, rush first.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::FromRow;

use super::late::{LateInput, WorkflowCutoffs};
use crate::domain::order::{Priority, Status};
use crate::domain::workflow::Workflow;
use crate::store::{Db, corrupt, from_ms, on_read};

/// At most this many cards on one board; the counts still cover every open order.
pub const BOARD_CARDS: u32 = 5_000;

/// What a card shows of an open order.
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    /// Order id.
    pub id: i64,
    /// Order reference.
    pub reference: String,
    /// The customer's name.
    pub customer_name: String,
    /// Rush, standard or hold.
    pub priority: Priority,
    /// The date promised, if any.
    pub due_date: Option<NaiveDate>,
    /// When the order entered its stage.
    pub stage_entered_at: DateTime<Utc>,
    /// The order's version, for a move that must not act on a stale card.
    pub version: i64,
    /// Over its stage's expected time or past its due date (see [`super::late`]).
    pub late: bool,
}

/// One stage's column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Stage key (a stage the workflow no longer has keeps its column, after the others).
    pub stage: String,
    /// Open orders in the stage, including any beyond the cards shown.
    pub count: u64,
    /// Rush first, then standard, then held; within each, longest in the stage first.
    pub cards: Vec<Card>,
}

/// A workflow's open orders by stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Board {
    /// A column per stage in pipeline order, empty ones included.
    pub columns: Vec<Column>,
    /// Whether there were more open orders than [`BOARD_CARDS`].
    pub truncated: bool,
}

#[derive(FromRow)]
struct CardRow {
    id: i64,
    reference: String,
    stage: String,
    priority: String,
    customer_name: String,
    due_date: Option<String>,
    stage_entered_at: i64,
    version: i64,
}

const CARDS: &str = "SELECT id, reference, stage, priority, customer_name, due_date, stage_entered_at, version \
    FROM orders WHERE workflow = $1 AND status = 'open' \
    ORDER BY CASE priority WHEN 'rush' THEN 0 WHEN 'standard' THEN 1 ELSE 2 END, stage_entered_at, id LIMIT $2";

const COUNTS: &str = "SELECT stage, COUNT(*) FROM orders WHERE workflow = $1 AND status = 'open' GROUP BY stage";

/// The board of `workflow`: both queries read the partial index of open orders.
pub async fn board(db: &Db, workflow: &Workflow) -> Result<Board, sqlx::Error> {
    let key = workflow.key.as_str();
    let rows: Vec<CardRow> =
        on_read!(db, |conn| sqlx::query_as(CARDS).bind(key).bind(i64::from(BOARD_CARDS)).fetch_all(conn).await)?;
    let truncated = rows.len() >= BOARD_CARDS as usize;
    let cutoffs = WorkflowCutoffs::at(workflow, Utc::now());
    let mut columns: Vec<Column> =
        workflow.stages.iter().map(|s| Column { stage: s.key.to_string(), count: 0, cards: Vec::new() }).collect();
    for row in rows {
        let priority = Priority::parse(&row.priority).map_err(|e| corrupt("priority", e))?;
        let due_date = row
            .due_date
            .map(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d"))
            .transpose()
            .map_err(|e| corrupt("due_date", e))?;
        let late = cutoffs.is_late(LateInput {
            stage: &row.stage,
            status: Status::Open,
            priority,
            stage_entered_at: row.stage_entered_at,
            due_date,
        });
        let card = Card {
            id: row.id,
            reference: row.reference,
            customer_name: row.customer_name,
            priority,
            due_date,
            stage_entered_at: from_ms(row.stage_entered_at),
            version: row.version,
            late,
        };
        column(&mut columns, &row.stage).cards.push(card);
    }
    if truncated {
        let counts: Vec<(String, i64)> = on_read!(db, |conn| sqlx::query_as(COUNTS).bind(key).fetch_all(conn).await)?;
        for (stage, count) in counts {
            column(&mut columns, &stage).count = u64::try_from(count).unwrap_or(0);
        }
    } else {
        for c in &mut columns {
            c.count = c.cards.len() as u64;
        }
    }
    Ok(Board { columns, truncated })
}

fn column<'a>(columns: &'a mut Vec<Column>, stage: &str) -> &'a mut Column {
    match columns.iter().position(|c| c.stage == stage) {
        Some(i) => &mut columns[i],
        None => {
            columns.push(Column { stage: stage.to_owned(), count: 0, cards: Vec::new() });
            columns.last_mut().expect("just pushed")
        }
    }
}
