//! The column lists of the change write, defined once. Every form of the write — SQLite's
//! single call, the generic transaction, PostgreSQL's batch statement — builds its column and
//! placeholder lists from these, so adding a column is one edit here plus its binding.

/// The order's mutable columns, in binding order: 17 text columns, then 2 times (ms).
pub const ORDER_MUTABLE: [&str; 19] = [
    "stage",
    "status",
    "priority",
    "resume_priority",
    "customer_name",
    "customer_email",
    "customer_phone",
    "customer_telegram",
    "customer_channels",
    "customer_language",
    "customer_timezone",
    "due_date",
    "notes",
    "customer_note",
    "external_ids",
    "metadata",
    "search_text",
    "stage_entered_at",
    "updated_at",
];

/// How many of [`ORDER_MUTABLE`] are text (the rest are epoch milliseconds).
pub const ORDER_MUTABLE_TEXT: usize = 17;

/// An event's columns after `order_id`, in binding order, with their PostgreSQL types.
pub const EVENT: [(&str, &str); 11] = [
    ("kind", "text"),
    ("from_stage", "text"),
    ("to_stage", "text"),
    ("actor", "text"),
    ("source", "text"),
    ("note", "text"),
    ("internal_note", "text"),
    ("visibility", "text"),
    ("photo_ids", "text"),
    ("data", "text"),
    ("created_at", "bigint"),
];

/// The columns of a new outbox job.
pub const OUTBOX_INSERT: &str = "kind, order_id, event_id, payload, status, attempts, run_at, created_at, updated_at";

/// The values of one new job for [`OUTBOX_INSERT`], from SQL expressions for its kind,
/// order, event and time: every new job starts pending, unattempted and due now.
pub fn outbox_values(kind: &str, order: &str, event: &str, now: &str) -> String {
    format!("{kind}, {order}, {event}, '{{}}', 'pending', 0, {now}, {now}, {now}")
}

/// `$first, $first+1, …` for `n` parameters.
pub fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// `($1, …, $width), ($width+1, …), …`: the placeholders of a multi-row `VALUES` with `rows`
/// rows of `width` parameters each.
pub fn rows(rows: usize, width: usize) -> String {
    (0..rows).map(|r| format!("({})", placeholders(1 + r * width, width))).collect::<Vec<_>>().join(", ")
}

/// `a = $first, b = $first+1, …` for `columns`.
pub fn assignments(columns: &[&str], first: usize) -> String {
    columns.iter().zip(first..).map(|(c, i)| format!("{c} = ${i}")).collect::<Vec<_>>().join(", ")
}

/// The event column names, comma-separated.
pub fn event_names() -> String {
    EVENT.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_built_in_binding_order() {
        assert_eq!(placeholders(3, 3), "$3, $4, $5");
        assert_eq!(assignments(&["a", "b"], 20), "a = $20, b = $21");
        assert_eq!(rows(2, 2), "($1, $2), ($3, $4)");
        assert!(event_names().starts_with("kind, from_stage") && event_names().ends_with("data, created_at"));
        assert_eq!(ORDER_MUTABLE[ORDER_MUTABLE_TEXT], "stage_entered_at");
        assert_eq!(outbox_values("$1", "$2", "$3", "$4"), "$1, $2, $3, '{}', 'pending', 0, $4, $4, $4");
    }
}
