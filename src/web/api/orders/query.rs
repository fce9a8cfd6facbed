//! Listing orders: filters and opaque keyset cursors.

use axum::Json;
use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{OrderPage, OrderSummaryOut};
use crate::domain::order::{Priority, Status};
use crate::service::Service;
use crate::store::orders::{ListFilter, list};
use crate::web::error::{ApiError, Problem, Result};
use crate::web::extract::{ApiQuery, Reader};
use crate::web::validate::Check;

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

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
    /// Created at or after this time (RFC 3339) or date (`YYYY-MM-DD`, UTC).
    created_after: Option<String>,
    /// Created before this time (RFC 3339) or date (`YYYY-MM-DD`, UTC).
    created_before: Option<String>,
    /// Text in the reference, customer name, email or phone.
    q: Option<String>,
    /// Page size, 1-200 (default 50).
    limit: Option<String>,
    /// `next_cursor` from the previous page.
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

fn encode_cursor(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("o{id}"))
}

fn decode_cursor(raw: &str) -> Result<i64, String> {
    URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix('o').and_then(|n| n.parse().ok()))
        .ok_or_else(|| "not a cursor this API returned".to_owned())
}

impl ListQuery {
    fn parse(self) -> Result<ListFilter> {
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
        let filter = ListFilter {
            workflow: self.workflow,
            stage: self.stage,
            priority: self.priority.as_deref().and_then(|p| check.parse("priority", Priority::parse(p))),
            status: self.status.as_deref().and_then(|s| check.parse("status", Status::parse(s))),
            created_from: self.created_after.as_deref().and_then(|t| check.parse("created_after", parse_time(t))),
            created_to: self.created_before.as_deref().and_then(|t| check.parse("created_before", parse_time(t))),
            text: self.q,
            before_id: self.cursor.as_deref().and_then(|c| check.parse("cursor", decode_cursor(c))),
            limit,
        };
        check.finish()?;
        Ok(filter)
    }
}

/// List orders, newest first, a page at a time.
///
/// Follow `next_cursor` until it is absent: every order that existed when the first page was
/// read is returned exactly once, even while new orders arrive.
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
    let filter = query.parse()?;
    let page = list(service.db(), &filter).await.map_err(ApiError::internal)?;
    let next_cursor = (page.len() == filter.limit as usize).then(|| page.last().map(|o| encode_cursor(o.id))).flatten();
    Ok(Json(OrderPage {
        items: page.iter().map(|o| OrderSummaryOut::new(o, service.workflows())).collect(),
        next_cursor,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        assert_eq!(decode_cursor(&encode_cursor(42)), Ok(42));
        assert!(decode_cursor("nope").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("x1")).is_err());
    }

    #[test]
    fn times_accept_rfc3339_or_dates() {
        assert_eq!(parse_time("1970-01-02"), Ok(86_400_000));
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Ok(1000));
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn bad_filters_are_all_named() {
        let query = ListQuery { limit: Some("0".into()), priority: Some("urgent".into()), ..ListQuery::default() };
        let err = query.parse().expect_err("invalid");
        assert_eq!(err.problem().field.as_deref(), Some("limit"));
        assert_eq!(err.problem().extra["errors"].as_array().map(Vec::len), Some(2));
    }
}
