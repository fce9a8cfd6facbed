//! Listing orders: filters, search, sort orders and opaque keyset cursors.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{OrderPage, OrderSummaryOut};
use crate::domain::order::{Priority, Status};
use crate::service::Service;
use crate::store::orders::{Cursor, LateCutoffs, LateFilter, ListFilter, Sort, list, next_cursor};
use crate::web::error::{ApiError, Problem, Result};
use crate::web::extract::{ApiQuery, Reader};
use crate::web::validate::Check;

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;
const MAX_SEARCH: usize = 200;

/// Filters for listing orders; all optional and combined with AND.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Workflow key.
    workflow: Option<String>,
    /// Stage key.
    stage: Option<String>,
    /// `rush`, `standard` or `hold`.
    priority: Option<String>,
    /// `open`, `completed`, `cancelled` or `awaiting_payment`.
    status: Option<String>,
    /// `true`: only open orders that are late (longer in their stage than the workflow
    /// expects, or past their due date); `false`: only orders that are not.
    late: Option<String>,
    /// Due on or after this date (`YYYY-MM-DD`).
    due_from: Option<String>,
    /// Due on or before this date (`YYYY-MM-DD`).
    due_to: Option<String>,
    /// Created at or after this time (RFC 3339) or date (`YYYY-MM-DD`, UTC).
    created_after: Option<String>,
    /// Created before this time (RFC 3339) or date (`YYYY-MM-DD`, UTC).
    created_before: Option<String>,
    /// Search: an exact reference, email or phone number finds its orders; other text (up
    /// to 200 characters) is matched case-insensitively inside the reference, customer
    /// name, email and phone.
    q: Option<String>,
    /// `newest` (default), `oldest`, `due_date` (earliest first, orders without one last)
    /// or `time_in_stage` (longest first).
    sort: Option<String>,
    /// Page size, 1-200 (default 50).
    limit: Option<String>,
    /// `next_cursor` from the previous page (of the same sort).
    cursor: Option<String>,
}

fn parse_time(raw: &str) -> Result<i64, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.timestamp_millis());
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
        .ok_or_else(|| format!("`{raw}` is not an RFC 3339 time or a YYYY-MM-DD date"))
}

fn parse_date(raw: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| format!("`{raw}` is not a YYYY-MM-DD date"))
}

fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("`{raw}` is not `true` or `false`")),
    }
}

impl ListQuery {
    fn parse(self, cutoffs: impl FnOnce() -> LateCutoffs) -> Result<ListFilter> {
        let mut check = Check::default();
        let limit = match self.limit.as_deref() {
            None => DEFAULT_LIMIT,
            Some(raw) => match raw.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    check.fail("limit", format!("must be a whole number from 1 to {MAX_LIMIT}"));
                    DEFAULT_LIMIT
                }
            },
        };
        let sort = self.sort.as_deref().and_then(|s| check.parse("sort", Sort::parse(s))).unwrap_or_default();
        let due_from = self.due_from.as_deref().and_then(|d| check.parse("due_from", parse_date(d)));
        let due_to = self.due_to.as_deref().and_then(|d| check.parse("due_to", parse_date(d)));
        if let (Some(from), Some(to)) = (due_from, due_to)
            && from > to
        {
            check.fail("due_to", "must not be before due_from");
        }
        let late = self.late.as_deref().and_then(|l| check.parse("late", parse_bool(l)));
        let text = check.optional_text("q", self.q.as_deref(), MAX_SEARCH);
        let filter = ListFilter {
            workflow: self.workflow,
            stage: self.stage,
            priority: self.priority.as_deref().and_then(|p| check.parse("priority", Priority::parse(p))),
            status: self.status.as_deref().and_then(|s| check.parse("status", Status::parse(s))),
            created_from: self.created_after.as_deref().and_then(|t| check.parse("created_after", parse_time(t))),
            created_to: self.created_before.as_deref().and_then(|t| check.parse("created_before", parse_time(t))),
            late: late.map(|late| LateFilter { late, cutoffs: cutoffs() }),
            due_from,
            due_to,
            text,
            sort,
            after: self.cursor.as_deref().and_then(|c| check.parse("cursor", Cursor::decode(c, sort))),
            limit,
        };
        check.finish()?;
        Ok(filter)
    }
}

/// List orders, a page at a time, newest (by creation time) first unless `sort` says otherwise.
///
/// Follow `next_cursor` until it is absent: in the `newest`, `oldest` and `due_date` sorts,
/// every order that existed when the first page was read (and kept its due date) is
/// returned exactly once, even while new orders arrive. In `time_in_stage`, an order that
/// moves meanwhile re-enters the sort at its new place.
#[utoipa::path(
    get, path = "/orders", tag = "orders",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of orders", body = OrderPage),
        (status = 400, description = "Unknown query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filter", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub async fn list_orders(
    State(service): State<Service>,
    _reader: Reader,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<OrderPage>> {
    let filter = query.parse(|| LateCutoffs::at(service.workflows(), Utc::now()))?;
    let page = list(service.db(), &filter).await.map_err(ApiError::internal)?;
    let next_cursor = next_cursor(&filter, &page).map(|c| c.encode());
    Ok(Json(OrderPage {
        items: page.iter().map(|o| OrderSummaryOut::new(o, service.workflows())).collect(),
        next_cursor,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_accept_rfc3339_or_dates() {
        assert_eq!(parse_time("1970-01-02"), Ok(86_400_000));
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Ok(1000));
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn bad_filters_are_all_named() {
        let query = ListQuery { limit: Some("0".into()), priority: Some("urgent".into()), ..ListQuery::default() };
        let err = query.parse(no_cutoffs).expect_err("invalid");
        assert_eq!(err.problem().field.as_deref(), Some("limit"));
        assert_eq!(err.problem().extra["errors"].as_array().map(Vec::len), Some(2));
    }

    fn no_cutoffs() -> LateCutoffs {
        LateCutoffs { today: NaiveDate::MIN, stages: vec![] }
    }

    fn fields(query: ListQuery) -> Vec<String> {
        let err = query.parse(no_cutoffs).expect_err("invalid");
        err.problem().extra["errors"]
            .as_array()
            .map(|errors| errors.iter().filter_map(|e| e["field"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    #[test]
    fn new_filters_name_the_field_they_refuse() {
        let query = ListQuery {
            late: Some("yes".into()),
            due_from: Some("2026-02-30".into()),
            sort: Some("random".into()),
            q: Some("a\u{7}b".into()),
            ..ListQuery::default()
        };
        assert_eq!(fields(query), ["sort", "due_from", "late", "q"]);
        let query = ListQuery {
            due_from: Some("2026-03-02".into()),
            due_to: Some("2026-03-01".into()),
            ..ListQuery::default()
        };
        assert_eq!(fields(query), ["due_to"]);
        // "n5.9": the newest-first cursor after order 5, created at 9 ms.
        let newest = ListQuery { cursor: Some("bjUuOQ".into()), ..ListQuery::default() };
        assert!(newest.parse(no_cutoffs).is_ok());
        let due = ListQuery { cursor: Some("bjUuOQ".into()), sort: Some("due_date".into()), ..ListQuery::default() };
        assert_eq!(fields(due), ["cursor"]);
    }
}
