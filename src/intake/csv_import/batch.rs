//! The orders of an import gathered into batches, each created in one transaction
//! ([`Service::create_linked_batch`]): per-order transactions spent most of their time on
//! round trips to SQLite's single writer (docs/benchmarks.md, "CSV import").

use super::{LINK_SOURCE, RowProblem, Summary};
use crate::domain::model::Actor;
use crate::domain::order::Source;
use crate::service::{Linked, NewOrder, Service, ServiceError, Signal};

/// Most orders in a batch: past about a hundred, a bigger batch saved no time.
const MAX_ORDERS: usize = 100;
/// Most rows in a batch, so that orders with many line items keep a batch (and memory) small.
const MAX_ROWS: usize = 1000;

/// An order of the file, in file order: refused while read, or waiting to be created.
enum Slot {
    /// Refused: its rows and why.
    Refused(Vec<RowProblem>),
    /// The next order of [`Batch::orders`], whose first row is on this line.
    Create(u64),
}

/// Orders waiting to be created, and the refused ones among them, so that the summary
/// lists problems in file order.
#[derive(Default)]
pub(super) struct Batch {
    slots: Vec<Slot>,
    orders: Vec<(NewOrder, String)>,
    rows: usize,
}

impl Batch {
    /// Adds an order of `rows` rows, first on `line`; creates the batch when it is full.
    pub(super) async fn push(
        &mut self,
        service: &Service,
        order: NewOrder,
        external_id: String,
        line: u64,
        rows: usize,
        summary: &mut Summary,
    ) -> Result<(), ServiceError> {
        self.slots.push(Slot::Create(line));
        self.orders.push((order, external_id));
        self.rows += rows;
        if self.orders.len() >= MAX_ORDERS || self.rows >= MAX_ROWS {
            self.flush(service, summary).await?;
        }
        Ok(())
    }

    /// Adds an order refused while read; it is reported with the batch it falls in.
    pub(super) fn refuse(&mut self, problems: Vec<RowProblem>) {
        self.slots.push(Slot::Refused(problems));
    }

    /// Creates the waiting orders and records what became of them, in file order. Stops
    /// the import (`Err`) only for a failure that is not one order's fault.
    pub(super) async fn flush(&mut self, service: &Service, summary: &mut Summary) -> Result<(), ServiceError> {
        let slots = std::mem::take(&mut self.slots);
        let orders = std::mem::take(&mut self.orders);
        self.rows = 0;
        let actor = Actor { name: "csv import".to_owned(), source: Source::System };
        let mut results =
            if orders.is_empty() { Vec::new() } else { service.create_linked_batch(orders, &actor, LINK_SOURCE).await }
                .into_iter();
        for slot in slots {
            let line = match slot {
                Slot::Refused(problems) => {
                    summary.refuse(problems);
                    continue;
                }
                Slot::Create(line) => line,
            };
            let result = results.next().ok_or_else(|| ServiceError::broken("a batch lost an order"))?;
            match result {
                Ok(Linked::New(order)) => {
                    summary.created += 1;
                    // Nobody is about to read an imported order here: let the caches drop it,
                    // so that memory does not grow with the number of orders imported.
                    service.on_signal(Signal::Order(order.id));
                }
                Ok(Linked::Existing(_)) => summary.skipped += 1,
                Err(e) => {
                    let Some((column, reason)) = refusal(&e) else { return Err(e) };
                    summary.refuse([RowProblem { line, column, reason }]);
                }
            }
        }
        Ok(())
    }
}

/// The column and reason to report when `e` refuses one order rather than the import: a
/// value the workflow does not accept, a reference taken, or a row the database refuses.
fn refusal(e: &ServiceError) -> Option<(String, String)> {
    use sqlx::error::ErrorKind;
    match e {
        ServiceError::Invalid { field, message } => Some((field.clone(), message.clone())),
        ServiceError::DuplicateReference(_) => Some((String::new(), e.to_string())),
        ServiceError::Store(sqlx::Error::Database(db))
            if matches!(
                db.kind(),
                ErrorKind::UniqueViolation
                    | ErrorKind::ForeignKeyViolation
                    | ErrorKind::NotNullViolation
                    | ErrorKind::CheckViolation
            ) =>
        {
            Some((String::new(), format!("the database refused the order: {}", db.message())))
        }
        _ => None,
    }
}
