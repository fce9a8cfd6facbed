//! A workflow's board: its open orders as cards in a column per stage, rush first.

use chrono::{DateTime, NaiveDate, Utc};

use super::late::{LateInput, WorkflowCutoffs};
use crate::domain::order::{Priority, Status};
use crate::domain::workflow::Workflow;
use crate::store::{Backend, Db, corrupt, from_ms, on_read};

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

/// id, reference, stage, priority, customer name, due date, stage entered at, version.
type CardRow = (i64, String, String, String, String, Option<String>, i64, i64);

const CARD_FIELDS: &str = "id, reference, stage, priority, customer_name, due_date, stage_entered_at, version";

/// The best cards when there are too many to show; otherwise every open order is read
/// unsorted and sorted here, which is cheaper than in the database.
const BEST_FIRST: &str =
    "ORDER BY CASE priority WHEN 'rush' THEN 0 WHEN 'standard' THEN 1 ELSE 2 END, stage_entered_at, id";

/// Reads up to `limit` cards. On SQLite they come as one JSON array of arrays: thousands
/// of rows cost far less as one value than row by row (each row is a hop from SQLite's
/// worker thread). PostgreSQL sends rows cheaply and builds JSON slowly, so it sends rows.
async fn read_cards(db: &Db, workflow: &str, limit: u32, order: &str) -> Result<Vec<CardRow>, sqlx::Error> {
    let select = format!("SELECT {CARD_FIELDS} FROM orders WHERE workflow = $1 AND status = 'open' {order} LIMIT $2");
    match db.backend() {
        Backend::Sqlite => {
            let sql = format!("SELECT json_group_array(json_array({CARD_FIELDS})) FROM ({select}) AS cards");
            let json: String = on_read!(db, |conn| sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(workflow)
                .bind(i64::from(limit))
                .fetch_one(conn)
                .await)?;
            serde_json::from_str(&json).map_err(|e| corrupt("board cards", e))
        }
        Backend::Postgres => on_read!(db, |conn| sqlx::query_as(sqlx::AssertSqlSafe(select))
            .bind(workflow)
            .bind(i64::from(limit))
            .fetch_all(conn)
            .await),
    }
}

fn rank(priority: Priority) -> u8 {
    match priority {
        Priority::Rush => 0,
        Priority::Standard => 1,
        Priority::Hold => 2,
    }
}

const COUNTS: &str = "SELECT stage, COUNT(*) FROM orders WHERE workflow = $1 AND status = 'open' GROUP BY stage";

/// The board of `workflow`: its queries read the partial index of open orders.
pub async fn board(db: &Db, workflow: &Workflow) -> Result<Board, sqlx::Error> {
    let key = workflow.key.as_str();
    let mut rows = read_cards(db, key, BOARD_CARDS + 1, "").await?;
    let truncated = rows.len() > BOARD_CARDS as usize;
    if truncated {
        rows = read_cards(db, key, BOARD_CARDS, BEST_FIRST).await?;
    }
    let cutoffs = WorkflowCutoffs::at(workflow, Utc::now());
    let mut columns: Vec<Column> =
        workflow.stages.iter().map(|s| Column { stage: s.key.to_string(), count: 0, cards: Vec::new() }).collect();
    let mut cards = Vec::with_capacity(rows.len());
    for (id, reference, stage, priority, customer_name, due_date, stage_entered_at, version) in rows {
        let priority = Priority::parse(&priority).map_err(|e| corrupt("priority", e))?;
        let due_date = due_date
            .map(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d"))
            .transpose()
            .map_err(|e| corrupt("due_date", e))?;
        let late =
            cutoffs.is_late(LateInput { stage: &stage, status: Status::Open, priority, stage_entered_at, due_date });
        let card = Card {
            id,
            reference,
            customer_name,
            priority,
            due_date,
            stage_entered_at: from_ms(stage_entered_at),
            version,
            late,
        };
        cards.push((stage, card));
    }
    cards.sort_by_key(|(_, c)| (rank(c.priority), c.stage_entered_at, c.id));
    for (stage, card) in cards {
        column(&mut columns, &stage).cards.push(card);
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
    let i = columns.iter().position(|c| c.stage == stage).unwrap_or_else(|| {
        columns.push(Column { stage: stage.to_owned(), count: 0, cards: Vec::new() });
        columns.len() - 1
    });
    &mut columns[i]
}
