//! The deflection figures: tracking-page views (one per order per day) and the questions
//! customers asked on their pages (portal notes in the audit log), by week and by order.

use super::{Db, on_read, on_writer};

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// Records that an order's page was opened on `day` (days since the epoch, UTC); a second
/// view the same day changes nothing.
pub async fn record_view(db: &Db, order_id: i64, day: i64) -> Result<(), sqlx::Error> {
    const SQL: &str = "INSERT INTO tracking_views (order_id, day) VALUES ($1, $2) ON CONFLICT DO NOTHING";
    on_writer!(db, |conn| sqlx::query(SQL).bind(order_id).bind(day).execute(conn).await.map(|_| ()))
}

/// Views of an order's page, one per day it was opened.
pub async fn views_of(db: &Db, order_id: i64) -> Result<i64, sqlx::Error> {
    const SQL: &str = "SELECT COUNT(*) FROM tracking_views WHERE order_id = $1";
    on_read!(db, |conn| sqlx::query_scalar(SQL).bind(order_id).fetch_one(conn).await)
}

/// `(first day of the week, count)` of views from `since_day` on. Weeks start on Monday:
/// day 0 (1970-01-01) was a Thursday, so `(day + 3) % 7` is the days since Monday.
pub async fn views_by_week(db: &Db, since_day: i64) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    const SQL: &str = "SELECT day - ((day + 3) % 7) AS week, COUNT(*) FROM tracking_views \
                       WHERE day >= $1 GROUP BY day - ((day + 3) % 7) ORDER BY week";
    on_read!(db, |conn| sqlx::query_as(SQL).bind(since_day).fetch_all(conn).await)
}

/// `(first day of the week, count)` of questions asked from `since_day` on.
pub async fn questions_by_week(db: &Db, since_day: i64) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    const SQL: &str = "SELECT d - ((d + 3) % 7) AS week, COUNT(*) FROM \
                       (SELECT created_at / $2 AS d FROM order_events \
                        WHERE source = 'portal' AND kind = 'noted' AND created_at >= $1) q \
                       GROUP BY d - ((d + 3) % 7) ORDER BY week";
    on_read!(db, |conn| sqlx::query_as(SQL).bind(since_day * DAY_MS).bind(DAY_MS).fetch_all(conn).await)
}

/// `(reference, views, questions)` of the orders with the most views or questions since
/// `since_day`, at most `limit`.
pub async fn by_order(db: &Db, since_day: i64, limit: i64) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    const SQL: &str = "SELECT o.reference, COALESCE(v.n, 0) AS views, COALESCE(q.n, 0) AS questions FROM orders o \
                       LEFT JOIN (SELECT order_id, COUNT(*) AS n FROM tracking_views WHERE day >= $1 GROUP BY order_id) v \
                         ON v.order_id = o.id \
                       LEFT JOIN (SELECT order_id, COUNT(*) AS n FROM order_events \
                                  WHERE source = 'portal' AND kind = 'noted' AND created_at >= $2 GROUP BY order_id) q \
                         ON q.order_id = o.id \
                       WHERE v.n IS NOT NULL OR q.n IS NOT NULL \
                       ORDER BY COALESCE(v.n, 0) + COALESCE(q.n, 0) DESC, o.id LIMIT $3";
    on_read!(db, |conn| sqlx::query_as(SQL).bind(since_day).bind(since_day * DAY_MS).bind(limit).fetch_all(conn).await)
}

/// One question asked on a tracking page.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Inquiry {
    /// The event id (also the paging cursor).
    pub id: i64,
    /// The order's reference.
    pub reference: String,
    /// The question, as stored (markup removed).
    pub question: Option<String>,
    /// When (epoch ms).
    pub created_at: i64,
}

/// Questions asked, newest first: of one order or of all, before the event id `before`.
pub async fn inquiries(
    db: &Db,
    order_id: Option<i64>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Inquiry>, sqlx::Error> {
    const SQL: &str = "SELECT e.id, o.reference, e.note AS question, e.created_at FROM order_events e \
                       JOIN orders o ON o.id = e.order_id \
                       WHERE e.source = 'portal' AND e.kind = 'noted' \
                         AND ($1 IS NULL OR e.order_id = $1) AND ($2 IS NULL OR e.id < $2) \
                       ORDER BY e.id DESC LIMIT $3";
    on_read!(db, |conn| sqlx::query_as(SQL).bind(order_id).bind(before).bind(limit).fetch_all(conn).await)
}

/// `(id, reference, customer language)` of open, unheld orders in `stage` of `workflow` since
/// `entered_before` (epoch ms) or earlier: those an approval reminder may be due for.
pub async fn waiting_since(
    db: &Db,
    workflow: &str,
    stage: &str,
    entered_before: i64,
) -> Result<Vec<(i64, String, String)>, sqlx::Error> {
    const SQL: &str = "SELECT id, reference, customer_language FROM orders WHERE workflow = $1 AND stage = $2 \
                       AND status = 'open' AND priority <> 'hold' AND stage_entered_at <= $3 ORDER BY id";
    on_read!(db, |conn| sqlx::query_as(SQL).bind(workflow).bind(stage).bind(entered_before).fetch_all(conn).await)
}
