//! CSV import of orders (`kiln import orders FILE.csv`): one row per line item, rows of one
//! order together and keyed by `external_id`. The file is streamed — memory does not grow
//! with its size — and orders are created in batches of up to a hundred, one transaction
//! each, through the same creation steps as the API. A second run of the same file changes
//! nothing: an `external_id` already imported is skipped.

use std::collections::HashMap;
use std::io::Read;

use chrono::DateTime;
use serde_json::json;
use tokio::sync::mpsc;

use crate::domain::model::{Customer, ExternalIds, LineItem};
use crate::domain::order::{EmailAddress, Language, PhoneNumber, Priority, parse_date};
use crate::service::{NewOrder, Service, ServiceError};
use crate::store::inbox;

mod batch;

/// The columns a file may have; `external_id`, `workflow`, `customer_name` and
/// `item_description` are required. Order columns are read from an order's first row.
pub const COLUMNS: [&str; 15] = [
    "external_id",
    "workflow",
    "stage",
    "priority",
    "customer_name",
    "customer_email",
    "customer_phone",
    "customer_language",
    "due_date",
    "notes",
    "created_at",
    "item_description",
    "item_variant",
    "item_quantity",
    "item_material",
];

const REQUIRED: [&str; 4] = ["external_id", "workflow", "customer_name", "item_description"];

/// The link source of imported orders: re-importing an `external_id` finds its order.
pub const LINK_SOURCE: &str = "import";

/// One refused row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    /// Line in the file (the header is line 1).
    pub line: u64,
    /// The column at fault (empty for a problem with the whole row).
    pub column: String,
    /// What is wrong.
    pub reason: String,
}

/// What an import did (or, on a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Data rows read.
    pub rows: u64,
    /// Orders created (or that would be).
    pub created: u64,
    /// Orders whose `external_id` was imported before: left as they are.
    pub skipped: u64,
    /// Orders refused because of a bad row.
    pub refused: u64,
    /// Rows refused (with their orders).
    pub rows_refused: u64,
    /// The first [`MAX_REPORTED`] refused rows, in file order (kept bounded so that memory does
    /// not grow with a file full of mistakes).
    pub problems: Vec<RowProblem>,
}

/// Most refused rows a summary lists.
pub const MAX_REPORTED: usize = 1000;

impl Summary {
    /// Counts one refused order and reports its rows' problems.
    fn refuse(&mut self, problems: impl IntoIterator<Item = RowProblem>) {
        self.refused += 1;
        for problem in problems {
            self.rows_refused += 1;
            if self.problems.len() < MAX_REPORTED {
                self.problems.push(problem);
            }
        }
    }
}

/// Why the file as a whole cannot be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The header is wrong.
    #[error("line 1: {0}")]
    Header(String),
    /// The file cannot be read as CSV.
    #[error("line {line}: {message}")]
    Csv {
        /// Where.
        line: u64,
        /// What.
        message: String,
    },
    /// The database or another internal failure.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// A parsed data row.
struct Row {
    line: u64,
    values: HashMap<&'static str, String>,
}

impl Row {
    fn get(&self, column: &str) -> Option<&str> {
        self.values.get(column).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// Rows read on a blocking thread, handed over a bounded channel: the reader can only run
/// this far ahead of the database.
const AHEAD: usize = 1024;

/// Imports orders from `input`; `on_progress` is told the bytes read so far. With `dry_run`
/// every row is checked and nothing is written.
pub async fn import_orders(
    service: &Service,
    input: impl Read + Send + 'static,
    dry_run: bool,
    mut on_progress: impl FnMut(u64),
) -> Result<Summary, ImportError> {
    let (tx, mut rx) = mpsc::channel::<Result<(Row, u64), ImportError>>(AHEAD);
    let reader = tokio::task::spawn_blocking(move || read_rows(input, &tx));
    let mut summary = Summary::default();
    let mut batch = batch::Batch::default();
    let mut group: Vec<Row> = Vec::new();
    while let Some(next) = rx.recv().await {
        let (row, bytes) = next?;
        summary.rows += 1;
        on_progress(bytes);
        if group.first().is_some_and(|first| first.get("external_id") != row.get("external_id")) {
            let rows = std::mem::take(&mut group);
            import_one(service, rows, dry_run, &mut batch, &mut summary).await?;
        }
        group.push(row);
    }
    if !group.is_empty() {
        import_one(service, group, dry_run, &mut batch, &mut summary).await?;
    }
    batch.flush(service, &mut summary).await?;
    match reader.await {
        Ok(Ok(())) => Ok(summary),
        Ok(Err(e)) => Err(e),
        Err(e) => Err(ServiceError::internal("the CSV reader stopped", e).into()),
    }
}

fn read_rows(input: impl Read, tx: &mpsc::Sender<Result<(Row, u64), ImportError>>) -> Result<(), ImportError> {
    let mut csv = csv::ReaderBuilder::new().flexible(false).trim(csv::Trim::All).from_reader(input);
    let headers = csv.headers().map_err(|e| ImportError::Header(e.to_string()))?.clone();
    let mut columns: Vec<&'static str> = Vec::with_capacity(headers.len());
    for name in &headers {
        let Some(known) = COLUMNS.iter().find(|c| c.eq_ignore_ascii_case(name)) else {
            return Err(ImportError::Header(format!("unknown column `{name}` (columns: {})", COLUMNS.join(", "))));
        };
        if columns.contains(known) {
            return Err(ImportError::Header(format!("column `{known}` appears twice")));
        }
        columns.push(known);
    }
    if let Some(missing) = REQUIRED.iter().find(|r| !columns.contains(r)) {
        return Err(ImportError::Header(format!("the required column `{missing}` is missing")));
    }
    let mut record = csv::StringRecord::new();
    loop {
        match csv.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let line = record.position().map_or(0, csv::Position::line);
                let values = columns.iter().zip(record.iter()).map(|(c, v)| (*c, v.to_owned())).collect();
                let bytes = record.position().map_or(0, csv::Position::byte);
                if tx.blocking_send(Ok((Row { line, values }, bytes))).is_err() {
                    return Ok(()); // the importer stopped; it reports why
                }
            }
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                let error = ImportError::Csv { line, message: e.to_string() };
                let _ = tx.blocking_send(Err(error));
                return Ok(());
            }
        }
    }
}

/// Builds the order of one group of rows and adds it to the batch (or, on a dry run, checks
/// it).
async fn import_one(
    service: &Service,
    rows: Vec<Row>,
    dry_run: bool,
    batch: &mut batch::Batch,
    summary: &mut Summary,
) -> Result<(), ServiceError> {
    let (new, problems) = build(service, &rows);
    let external_id = rows.first().and_then(|r| r.get("external_id")).unwrap_or_default().to_owned();
    let Some(new) = new.filter(|_| problems.is_empty()) else {
        let first_bad = problems.first().map_or(0, |p| p.line);
        // The order's other rows are refused with it: an order is imported whole or not at all.
        let others: Vec<RowProblem> = rows
            .iter()
            .filter(|r| !problems.iter().any(|p| p.line == r.line))
            .map(|r| RowProblem {
                line: r.line,
                column: String::new(),
                reason: format!("order `{external_id}` is refused because of line {first_bad}"),
            })
            .collect();
        let mut all: Vec<RowProblem> = problems.into_iter().chain(others).collect();
        all.sort_by_key(|p| p.line);
        if dry_run {
            summary.refuse(all);
        } else {
            batch.refuse(all);
        }
        return Ok(());
    };
    if dry_run {
        match inbox::linked_order(service.db(), LINK_SOURCE, &external_id).await? {
            Some(_) => summary.skipped += 1,
            None => summary.created += 1,
        }
        return Ok(());
    }
    let line = rows.first().map_or(0, |r| r.line);
    batch.push(service, new, external_id, line, rows.len(), summary).await
}

/// The order a group of rows describes, and what is wrong with its rows.
fn build(service: &Service, rows: &[Row]) -> (Option<NewOrder>, Vec<RowProblem>) {
    let mut problems = Vec::new();
    let Some(first) = rows.first() else { return (None, problems) };
    let mut bad = |line: u64, column: &str, reason: String| {
        problems.push(RowProblem { line, column: column.to_owned(), reason });
    };
    let line = first.line;
    let workflow = first.get("workflow").unwrap_or_default().to_owned();
    if service.workflows().get(&workflow).is_none() {
        let known = service.workflows().keys().join(", ");
        bad(line, "workflow", format!("`{workflow}` is not a workflow (known: {known})"));
    }
    let name = first.get("customer_name").map(str::to_owned);
    if name.is_none() {
        bad(line, "customer_name", "is required".to_owned());
    }
    let mut parse = |column: &str, f: &dyn Fn(&str) -> Result<(), String>| {
        if let Some(v) = first.get(column)
            && let Err(e) = f(v)
        {
            bad(line, column, e);
        }
    };
    parse("customer_email", &|v| EmailAddress::parse(v).map(drop));
    parse("customer_phone", &|v| PhoneNumber::parse(v).map(drop));
    parse("customer_language", &|v| Language::parse(v).map(drop));
    parse("priority", &|v| Priority::parse(v).map(drop));
    parse("due_date", &|v| parse_date(v).map(drop));
    parse("created_at", &|v| {
        DateTime::parse_from_rfc3339(v).map(drop).map_err(|_| format!("`{v}` is not an RFC 3339 time"))
    });
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(description) = row.get("item_description") else {
            problems.push(RowProblem {
                line: row.line,
                column: "item_description".into(),
                reason: "is required".into(),
            });
            continue;
        };
        let quantity = match row.get("item_quantity").map(str::parse::<u32>) {
            None => 1,
            Some(Ok(q)) if q >= 1 => q,
            Some(_) => {
                let reason =
                    format!("`{}` is not a whole number of at least 1", row.get("item_quantity").unwrap_or(""));
                problems.push(RowProblem { line: row.line, column: "item_quantity".into(), reason });
                continue;
            }
        };
        items.push(LineItem {
            description: description.to_owned(),
            variant: row.get("item_variant").map(str::to_owned),
            quantity,
            material: row.get("item_material").map(str::to_owned),
            metadata: json!({}),
        });
    }
    if !problems.is_empty() {
        return (None, problems);
    }
    let shop_language = &service.config().shop.language;
    let language = first.get("customer_language").unwrap_or(shop_language);
    let (Some(name), Ok(language)) = (name, Language::parse(language)) else {
        return (None, problems);
    };
    let new = NewOrder {
        reference: None,
        workflow,
        stage: first.get("stage").map(str::to_owned),
        priority: first.get("priority").and_then(|p| Priority::parse(p).ok()).unwrap_or(Priority::Standard),
        customer: Customer {
            name,
            email: first.get("customer_email").and_then(|e| EmailAddress::parse(e).ok()),
            phone: first.get("customer_phone").and_then(|p| PhoneNumber::parse(p).ok()),
            telegram_chat_id: None,
            channels: Vec::new(),
            language,
            timezone: None,
        },
        items,
        due_date: first.get("due_date").and_then(|d| parse_date(d).ok()),
        notes: first.get("notes").unwrap_or_default().to_owned(),
        customer_note: String::new(),
        external_ids: ExternalIds::default(),
        metadata: json!({ "import": { "external_id": first.get("external_id") } }),
        created_at: first.get("created_at").and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.to_utc()),
    };
    (Some(new), problems)
}
