//! The deflection figures: tracking-page views against questions asked, by week and by order.

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::service::Service;
use crate::store::tracking_stats;
use crate::web::AppState;
use crate::web::error::{ApiError, Problem, Result};
use crate::web::extract::{ApiQuery, Reader};

/// Routes for statistics.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(tracking_stats))
}

/// Which period.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// Whole weeks back from this one, 1 to 52 (default 8).
    weeks: Option<String>,
}

/// One week's figures.
#[derive(Debug, Serialize, ToSchema)]
pub struct WeekStats {
    /// The Monday starting the week (UTC), `YYYY-MM-DD`.
    pub week: String,
    /// Tracking-page views: each order's page counts once per day it was opened.
    pub views: i64,
    /// Questions asked on tracking pages.
    pub questions: i64,
}

/// One order's figures over the period.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderStats {
    /// The order's reference.
    pub order: String,
    /// Days its page was opened.
    pub views: i64,
    /// Questions asked on it.
    pub questions: i64,
}

/// Views against questions: a page view that needs no question is an inquiry deflected.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrackingStats {
    /// The first day counted (a Monday, UTC), `YYYY-MM-DD`.
    pub since: String,
    /// Views over the period.
    pub views: i64,
    /// Questions over the period.
    pub questions: i64,
    /// Questions per 100 views (`null` without views).
    pub questions_per_100_views: Option<f64>,
    /// By week, oldest first; weeks with neither are listed with zeros.
    pub weeks: Vec<WeekStats>,
    /// The 100 orders with the most views and questions.
    pub orders: Vec<OrderStats>,
}

fn date_of(day: i64) -> String {
    chrono::DateTime::from_timestamp(day * 86_400, 0).map(|d| d.date_naive().to_string()).unwrap_or_default()
}

/// Tracking-page views and questions asked, by week and by order. No personal data: a view
/// is an order's page opened on a day.
#[utoipa::path(
    get, path = "/stats/tracking", tag = "tracking",
    params(StatsQuery),
    responses(
        (status = 200, description = "The figures", body = TrackingStats),
        (status = 422, description = "Invalid parameter", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
async fn tracking_stats(
    State(service): State<Service>,
    _reader: Reader,
    ApiQuery(query): ApiQuery<StatsQuery>,
) -> Result<Json<TrackingStats>> {
    let weeks = match query.weeks.as_deref() {
        None => 8,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=52).contains(n))
            .ok_or_else(|| ApiError::invalid("weeks", "must be a whole number from 1 to 52"))?,
    };
    let today = Utc::now().timestamp().div_euclid(86_400);
    let this_monday = today - (today + 3).rem_euclid(7);
    let since = this_monday - 7 * (weeks - 1);
    let db = service.db();
    let views = tracking_stats::views_by_week(db, since).await.map_err(ApiError::internal)?;
    let questions = tracking_stats::questions_by_week(db, since).await.map_err(ApiError::internal)?;
    let orders = tracking_stats::by_order(db, since, 100).await.map_err(ApiError::internal)?;
    let count = |list: &[(i64, i64)], week: i64| list.iter().find(|(w, _)| *w == week).map_or(0, |(_, n)| *n);
    let weeks: Vec<WeekStats> = (0..weeks)
        .map(|i| since + 7 * i)
        .map(|w| WeekStats { week: date_of(w), views: count(&views, w), questions: count(&questions, w) })
        .collect();
    let total_views: i64 = weeks.iter().map(|w| w.views).sum();
    let total_questions: i64 = weeks.iter().map(|w| w.questions).sum();
    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let rate = (total_views > 0).then(|| (total_questions as f64 * 10_000.0 / total_views as f64).round() / 100.0);
    Ok(Json(TrackingStats {
        since: date_of(since),
        views: total_views,
        questions: total_questions,
        questions_per_100_views: rate,
        weeks,
        orders: orders.into_iter().map(|(order, views, questions)| OrderStats { order, views, questions }).collect(),
    }))
}
