//! Listing orders: filters, search, four sort orders and keyset pages that stay exact in each.

use chrono::NaiveDate;

use super::cursor::{Cursor, NO_DUE_DATE, Sort, SortKey};
use super::late::LateCutoffs;
use super::search::{self, Search};
use super::{ORDER_COLUMNS, OrderRow};
use crate::domain::model::Order;
use crate::domain::order::{Priority, Status};
use crate::store::{Backend, Db, Engine, on_read};

/// Only late orders, or only orders that are not late, by these cutoffs.
#[derive(Debug, Clone)]
pub struct LateFilter {
    /// `true`: late orders only; `false`: orders that are not late only.
    pub late: bool,
    /// What late means now, from the workflows.
    pub cutoffs: LateCutoffs,
}

/// Which orders to list and in what order; every field narrows the result.
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
    /// Late or not (see [`super::late`]).
    pub late: Option<LateFilter>,
    /// Due on or after this date (orders without a due date never match).
    pub due_from: Option<NaiveDate>,
    /// Due on or before this date.
    pub due_to: Option<NaiveDate>,
    /// Created at or after (epoch ms).
    pub created_from: Option<i64>,
    /// Created before (epoch ms).
    pub created_to: Option<i64>,
    /// Search text: an exact reference, email or phone, else a fragment of any of them or
    /// of the customer's name; case-insensitive (see [`super::search`]).
    pub text: Option<String>,
    /// The sort order.
    pub sort: Sort,
    /// Keyset cursor: only orders after this one in `sort`.
    pub after: Option<Cursor>,
    /// Page size.
    pub limit: u32,
}

/// A bound parameter.
pub(super) enum Arg {
    Text(String),
    Int(i64),
}

/// SQL text built from fixed clauses, with user input only ever bound.
pub(super) struct Query {
    sql: String,
    args: Vec<Arg>,
}

impl Query {
    fn new(sql: String) -> Self {
        Self { sql, args: Vec::new() }
    }

    /// Appends `clause`, numbering its `?` placeholders after the ones already there.
    pub(super) fn push(&mut self, clause: &str, args: impl IntoIterator<Item = Arg>) {
        let mut args = args.into_iter();
        for (i, part) in clause.split('?').enumerate() {
            if i > 0 {
                self.args.push(args.next().unwrap_or(Arg::Text(String::new())));
                self.sql.push_str(&format!("${}", self.args.len()));
            }
            self.sql.push_str(part);
        }
    }
}

fn text(s: &str) -> Arg {
    Arg::Text(s.to_owned())
}

fn date(d: NaiveDate) -> Arg {
    Arg::Text(d.format("%Y-%m-%d").to_string())
}

/// The late condition; never NULL, so that `NOT` of it means "not late". With `workflow`
/// known, only its stages' cutoffs are written: the test runs on every open order walked.
fn late_condition(query: &mut Query, cutoffs: &LateCutoffs, workflow: Option<&str>) {
    query.push("(status = 'open' AND ((due_date IS NOT NULL AND due_date < ?)", [date(cutoffs.today)]);
    let stages: Vec<_> = cutoffs.stages.iter().filter(|c| workflow.is_none_or(|w| c.workflow == w)).collect();
    if !stages.is_empty() {
        query.push(" OR (priority <> 'hold' AND (", []);
        for (i, c) in stages.iter().enumerate() {
            query.push(if i == 0 { "" } else { " OR " }, []);
            query.push(
                "(workflow = ? AND stage = ? AND stage_entered_at < CASE WHEN priority = 'rush' THEN ? ELSE ? END)",
                [text(&c.workflow), text(&c.stage), Arg::Int(c.rush_before), Arg::Int(c.standard_before)],
            );
        }
        query.push("))", []);
    }
    query.push("))", []);
}

/// The late orders as a set: one index range per stage with an expected duration
/// (`orders_open_idx`: workflow, stage, entered before the cutoff) and one of orders past
/// their due date (`orders_open_due_idx`). Costs what the late orders number, where testing
/// every open order costs what the open orders number; the same rule as [`late_condition`].
fn late_set(query: &mut Query, cutoffs: &LateCutoffs, workflow: Option<&str>) {
    query.push(
        &format!(" AND id IN (SELECT id FROM orders WHERE status = 'open' AND coalesce(due_date, '{NO_DUE_DATE}') < ?"),
        [date(cutoffs.today)],
    );
    for c in cutoffs.stages.iter().filter(|c| workflow.is_none_or(|w| c.workflow == w)) {
        // The looser of the two cutoffs bounds the index range; the exact one filters it.
        query.push(
            " UNION ALL SELECT id FROM orders WHERE status = 'open' AND priority <> 'hold' AND workflow = ? \
             AND stage = ? AND stage_entered_at < ? \
             AND stage_entered_at < CASE WHEN priority = 'rush' THEN ? ELSE ? END",
            [
                text(&c.workflow),
                text(&c.stage),
                Arg::Int(c.rush_before.max(c.standard_before)),
                Arg::Int(c.rush_before),
                Arg::Int(c.standard_before),
            ],
        );
    }
    query.push(")", []);
}

/// Orders after `cursor` in `sort`; `id` names the order's id column (`order_search` calls it
/// `order_id`).
fn after_condition(query: &mut Query, sort: Sort, cursor: &Cursor, id: &str) -> Result<(), sqlx::Error> {
    if cursor.sort() != sort {
        return Err(sqlx::Error::InvalidArgument(format!(
            "a cursor of the `{}` sort used with `{}`",
            cursor.sort().as_str(),
            sort.as_str()
        )));
    }
    let after = Arg::Int(cursor.id);
    match (&cursor.key, sort) {
        (SortKey::Created(ms), Sort::Newest) => {
            query.push(&format!(" AND (created_at, {id}) < (?, ?)"), [Arg::Int(*ms), after])
        }
        (SortKey::Created(ms), Sort::Oldest) => {
            query.push(&format!(" AND (created_at, {id}) > (?, ?)"), [Arg::Int(*ms), after])
        }
        (SortKey::Due(due), Sort::DueDate) => {
            query.push(&format!(" AND (coalesce(due_date, '{NO_DUE_DATE}'), {id}) > (?, ?)"), [text(due), after])
        }
        (SortKey::Entered(ms), Sort::TimeInStage) => {
            query.push(&format!(" AND (stage_entered_at, {id}) > (?, ?)"), [Arg::Int(*ms), after])
        }
        _ => return Err(sqlx::Error::InvalidArgument("a cursor without its sort key".to_owned())),
    }
    Ok(())
}

/// How many of the first orders in the list's order (matching the other filters) a fragment
/// search reads on PostgreSQL before it turns to the search keys. The walk reads
/// `orders_created_search_idx` for newest and oldest (search text included: an index-only
/// scan, ~0.3 ms for this many rows) and stops at a full page, which a fragment in at least
/// 1 of 20 orders fills. Rarer fragments are found by period of creation through the search
/// keys, at a cost that follows their matches in the periods read (at 1 in 20, ~1,200 of the
/// ~23,000 orders a period holds at a million orders in three years: ~1 ms).
const FRAGMENT_WINDOW: i64 = 1_000;

/// How many periods of creation (about 25 days each) a fragment search that did not fill a
/// page in its window reads first: the newest one is often only days old.
const FIRST_PERIODS: i64 = 2;

/// Each further round reads this many times as many periods as the one before (2, 8, 32...):
/// few rounds for a rare fragment over years of history, and rarely many more matches
/// fetched than a page.
const PERIODS_GROWTH: i64 = 4;

/// How many of the newest open orders (matching the other filters) a page of late orders
/// tests one by one before it gathers the late orders by index instead.
const LATE_WINDOW: i64 = 500;

/// What the late test reads of each order in that window.
const LATE_WINDOW_COLUMNS: &str = "id, created_at, status, priority, workflow, stage, stage_entered_at, due_date";

/// One page of orders matching `filter`, in its sort order.
pub async fn list(db: &Db, filter: &ListFilter) -> Result<Vec<Order>, sqlx::Error> {
    let search = match filter.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => Some(search::resolve(db, t).await?),
        None => None,
    };
    let backend = db.backend();
    let order_by = filter.sort.order_by();
    if backend == Backend::Postgres
        && let Some(Search::Fragment(fragment)) = &search
    {
        return fragment_page(db, filter, fragment).await;
    }
    let mut late_form = LateForm::Test;
    if let Some(late) = filter.late.as_ref().filter(|l| l.late)
        && matches!(filter.sort, Sort::Newest | Sort::Oldest)
    {
        // Late orders among the newest open ones first: when late orders are common this
        // fills a page in a few dozen rows. When they are rare it would test every open
        // order (5,000 with none late: 3.6 ms in SQLite), where gathering the late ones by
        // index takes 0.3 ms; so a window that does not fill a page hands over to that.
        let mut query = filtered(filter, LATE_WINDOW_COLUMNS, LateForm::Skip)?;
        if let Some(search) = &search {
            search.narrow(&mut query, backend);
        }
        let query = within_window(query, filter, LATE_WINDOW, |q| {
            q.push(" AND ", []);
            late_condition(q, &late.cutoffs, filter.workflow.as_deref());
        });
        let rows = fetch(db, query).await?;
        if rows.len() == filter.limit as usize {
            return rows.into_iter().map(Order::try_from).collect();
        }
        late_form = LateForm::Set;
    }
    // SQLite sorts whole rows; choosing the page by id first keeps what it sorts small
    // (measured: a page of late orders among 5,000 open ones, 6-9 ms -> 3 ms).
    let columns = match backend {
        Backend::Sqlite => "id",
        Backend::Postgres => ORDER_COLUMNS,
    };
    let mut query = filtered(filter, columns, late_form)?;
    if let Some(search) = &search {
        search.narrow(&mut query, backend);
    }
    query.push(&format!(" ORDER BY {order_by} LIMIT ?"), [Arg::Int(i64::from(filter.limit))]);
    if backend == Backend::Sqlite {
        query.sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id IN ({}) ORDER BY {order_by}", query.sql);
    }
    let rows = fetch(db, query).await?;
    rows.into_iter().map(Order::try_from).collect()
}

/// A page of orders whose text contains `fragment` (three or more characters), on PostgreSQL.
/// A common fragment fills its page among the first [`FRAGMENT_WINDOW`] orders; a rarer one
/// is found through the search keys, one span of periods of creation at a time in the
/// list's order (for newest and oldest) or all at once (other sorts), so a search fetches
/// the matches of the periods it needs and not every match in the history.
async fn fragment_page(db: &Db, filter: &ListFilter, fragment: &str) -> Result<Vec<Order>, sqlx::Error> {
    let columns = match filter.sort {
        Sort::Newest | Sort::Oldest => "id, created_at, search_text",
        Sort::DueDate | Sort::TimeInStage => "id, created_at, due_date, stage_entered_at, search_text",
    };
    let query = filtered(filter, columns, LateForm::Test)?;
    let query = within_window(query, filter, FRAGMENT_WINDOW, |q| search::contains(q, fragment));
    let rows = fetch(db, query).await?;
    // A full page holds the first matches in this order: nothing beyond the window could
    // come before them.
    if rows.len() == filter.limit as usize {
        return rows.into_iter().map(Order::try_from).collect();
    }
    let Some((first, last)) = periods(db, filter).await? else {
        return Ok(Vec::new());
    };
    let limit = filter.limit as usize;
    let mut page: Vec<Order> = Vec::with_capacity(limit);
    // Periods not read yet: `first..=last`, read from the newest end for newest first.
    let (mut low, mut high) = (first, last);
    let mut span = FIRST_PERIODS;
    while low <= high && page.len() < limit {
        let periods = match filter.sort {
            Sort::Newest => (high - span + 1).max(low)..=high,
            Sort::Oldest => low..=(low + span - 1).min(high),
            Sort::DueDate | Sort::TimeInStage => low..=high,
        };
        let wanted = (limit - page.len()) as i64;
        let mut query = filtered(filter, ORDER_COLUMNS, LateForm::Test)?;
        matching_in_periods(&mut query, filter, periods.clone(), fragment, wanted)?;
        query.push(&format!(" ORDER BY {} LIMIT ?", filter.sort.order_by()), [Arg::Int(wanted)]);
        for row in fetch(db, query).await? {
            page.push(Order::try_from(row)?);
        }
        match filter.sort {
            Sort::Newest => high = periods.start() - 1,
            _ => low = periods.end() + 1,
        }
        span *= PERIODS_GROWTH;
    }
    Ok(page)
}

/// `AND id IN (orders of `order_search` made in `periods` whose text contains `fragment`)`.
/// A list by creation with nothing to filter but the created range and the cursor, which
/// `order_search` holds as well, keeps only the first `wanted` matches there, so only a
/// page of orders is read however many matches the periods hold.
fn matching_in_periods(
    query: &mut Query,
    filter: &ListFilter,
    periods: std::ops::RangeInclusive<i64>,
    fragment: &str,
    wanted: i64,
) -> Result<(), sqlx::Error> {
    query.push(" AND id IN (SELECT order_id FROM order_search WHERE 1 = 1", []);
    search::in_periods(query, periods, fragment);
    let by_creation = match filter.sort {
        Sort::Newest => Some("created_at DESC, order_id DESC"),
        Sort::Oldest => Some("created_at, order_id"),
        Sort::DueDate | Sort::TimeInStage => None,
    };
    let only_searched = filter.workflow.is_none()
        && filter.stage.is_none()
        && filter.priority.is_none()
        && filter.status.is_none()
        && filter.late.is_none()
        && filter.due_from.is_none()
        && filter.due_to.is_none();
    if let (Some(order_by), true) = (by_creation, only_searched) {
        created_and_after(query, filter, "order_id")?;
        query.push(&format!(" ORDER BY {order_by} LIMIT ?"), [Arg::Int(wanted)]);
    }
    query.push(")", []);
    Ok(())
}

/// The periods of creation (see [`search::period`]) that orders after `filter`'s cursor and
/// in its created range can have: from the oldest order's to the newest's, narrowed by them.
/// `None` when that leaves none.
async fn periods(db: &Db, filter: &ListFilter) -> Result<Option<(i64, i64)>, sqlx::Error> {
    let bounds: (Option<i64>, Option<i64>) =
        on_read!(db, |conn| sqlx::query_as("SELECT min(created_at), max(created_at) FROM orders")
            .fetch_one(conn)
            .await)?;
    let (Some(mut oldest), Some(mut newest)) = bounds else {
        return Ok(None);
    };
    if let Some(from) = filter.created_from {
        oldest = oldest.max(from);
    }
    if let Some(to) = filter.created_to {
        newest = newest.min(to);
    }
    if let Some(cursor) = &filter.after
        && let SortKey::Created(at) = cursor.key
    {
        match filter.sort {
            Sort::Newest => newest = newest.min(at),
            Sort::Oldest => oldest = oldest.max(at),
            Sort::DueDate | Sort::TimeInStage => {}
        }
    }
    Ok((oldest <= newest).then(|| (search::period(oldest), search::period(newest))))
}

/// The page among the first `window` rows of `query` (in the filter's sort) that also pass
/// `test`, read by id: a walk that stops at `window` rows however few pass.
fn within_window(mut query: Query, filter: &ListFilter, window: i64, test: impl FnOnce(&mut Query)) -> Query {
    let order_by = filter.sort.order_by();
    query.push(&format!(" ORDER BY {order_by} LIMIT ?"), [Arg::Int(window)]);
    query.sql = format!("SELECT id FROM ({}) recent WHERE 1 = 1", query.sql);
    test(&mut query);
    query.push(&format!(" ORDER BY {order_by} LIMIT ?"), [Arg::Int(i64::from(filter.limit))]);
    query.sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id IN ({}) ORDER BY {order_by}", query.sql);
    query
}

/// How [`filtered`] writes the `late` filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LateForm {
    /// Each order walked is tested: cheap when late orders are common.
    Test,
    /// The late orders are gathered by index first (only for `late = true`).
    Set,
    /// Left out (but only open orders kept), for the caller to test.
    Skip,
}

/// `SELECT columns FROM orders` with every condition of `filter` but its search text,
/// cursor included.
fn filtered(filter: &ListFilter, columns: &str, form: LateForm) -> Result<Query, sqlx::Error> {
    let mut query = Query::new(format!("SELECT {columns} FROM orders WHERE 1 = 1"));
    if let Some(w) = &filter.workflow {
        query.push(" AND workflow = ?", [text(w)]);
    }
    if let Some(s) = &filter.stage {
        query.push(" AND stage = ?", [text(s)]);
    }
    if let Some(p) = filter.priority {
        query.push(" AND priority = ?", [text(p.as_str())]);
    }
    if let Some(s) = filter.status {
        // Written as a literal (one of a fixed set, never input) so that SQLite, which plans
        // before values are bound, can use the open orders' partial indexes.
        query.push(&format!(" AND status = '{}'", s.as_str()), []);
    }
    if let Some(late) = &filter.late {
        let workflow = filter.workflow.as_deref();
        match (late.late, form) {
            (false, _) => {
                query.push(" AND NOT ", []);
                late_condition(&mut query, &late.cutoffs, workflow);
            }
            // Stated on its own as well, so that both engines see that the open orders'
            // partial indexes serve the query.
            (true, LateForm::Test) => {
                query.push(" AND status = 'open' AND ", []);
                late_condition(&mut query, &late.cutoffs, workflow);
            }
            (true, LateForm::Set) => {
                query.push(" AND status = 'open'", []);
                late_set(&mut query, &late.cutoffs, workflow);
            }
            (true, LateForm::Skip) => query.push(" AND status = 'open'", []),
        }
    }
    // Written over the due-date sort's index expression so that the range reads it.
    if let Some(from) = filter.due_from {
        query.push(&format!(" AND due_date IS NOT NULL AND coalesce(due_date, '{NO_DUE_DATE}') >= ?"), [date(from)]);
    }
    if let Some(to) = filter.due_to {
        query.push(&format!(" AND coalesce(due_date, '{NO_DUE_DATE}') <= ?"), [date(to)]);
    }
    created_and_after(&mut query, filter, "id")?;
    Ok(query)
}

/// `filter`'s created range and cursor; `id` names the order's id column.
fn created_and_after(query: &mut Query, filter: &ListFilter, id: &str) -> Result<(), sqlx::Error> {
    if let Some(from) = filter.created_from {
        query.push(" AND created_at >= ?", [Arg::Int(from)]);
    }
    if let Some(to) = filter.created_to {
        query.push(" AND created_at < ?", [Arg::Int(to)]);
    }
    if let Some(cursor) = &filter.after {
        after_condition(query, filter.sort, cursor, id)?;
    }
    Ok(())
}

/// The cursor of the page after `page`, when `page` was full.
pub fn next_cursor(filter: &ListFilter, page: &[Order]) -> Option<Cursor> {
    if page.len() < filter.limit as usize {
        return None;
    }
    page.last().map(|o| Cursor::after(filter.sort, o))
}

macro_rules! bind_all {
    ($query:expr, $args:expr) => {{
        let mut q = $query;
        for arg in $args {
            q = match arg {
                Arg::Text(t) => q.bind(t),
                Arg::Int(i) => q.bind(i),
            };
        }
        q
    }};
}

/// Runs a list query. On PostgreSQL it is planned for its values (`lists` connections): the
/// rest of kiln uses generic plans, right for its point lookups and writes, but whether a
/// search fragment or a date range matches ten orders or a million decides between reading
/// an index and walking the table in order, and only the values tell.
async fn fetch(db: &Db, query: Query) -> Result<Vec<OrderRow>, sqlx::Error> {
    let Query { sql, args } = query;
    match db.engine() {
        Engine::Sqlite(sqlite) => {
            bind_all!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), args).fetch_all(&sqlite.reader).await
        }
        Engine::Postgres(pg) => bind_all!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), args).fetch_all(&pg.lists).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order() {
        let mut q = Query::new("SELECT 1 WHERE 1 = 1".to_owned());
        q.push(" AND a = ?", [Arg::Int(1)]);
        q.push(" AND (b, c) > (?, ?)", [Arg::Int(2), Arg::Int(3)]);
        assert_eq!(q.sql, "SELECT 1 WHERE 1 = 1 AND a = $1 AND (b, c) > ($2, $3)");
        assert_eq!(q.args.len(), 3);
    }
}
