//! Listing orders with filters and keyset pagination (newest first).

use super::{ORDER_COLUMNS, OrderRow};
use crate::domain::model::Order;
use crate::domain::order::{Priority, Status};
use crate::store::{Db, on_read};

/// Which orders to list; every field narrows the result.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Workflow key.
    pub workflow: Option<String>,
    /// Stage key.
    pub stage: Option<String>,
    /// Priority.
    pub priority: Option<Priority>,
    /// Status.
    pub status: Option<Status>,
    /// Created at or after (epoch ms).
    pub created_from: Option<i64>,
    /// Created before (epoch ms).
    pub created_to: Option<i64>,
    /// Case-insensitive text in the reference, customer name, email or phone.
    pub text: Option<String>,
    /// Keyset cursor: only orders with a smaller id.
    pub before_id: Option<i64>,
    /// Page size.
    pub limit: u32,
}

enum Arg {
    Text(String),
    Int(i64),
}

/// Escapes `%`, `_` and `\` so user text matches literally inside a LIKE pattern.
fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// One page of orders matching `filter`, newest first.
pub async fn list(db: &Db, filter: &ListFilter) -> Result<Vec<Order>, sqlx::Error> {
    let mut sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE 1 = 1");
    let mut args: Vec<Arg> = Vec::new();
    let mut push = |clause: &str, arg: Arg| {
        args.push(arg);
        sql.push_str(&clause.replace('?', &format!("${}", args.len())));
    };
    if let Some(w) = &filter.workflow {
        push(" AND workflow = ?", Arg::Text(w.clone()));
    }
    if let Some(s) = &filter.stage {
        push(" AND stage = ?", Arg::Text(s.clone()));
    }
    if let Some(p) = filter.priority {
        push(" AND priority = ?", Arg::Text(p.as_str().to_owned()));
    }
    if let Some(s) = filter.status {
        push(" AND status = ?", Arg::Text(s.as_str().to_owned()));
    }
    if let Some(from) = filter.created_from {
        push(" AND created_at >= ?", Arg::Int(from));
    }
    if let Some(to) = filter.created_to {
        push(" AND created_at < ?", Arg::Int(to));
    }
    if let Some(text) = filter.text.as_deref().filter(|t| !t.trim().is_empty()) {
        push(" AND search_text LIKE ? ESCAPE '\\'", Arg::Text(like_pattern(text.trim())));
    }
    if let Some(before) = filter.before_id {
        push(" AND id < ?", Arg::Int(before));
    }
    push(" ORDER BY id DESC LIMIT ?", Arg::Int(i64::from(filter.limit)));

    // The SQL text is assembled only from the fixed clauses above; user input is bound.
    let rows: Vec<OrderRow> = on_read!(db, |conn| {
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for arg in args {
            query = match arg {
                Arg::Text(t) => query.bind(t),
                Arg::Int(i) => query.bind(i),
            };
        }
        query.fetch_all(conn).await
    })?;
    rows.into_iter().map(Order::try_from).collect()
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn like_patterns_match_user_text_literally() {
        assert_eq!(like_pattern("Ana_50%"), "%ana\\_50\\%%");
        assert_eq!(like_pattern("a\\b"), "%a\\\\b%");
    }
}
